package exchange

import (
	"net/http"
	"strconv"
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
