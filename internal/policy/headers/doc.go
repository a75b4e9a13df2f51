// Package headers is the `headers` policy: it sets, adds and removes
// request headers before the request goes upstream, and response headers
// before the response goes to the client.
//
// Config:
//
//	policies:
//	  headers:
//	    type: headers
//	    request:
//	      set: {X-Env: prod}          # replaces any value the client sent
//	      add: {X-Via-Gateway: rampart} # appended to existing values
//	      remove: [X-Debug]
//	    response:
//	      set: {Strict-Transport-Security: max-age=31536000}
//	      remove: [Server, X-Powered-By]
//
// Each side applies remove, then set, then add. Header names are matched
// case-insensitively. Names that frame the message (Content-Length,
// Transfer-Encoding, Connection and the other hop-by-hop headers) cannot be
// changed: the gateway manages them. On the request side, setting Host
// changes the Host sent upstream. Response changes apply to every response
// of the route, including gateway-made errors written after this policy.
//
// Values may hold the route's path captures, {id}, and {query.NAME}
// (internal/capture), filled in per request; CaptureNames lets compile
// check that each route listing the policy supplies them.
//
// Metrics: none.
package headers
