package exchange

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

// gRPC status codes (google.golang.org/grpc/codes), the ones the gateway
// makes.
const (
	GRPCOK                = 0
	GRPCUnknown           = 2
	GRPCInvalidArgument   = 3
	GRPCDeadlineExceeded  = 4
	GRPCPermissionDenied  = 7
	GRPCResourceExhausted = 8
	GRPCUnimplemented     = 12
	GRPCInternal          = 13
	GRPCUnavailable       = 14
	GRPCUnauthenticated   = 16
)

// grpcCodeNames are the decimal texts of the codes 0..16, shared so that
// recording a code allocates nothing.
var grpcCodeNames = [...]string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16"}

// GRPCCodeName is the decimal text of a gRPC status code.
func GRPCCodeName(c int) string {
	if c >= 0 && c < len(grpcCodeNames) {
		return grpcCodeNames[c]
	}
	return strconv.Itoa(c)
}

// GRPCCode maps a gateway-made error to the gRPC status code a gRPC client
// gets for it. It follows gRPC's HTTP-to-gRPC mapping (doc/http-grpc-status-
// mapping.md in grpc/grpc) where the gateway's status means the same, and
// is more precise where the gateway knows more: a rate limit or a body over
// the limit is RESOURCE_EXHAUSTED, an upstream timeout DEADLINE_EXCEEDED.
func GRPCCode(status int, code string) int {
	switch status {
	case http.StatusBadRequest:
		return GRPCInternal // gRPC's mapping: a malformed request is the transport's fault
	case http.StatusUnauthorized:
		return GRPCUnauthenticated
	case http.StatusForbidden:
		return GRPCPermissionDenied
	case http.StatusNotFound:
		return GRPCUnimplemented
	case http.StatusRequestEntityTooLarge, http.StatusRequestHeaderFieldsTooLarge, http.StatusTooManyRequests:
		return GRPCResourceExhausted
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return GRPCUnavailable
	case http.StatusGatewayTimeout:
		return GRPCDeadlineExceeded
	case http.StatusInternalServerError:
		return GRPCInternal
	}
	return GRPCUnknown
}

// WriteGRPCError answers a gRPC call with a gateway-made error as a
// trailers-only response: HTTP 200, the call's content type, grpc-status
// and grpc-message (percent-encoded, as PROTOCOL-HTTP2.md requires) in the
// one HEADERS frame, and no body. The gateway's error code goes in the
// rampart-error-code header, for people reading the metadata.
func WriteGRPCError(w http.ResponseWriter, contentType string, grpcCode int, code, msg string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Content-Encoding")
	h.Del("Trailer")
	h["Content-Type"] = []string{contentType}
	h["Grpc-Status"] = []string{GRPCCodeName(grpcCode)}
	h["Grpc-Message"] = []string{grpcMessage(msg)}
	h["Rampart-Error-Code"] = []string{code}
	w.WriteHeader(http.StatusOK)
}

// grpcMessage percent-encodes msg for grpc-message: every byte outside
// printable ASCII, and '%' itself.
func grpcMessage(msg string) string {
	n := 0
	for i := 0; i < len(msg); i++ {
		if c := msg[i]; c < 0x20 || c > 0x7e || c == '%' {
			n++
		}
	}
	if n == 0 {
		return msg
	}
	b := make([]byte, 0, len(msg)+2*n)
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			b = append(b, '%', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&0xf])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

// ParseGRPCTimeout parses a grpc-timeout header value (PROTOCOL-HTTP2.md:
// 1 to 8 ASCII digits and a unit, H M S m u n). ok is false for anything
// else.
func ParseGRPCTimeout(v string) (d time.Duration, ok bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	var n int64
	for i := 0; i < len(v)-1; i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	// 99999999H overflows a Duration: such a timeout is no limit at all.
	if n > int64(math.MaxInt64/unit) {
		return time.Duration(math.MaxInt64), true
	}
	return time.Duration(n) * unit, true
}

// FormatGRPCTimeout formats d as a grpc-timeout value: the finest unit
// whose count fits the 8 digits allowed, rounded up so that the upstream
// never gets less time than d (grpc-go encodes the same way).
func FormatGRPCTimeout(d time.Duration) string {
	if d <= 0 {
		return "0n"
	}
	const max = 99999999
	for _, u := range [...]struct {
		d time.Duration
		c byte
	}{{time.Nanosecond, 'n'}, {time.Microsecond, 'u'}, {time.Millisecond, 'm'}, {time.Second, 'S'}, {time.Minute, 'M'}} {
		if n := (d + u.d - 1) / u.d; n <= max {
			return strconv.FormatInt(int64(n), 10) + string(u.c)
		}
	}
	n := (d + time.Hour - 1) / time.Hour
	if n > max {
		n = max
	}
	return strconv.FormatInt(int64(n), 10) + "H"
}

// GRPCStatusOf returns the shared decimal text of a grpc-status value
// (GRPCCodeName), or "" when v is not a small decimal number: what the
// access log and metrics may safely record of an upstream's status.
func GRPCStatusOf(v string) string {
	if len(v) == 0 || len(v) > 2 {
		return ""
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return ""
		}
		n = n*10 + int(v[i]-'0')
	}
	if n >= len(grpcCodeNames) {
		return ""
	}
	return grpcCodeNames[n]
}

// grpcNames are the canonical names of codes 0..16 (the metrics' label).
var grpcNames = [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
	"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}

// GRPCName returns the canonical name of the code whose decimal text is s
// ("14" -> "UNAVAILABLE"), or "" for none.
func GRPCName(s string) string {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n >= len(grpcNames) {
		return ""
	}
	return grpcNames[n]
}

// GRPCCodeByName returns the code of a canonical name, matched without
// regard to case ("unavailable" -> 14); ok is false for an unknown name.
func GRPCCodeByName(name string) (int, bool) {
	for i, n := range grpcNames {
		if equalFoldASCII(n, name) {
			return i, true
		}
	}
	return 0, false
}
