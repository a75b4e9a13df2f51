// Package cors is the `cors` policy: Cross-Origin Resource Sharing
// (https://fetch.spec.whatwg.org/#http-cors-protocol) answered by the
// gateway.
//
// Config:
//
//	policies:
//	  cors:
//	    type: cors
//	    allow_origins: ["https://app.example.com"]   # exact origins, or "*"
//	    allow_methods: [GET, POST, PUT]              # default GET, HEAD, POST
//	    allow_headers: [Authorization, Content-Type] # default none beyond the safelisted; "*" = any
//	    expose_headers: [X-Request-ID]
//	    allow_credentials: true                      # default false; not with "*"
//	    max_age: 10m                                 # preflight cache time; default unset
//
// A preflight (OPTIONS with Origin and Access-Control-Request-Method) is
// answered by the gateway and never reaches the upstream: 204 with the
// Access-Control-Allow-* headers when the origin, method and headers are
// allowed, 403 forbidden otherwise. On other requests from an allowed
// origin the response carries Access-Control-Allow-Origin (the origin, or
// "*"), Access-Control-Allow-Credentials and Access-Control-Expose-Headers;
// the gateway's values replace any Access-Control-* headers the upstream
// sent, so the two cannot disagree. Requests from other origins pass
// through without CORS headers (the browser then withholds the response).
// Every response carries Vary: Origin so caches keep origins apart.
//
// Metrics: none.
package cors
