package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// RetryConditions are the named entries of retry.on, exactly as written
// (lower case, "_"); an entry may also be a status code 100-599. This list
// and ParseRetryOn are the only definition: Validate refuses what
// ParseRetryOn refuses, and compile hands ParseRetryOn's result to the
// retry loop (issue 16).
//
//	connect_failure  no connection could be made
//	reset            the connection broke before a complete response head
//	timeout          the per-try timeout expired before a response head
//	5xx              any 5xx status, and the three transport failures
//	gateway_error    502, 503 and 504, and the three transport failures
//	retriable_4xx    409 Conflict
//
// An entry may also name a gRPC status, grpc:NAME with NAME one of
// GRPCStatusNames (grpc:unavailable): a gRPC call that ends with that
// status before any of its answer was sent (a trailers-only answer).
// RetryConditionNames lists them all.
var RetryConditions = []string{"connect_failure", "reset", "timeout", "5xx", "gateway_error", "retriable_4xx"}

// RetryConditionNames are every name retry.on takes: RetryConditions and
// the grpc: entries.
func RetryConditionNames() []string {
	names := slices.Clone(RetryConditions)
	for _, n := range GRPCStatusNames[1:] {
		names = append(names, grpcRetryPrefix+n)
	}
	return names
}

// GRPCStatusNames are the gRPC status names retry.on takes after "grpc:",
// indexed by code: the canonical names (google.golang.org/grpc/codes) in
// lower case with "_". OK (0) is not a failure and is not among them.
var GRPCStatusNames = [...]string{"", "cancelled", "unknown", "invalid_argument", "deadline_exceeded", "not_found",
	"already_exists", "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range",
	"unimplemented", "internal", "unavailable", "data_loss", "unauthenticated"}

// grpcRetryPrefix starts the retry.on entries that name a gRPC status.
const grpcRetryPrefix = "grpc:"

// ErrRetryCondition is wrapped by the error for an entry of retry.on that
// is neither a condition name nor a number.
var ErrRetryCondition = errors.New("invalid retry condition")

// RetryOn is a parsed retry.on list: which transport failures and which
// response statuses a route retries.
type RetryOn struct {
	// ConnectFailure, Reset and Timeout are the transport failures
	// retried (see RetryConditions).
	ConnectFailure, Reset, Timeout bool
	// Statuses are the response statuses retried, ascending, each once.
	Statuses []int
	// GRPC has bit c set for each gRPC status code c retried (grpc:NAME).
	GRPC uint32
}

// ParseRetryOn parses a retry.on list. It reports every bad entry, joined.
func ParseRetryOn(list []string) (RetryOn, error) {
	var on RetryOn
	var errs []error
	seen := map[int]bool{}
	for _, s := range list {
		one, err := ParseRetryCondition(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		on.ConnectFailure = on.ConnectFailure || one.ConnectFailure
		on.Reset = on.Reset || one.Reset
		on.Timeout = on.Timeout || one.Timeout
		on.GRPC |= one.GRPC
		for _, st := range one.Statuses {
			if !seen[st] {
				seen[st] = true
				on.Statuses = append(on.Statuses, st)
			}
		}
	}
	slices.Sort(on.Statuses)
	return on, errors.Join(errs...)
}

// ParseRetryCondition parses one entry of retry.on: a name of
// RetryConditions, exactly, grpc: and a name of GRPCStatusNames, or a
// status code 100-599.
func ParseRetryCondition(s string) (RetryOn, error) {
	transport := RetryOn{ConnectFailure: true, Reset: true, Timeout: true}
	switch s {
	case "connect_failure":
		return RetryOn{ConnectFailure: true}, nil
	case "reset":
		return RetryOn{Reset: true}, nil
	case "timeout":
		return RetryOn{Timeout: true}, nil
	case "5xx":
		for st := 500; st < 600; st++ {
			transport.Statuses = append(transport.Statuses, st)
		}
		return transport, nil
	case "gateway_error":
		transport.Statuses = []int{502, 503, 504}
		return transport, nil
	case "retriable_4xx":
		return RetryOn{Statuses: []int{409}}, nil
	}
	if name, ok := strings.CutPrefix(s, grpcRetryPrefix); ok {
		return parseGRPCRetry(s, name)
	}
	code, err := strconv.Atoi(s)
	if err != nil {
		if c := grpcStatusCode(strings.ReplaceAll(strings.ToLower(s), "-", "_")); c > 0 {
			return RetryOn{}, fmt.Errorf("%w %q: gRPC statuses are written %q", ErrRetryCondition, s, grpcRetryPrefix+GRPCStatusNames[c])
		}
		return RetryOn{}, fmt.Errorf("%w %q (want %s, grpc:STATUS or a status code)%s", ErrRetryCondition, s, strings.Join(RetryConditions, ", "), suggest(s, RetryConditions))
	}
	if code < 100 || code > 599 {
		return RetryOn{}, fmt.Errorf("status %d out of range 100-599", code)
	}
	return RetryOn{Statuses: []int{code}}, nil
}

// parseGRPCRetry parses the NAME of a retry.on entry s, "grpc:NAME".
func parseGRPCRetry(s, name string) (RetryOn, error) {
	if c := grpcStatusCode(name); c > 0 {
		return RetryOn{GRPC: 1 << c}, nil
	}
	names := GRPCStatusNames[1:]
	if name == "ok" {
		return RetryOn{}, fmt.Errorf("%w %q: OK is not a failure", ErrRetryCondition, s)
	}
	return RetryOn{}, fmt.Errorf("%w %q (unknown gRPC status; want grpc: and one of %s)%s", ErrRetryCondition, s,
		strings.Join(names, ", "), suggest(name, names))
}

// grpcStatusCode returns the code of a name of GRPCStatusNames, or 0.
func grpcStatusCode(name string) int {
	if name == "" {
		return 0
	}
	for c, n := range GRPCStatusNames {
		if n == name {
			return c
		}
	}
	return 0
}
