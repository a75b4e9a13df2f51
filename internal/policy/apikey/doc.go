// Package apikey is the `api_key` policy: it authenticates a request by an
// API key and identifies its consumer.
//
// Config:
//
//	policies:
//	  keys:
//	    type: api_key
//	    header: X-API-Key                  # default X-API-Key
//	    query: api_key                     # default: keys are not read from the query
//	    forward_consumer_header: X-Consumer-Name   # default X-Consumer-Name; "off" sends none
//	consumers:
//	  - name: acme
//	    api_keys: ["sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]
//	    roles: [premium]
//	  - name: dev
//	    api_keys: ["plain-key-for-tests"]
//
// The key is read from the header, or, when query is set and the header is
// absent, from that query parameter. Keys are matched against every
// consumer's api_keys: a plain key, or "sha256:" and the hex SHA-256 of the
// key (preferred: the config then holds no secret). At compile time every
// key is hashed and consumers are indexed by hash; a request's key is
// hashed and looked up, and the hashes are compared in constant time, so
// neither the comparison nor the lookup reveals anything about a stored
// key.
//
// A missing or unknown key is refused with 401 unauthenticated and
// `WWW-Authenticate: ApiKey realm="rampart"`. On success the consumer's
// name and roles are recorded on the request (for `rate_limit` with key
// consumer or by_role, and for `require_role`), the key itself is removed
// from the request (header and query parameter) so it never reaches the
// upstream, and the consumer name is sent upstream in
// forward_consumer_header. A value of that header sent by the client is
// always removed first, so it cannot be forged.
//
// Metrics: none of its own; refusals count in rampart_http_requests_total
// with code 401.
package apikey
