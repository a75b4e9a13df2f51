package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
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
var RetryConditions = []string{"connect_failure", "reset", "timeout", "5xx", "gateway_error", "retriable_4xx"}

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
// RetryConditions, exactly, or a status code 100-599.
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
	code, err := strconv.Atoi(s)
	if err != nil {
		return RetryOn{}, fmt.Errorf("%w %q (want %s, or a status code)%s", ErrRetryCondition, s, orList(RetryConditions), suggest(s, RetryConditions))
	}
	if code < 100 || code > 599 {
		return RetryOn{}, fmt.Errorf("status %d out of range 100-599", code)
	}
	return RetryOn{Statuses: []int{code}}, nil
}
