package httpcore

// Request building: what both servers do the same way to make an
// *http.Request.

import (
	"net/url"
	"strings"
)

// pathSafe are the path bytes url.URL keeps as they are (escape(path) ==
// path), so Path can be the raw path with no RawPath.
var pathSafe [256]bool

func init() {
	for _, c := range "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~$&+,/:;=@" {
		pathSafe[c] = true
	}
}

// ParseTarget fills u from an origin-form target (an HTTP/1.1 request
// target, an HTTP/2 :path), as url.ParseRequestURI would, without an
// allocation when the path has only bytes url.URL keeps as they are. The
// caller has refused control bytes and spaces (the query is not checked
// again).
func ParseTarget(u *url.URL, target string) bool {
	path, query, hasQuery := strings.Cut(target, "?")
	for i := 0; i < len(path); i++ {
		if !pathSafe[path[i]] {
			v, err := url.ParseRequestURI(target)
			if err != nil {
				return false
			}
			*u = *v
			return true
		}
	}
	u.Path = path
	u.RawQuery = query
	u.ForceQuery = hasQuery && query == ""
	return true
}

// CommonKeys are frequent request field names in canonical form, which
// the servers intern (h1server by canonical form, h2 by lower case).
var CommonKeys = []string{
	"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Authorization",
	"Cache-Control", "Connection", "Content-Encoding", "Content-Length", "Content-Type", "Cookie", "Date",
	"Expect", "Forwarded", "Grpc-Accept-Encoding", "Grpc-Encoding", "Grpc-Timeout", "Host",
	"If-Match", "If-Modified-Since", "If-None-Match", "Keep-Alive", "Origin", "Pragma",
	"Proxy-Connection", "Range", "Referer", "Te", "Trailer", "Traceparent", "Tracestate",
	"Transfer-Encoding", "Upgrade", "User-Agent", "Via", "X-Api-Key", "X-Forwarded-For",
	"X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id",
}
