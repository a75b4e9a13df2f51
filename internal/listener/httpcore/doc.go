// Package httpcore holds what Rampart's two own servers, the fast HTTP/1.1
// server (package h1server) and the HTTP/2 server (package h2), share: the
// request context embedded in each request's one allocation (Ctx), request
// building from an origin-form target (ParseTarget) and the interned
// header names (CommonKeys), and the tracking of live connections for
// Close and Shutdown (Conns). It depends on neither server.
package httpcore
