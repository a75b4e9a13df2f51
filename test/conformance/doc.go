// Package conformance holds the gateway's hostile-input suites: HTTP/1.1
// framing and smuggling cases sent as exact bytes over raw sockets,
// HTTP/2 frame-level checks and h2spec, all against the gateway running
// in-process with a recording upstream. docs/security.md lists every case
// and the reason for its result.
package conformance
