package retry

import (
	"strconv"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
)

// Retry condition names have one list and one parse, config's: every
// entry Validate accepts is understood at run time, and every entry
// Validate refuses the runtime refuses too (issue 16: the runtime
// case-folded, took "-" for "_", trimmed spaces and knew an alias,
// refused_stream, that Validate refused).
func TestConditionNamesAgreeWithValidate(t *testing.T) {
	entries := []string{
		"connect_failure", "reset", "timeout", "5xx", "gateway_error", "retriable_4xx", "503", "100", "599",
		"Reset", "RESET", "connect-failure", "Connect-Failure", "retriable-4xx", "refused_stream", "refused-stream",
		" reset", "reset ", " 503", "", "5xxx", "99", "600", "-1", "abc", "4xx",
		"grpc:unavailable", "grpc:resource_exhausted", "grpc:ok", "grpc:", "grpc:UNAVAILABLE", "unavailable", "grpc:14",
	}
	for _, on := range entries {
		doc := "listeners: [{address: \"127.0.0.1:0\"}]\n" +
			"upstreams: {app: {targets: [{address: \"127.0.0.1:9001\"}]}}\n" +
			"routes: [{upstream: app, retry: {on: [" + strconv.Quote(on) + "]}}]\n"
		_, verr := config.LoadBytes("t.yaml", []byte(doc))
		_, rerr := ParseConditions([]string{on})
		if (verr == nil) != (rerr == nil) {
			t.Errorf("retry.on %q: Validate error %v, runtime error %v", on, verr, rerr)
		}
	}
}
