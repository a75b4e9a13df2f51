package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rampart-gw/rampart/internal/cluster/breaker"
)

// ErrorKind is what went wrong with a call to an upstream.
type ErrorKind uint8

// The kinds of failed calls, each with one answer (see Error).
const (
	// NoHealthy: the upstream had no target to send to (503).
	NoHealthy ErrorKind = iota + 1
	// Overflow: a circuit-breaker limit refused the call (503).
	Overflow
	// CircuitOpen: the failure-tripped circuit breaker is open (503, with
	// Retry-After the time left open); no attempt was made.
	CircuitOpen
	// Timeout: no response head within the route timeout or the per-try
	// timeout (504).
	Timeout
	// Canceled: the client went away (its request context ended). Nobody
	// reads an answer, so none is written.
	Canceled
	// Unreachable: the target could not be reached, refused the TLS
	// handshake's verification, or closed the connection before answering
	// (502).
	Unreachable
	// BadResponse: the target answered something that is not HTTP (502).
	BadResponse
	// BadRequest: the client's request body turned out malformed while it
	// was being sent (a gRPC-Web text body that is not base64): the
	// client's fault, not the upstream's (400).
	BadRequest
)

// StatusClientClosed is the status logged (never sent) for a request whose
// client went away: 499, as nginx logs it.
const StatusClientClosed = 499

// Error is a failed call to an upstream, with the answer the gateway gives
// for it. A gateway-side render turns it into the JSON error, the route's
// fallback or a stale cache entry.
type Error struct {
	Kind ErrorKind
	// Status and Code are the answer's status and error code; Msg is its
	// message. For Canceled, Status is StatusClientClosed, which is only
	// logged.
	Status int
	Code   string
	Msg    string
	// RetryAfter, when not "", is the answer's Retry-After (seconds).
	RetryAfter string
	// Upstream and Target are where the call went ("" target when none
	// was picked).
	Upstream, Target string
	// Err is the underlying transport error, if any.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Msg + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Answerable reports whether the failure is one the route's fallback or a
// stale cache entry may answer instead (502, 503, 504).
func (e *Error) Answerable() bool { return e.Status >= 502 && e.Status <= 504 }

func errNoHealthy(up string) *Error {
	return &Error{Kind: NoHealthy, Status: http.StatusServiceUnavailable, Code: "no_healthy_upstream",
		Msg: "upstream " + up + " has no healthy target", RetryAfter: "1", Upstream: up}
}

func errCircuitOpen(up string, wait time.Duration) *Error {
	return &Error{Kind: CircuitOpen, Status: http.StatusServiceUnavailable, Code: "circuit_open",
		Msg: "the circuit of upstream " + up + " is open after repeated failures", Upstream: up,
		RetryAfter: strconv.Itoa(breaker.RetryAfterSeconds(wait))}
}

func errOverflow(up, resource string) *Error {
	return &Error{Kind: Overflow, Status: http.StatusServiceUnavailable, Code: "circuit_open",
		Msg: "upstream " + up + " is at its " + resource + " limit", RetryAfter: "1", Upstream: up}
}

func errCanceled(up string, err error) *Error {
	return &Error{Kind: Canceled, Status: StatusClientClosed, Code: "client_closed_request",
		Msg: "client closed the request", Upstream: up, Err: err}
}

// attemptKind is how one attempt failed, before it is an Error.
type attemptKind uint8

const (
	failOverflow attemptKind = iota + 1
	failConnect              // never reached the target (dial, TLS verification)
	failTimeout
	failReset
	failClient // the client's request body could not be read (exchange.ErrMalformedBody)
)

// tlsVerifyError returns the certificate verification failure in err, if
// that is what err is.
func tlsVerifyError(err error) error {
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) {
		return cve
	}
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return ua
	case errors.As(err, &he):
		return he
	case errors.As(err, &ci):
		return ci
	}
	return nil
}

// classify maps a failed attempt to the gateway's answer. ctx is the
// client request's context.
func classify(ctx context.Context, up, target string, kind attemptKind, err error) *Error {
	var oe *OverflowError
	switch {
	case errors.As(err, &oe):
		return errOverflow(up, oe.Resource.String())
	case kind == failTimeout && ctx.Err() == nil:
		return &Error{Kind: Timeout, Status: http.StatusGatewayTimeout, Code: "upstream_timeout",
			Msg: "upstream did not answer in time", Upstream: up, Target: target, Err: err}
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return errCanceled(up, err)
	case kind == failClient:
		return &Error{Kind: BadRequest, Status: http.StatusBadRequest, Code: "bad_request",
			Msg: "the request body is malformed", Upstream: up, Target: target, Err: err}
	}
	e := &Error{Kind: Unreachable, Status: http.StatusBadGateway, Code: "upstream_unreachable",
		Upstream: up, Target: target, Err: err}
	switch {
	case kind == failConnect:
		if v := tlsVerifyError(err); v != nil {
			e.Msg = "TLS verification of upstream " + target + " failed: " + v.Error()
		} else {
			e.Msg = "cannot connect to upstream " + target
		}
	case isReset(err):
		e.Msg = "upstream closed the connection"
	default:
		e.Kind, e.Code, e.Msg = BadResponse, "bad_upstream_response", "invalid response from upstream"
	}
	return e
}

func isReset(err error) bool {
	var ne *net.OpError
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "server closed")
}

// isDeadline reports whether err is a passed deadline.
func isDeadline(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)
}
