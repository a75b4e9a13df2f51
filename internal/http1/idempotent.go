package http1

// Idempotent reports whether a request may be sent again after it
// possibly reached the server: its method is idempotent (RFC 9110 section
// 9.2.2: GET, HEAD, OPTIONS, TRACE, PUT, DELETE; "" is net/http's GET), or
// it carries an Idempotency-Key or X-Idempotency-Key header
// (draft-ietf-httpapi-idempotency-key-header: the client asks the server
// to apply a repeated request once). header is an http.Header with
// canonical keys.
//
// It is the one decision the upstream client (replaying a request on a
// connection that turned out dead) and the retry loop (retrying after a
// listed failure) share.
func Idempotent(method string, header map[string][]string) bool {
	switch method {
	case "", "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	if _, ok := header["Idempotency-Key"]; ok {
		return true
	}
	_, ok := header["X-Idempotency-Key"]
	return ok
}
