package guard

import "net/http"

// reason is why a request was refused. Its number travels in the synthetic
// request the guard hands to net/http in place of the refused one (see
// conn.go), so the table below is the single place that maps a violation to
// its response.
type reason uint8

const (
	rNone reason = iota
	rRequestLine
	rMethod
	rTarget
	rFragment
	rVersion
	rVersionUnsupported
	rURITooLong
	rHeadTooLarge
	rTooManyHeaders
	rFieldName
	rSpaceBeforeColon
	rObsFold
	rFieldValue
	rBareLF
	rNoHost
	rManyHosts
	rHost
	rContentLength
	rManyContentLengths
	rCLAndTE
	rTEOnHTTP10
	rTE
	rTEUnknown
	rBodyTooLarge
	rConnect
	rTrace
	rExpect
	rAbsoluteForm
	rPRI
	rChunked
	rTrailer
	rReserved
	rH2Abuse
	rBodyIncomplete
	nReasons
)

type verdict struct {
	status int
	code   string
	msg    string
}

var verdicts = [nReasons]verdict{
	rNone:               {http.StatusBadRequest, "bad_request", "malformed request"},
	rRequestLine:        {http.StatusBadRequest, "bad_request", "malformed request line"},
	rMethod:             {http.StatusBadRequest, "bad_request", "malformed method"},
	rTarget:             {http.StatusBadRequest, "bad_request", "malformed request target"},
	rFragment:           {http.StatusBadRequest, "bad_request", "request target carries a fragment"},
	rVersion:            {http.StatusBadRequest, "bad_request", "malformed HTTP version"},
	rVersionUnsupported: {http.StatusHTTPVersionNotSupported, "http_version_not_supported", "HTTP version not supported"},
	rURITooLong:         {http.StatusRequestURITooLong, "uri_too_long", "request target exceeds the limit"},
	rHeadTooLarge:       {http.StatusRequestHeaderFieldsTooLarge, "headers_too_large", "request headers exceed the limit"},
	rTooManyHeaders:     {http.StatusRequestHeaderFieldsTooLarge, "headers_too_large", "too many request header fields"},
	rFieldName:          {http.StatusBadRequest, "bad_request", "malformed header field name"},
	rSpaceBeforeColon:   {http.StatusBadRequest, "bad_request", "whitespace between header field name and colon"},
	rObsFold:            {http.StatusBadRequest, "bad_request", "obsolete line folding in header"},
	rFieldValue:         {http.StatusBadRequest, "bad_request", "invalid character in header field value"},
	rBareLF:             {http.StatusBadRequest, "bad_request", "line not terminated by CRLF"},
	rNoHost:             {http.StatusBadRequest, "bad_request", "missing Host header"},
	rManyHosts:          {http.StatusBadRequest, "bad_request", "more than one Host header"},
	rHost:               {http.StatusBadRequest, "bad_request", "malformed Host header"},
	rContentLength:      {http.StatusBadRequest, "bad_request", "malformed Content-Length"},
	rManyContentLengths: {http.StatusBadRequest, "bad_request", "more than one Content-Length"},
	rCLAndTE:            {http.StatusBadRequest, "bad_request", "both Content-Length and Transfer-Encoding"},
	rTEOnHTTP10:         {http.StatusBadRequest, "bad_request", "Transfer-Encoding in an HTTP/1.0 request"},
	rTE:                 {http.StatusBadRequest, "bad_request", "malformed Transfer-Encoding"},
	rTEUnknown:          {http.StatusNotImplemented, "not_implemented", "unsupported transfer coding"},
	rBodyTooLarge:       {http.StatusRequestEntityTooLarge, "body_too_large", "request body exceeds the limit"},
	rConnect:            {http.StatusMethodNotAllowed, "method_not_allowed", "CONNECT is not supported"},
	rTrace:              {http.StatusMethodNotAllowed, "method_not_allowed", "TRACE is not supported"},
	rExpect:             {http.StatusExpectationFailed, "expectation_failed", "unsupported expectation"},
	rAbsoluteForm:       {http.StatusBadRequest, "bad_request", "malformed absolute-form request target"},
	rPRI:                {http.StatusBadRequest, "bad_request", "unexpected HTTP/2 preface"},
	rChunked:            {http.StatusBadRequest, "bad_request", "malformed chunked request body"},
	rBodyIncomplete:     {http.StatusBadRequest, "bad_request", "request body does not match its declared length"},
	rTrailer:            {http.StatusBadRequest, "bad_request", "forbidden or malformed trailer field"},
	rReserved:           {http.StatusBadRequest, "bad_request", "malformed request"},
	rH2Abuse:            {http.StatusBadRequest, "bad_request", "HTTP/2 control frame abuse"},
}

func (r reason) verdict() verdict {
	if r >= nReasons {
		r = rNone
	}
	return verdicts[r]
}
