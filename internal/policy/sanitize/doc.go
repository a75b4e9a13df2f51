// Package sanitize is the `sanitize` policy: a cheap, always-on check for
// routes that cannot afford the full OWASP Core Rule Set (the waf policy).
//
// Config:
//
//	policies:
//	  clean:
//	    type: sanitize
//	    mode: block                # block (default) | detect: log and count, forward anyway
//	    checks: [sqli, xss]        # default both (libinjection)
//	    inspect: [path, query, cookies, body]   # default all four
//	    headers: [User-Agent, Referer]          # header values also checked; default none
//	    exclude: [comment, html]   # query/form/JSON/cookie names never checked for sqli/xss
//	    max_value_bytes: 4096      # a longer single value is refused; default 4096
//	    max_body_bytes: 1048576    # a larger JSON or form body is refused; default 1 MiB
//	    max_json_depth: 32         # deeper JSON is refused; default 32
//
// What is inspected: the decoded path, each query parameter's name and
// value, each cookie value, the listed headers, and the body when it is
// application/x-www-form-urlencoded (each field) or JSON (application/json
// or +json: every string, keys included, walked without building a tree).
// Other bodies pass unread. Every value is checked for SQL injection and
// XSS with libinjection, and for structure: invalid UTF-8, NUL bytes, a
// value over max_value_bytes; a JSON body that is malformed, deeper than
// max_json_depth or over max_body_bytes is refused too.
//
// A finding answers 403 with the code waf_blocked, naming the check and
// where it was found (never the value), before the upstream sees anything;
// in detect mode the request goes on and the finding is logged. Metrics:
// rampart_sanitize_findings_total{policy,check,action}.
package sanitize
