// Package grpcweb is the `grpc_web` policy: it lets browsers call gRPC
// services. A gRPC-Web request (Content-Type application/grpc-web or
// application/grpc-web-text, with an optional +proto or +json suffix) is
// translated to gRPC towards the upstream, and the gRPC response back to
// gRPC-Web: messages pass through unchanged, and the trailers (grpc-status,
// grpc-message, custom metadata) become the trailer frame at the end of the
// body, since browsers cannot read HTTP trailers. The text form is base64
// both ways (requests may arrive as concatenated padded chunks). Requests
// that are not gRPC-Web pass untouched, so one route can serve gRPC,
// gRPC-Web and anything else.
//
// Config:
//
//	policies:
//	  grpcweb: {type: grpc_web}
//	  cors:
//	    type: cors
//	    allow_origins: ["https://app.example.com"]
//	    allow_headers: [content-type, x-grpc-web, x-user-agent, grpc-timeout]
//	    expose_headers: [grpc-status, grpc-message]
//	routes:
//	  - name: greeter
//	    match: {path: {prefix: /helloworld.Greeter/}}
//	    upstream: greeter          # protocol h2c, or TLS (h2 by ALPN)
//	    policies: [cors, grpcweb]
//
// List cors first so that preflights are answered before translation. The
// upstream must speak HTTP/2 (gRPC): protocol h2c, or tls with h2 by ALPN.
package grpcweb
