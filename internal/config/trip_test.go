package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// tripDoc is base with a trip block on upstream app: line 5 is
// "    circuit_breaker:", line 6 "      trip: " + trip.
func tripDoc(trip string) string {
	return strings.Replace(base, "  app:\n", "  app:\n    circuit_breaker:\n      trip: "+trip+"\n", 1)
}

func TestTripDefaults(t *testing.T) {
	for _, tt := range []struct {
		name string
		trip string
		want CircuitTrip
	}{
		{"empty mapping", "{}", CircuitTrip{
			ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 20,
			Window: Duration(10 * time.Second), OpenFor: Duration(5 * time.Second), MaxOpenFor: Duration(60 * time.Second),
			HalfOpenRequests: 3, Statuses: []string{"500", "502-599"},
		}},
		{"explicit values kept", "{consecutive_failures: 2, failure_ratio: 1, min_requests: 1, window: 1s, open_for: 100ms, max_open_for: 100ms, half_open_requests: 1, statuses: [503]}", CircuitTrip{
			ConsecutiveFailures: 2, FailureRatio: 1, MinRequests: 1,
			Window: Duration(time.Second), OpenFor: Duration(100 * time.Millisecond), MaxOpenFor: Duration(100 * time.Millisecond),
			HalfOpenRequests: 1, Statuses: []string{"503"},
		}},
		{"max_open_for follows a long open_for", "{open_for: 2m}", CircuitTrip{
			ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 20,
			Window: Duration(10 * time.Second), OpenFor: Duration(2 * time.Minute), MaxOpenFor: Duration(2 * time.Minute),
			HalfOpenRequests: 3, Statuses: []string{"500", "502-599"},
		}},
		{"empty statuses kept", "{statuses: []}", CircuitTrip{
			ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 20,
			Window: Duration(10 * time.Second), OpenFor: Duration(5 * time.Second), MaxOpenFor: Duration(60 * time.Second),
			HalfOpenRequests: 3, Statuses: []string{},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadBytes("t.yaml", []byte(tripDoc(tt.trip)))
			if err != nil {
				t.Fatal(err)
			}
			got := c.Upstreams["app"].CircuitBreaker.Trip
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
			// The concurrency limits beside trip keep their defaults.
			if b := c.Upstreams["app"].CircuitBreaker; b.MaxRequests != 1024 || b.MaxRetries != 64 {
				t.Errorf("limits beside trip = %+v", b)
			}
			// JSON() output, trip included, parses back.
			js, err := c.JSON()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := LoadBytes("t.json", js); err != nil {
				t.Errorf("JSON() output does not load: %v\n%s", err, js)
			}
		})
	}
	t.Run("DefaultTripStatuses not shared", func(t *testing.T) {
		c, err := LoadBytes("t.yaml", []byte(tripDoc("{}")))
		if err != nil {
			t.Fatal(err)
		}
		c.Upstreams["app"].CircuitBreaker.Trip.Statuses[0] = "x"
		if DefaultTripStatuses[0] != "500" {
			t.Fatal("a config's statuses alias DefaultTripStatuses")
		}
	})
}

func TestTripRules(t *testing.T) {
	tests := []struct {
		name, trip, want string
	}{
		{"consecutive zero", "{consecutive_failures: 0}", "6:36: upstreams.app.circuit_breaker.trip.consecutive_failures: must be at least 1"},
		{"ratio zero", "{failure_ratio: 0}", "6:29: upstreams.app.circuit_breaker.trip.failure_ratio: 0 out of range (0, 1]"},
		{"ratio above one", "{failure_ratio: 1.5}", "6:29: upstreams.app.circuit_breaker.trip.failure_ratio: 1.5 out of range (0, 1]"},
		{"ratio negative", "{failure_ratio: -0.1}", "6:29: upstreams.app.circuit_breaker.trip.failure_ratio: -0.1 out of range (0, 1]"},
		{"min requests", "{min_requests: 0}", "6:28: upstreams.app.circuit_breaker.trip.min_requests: must be at least 1"},
		{"window zero", "{window: 0s}", "6:22: upstreams.app.circuit_breaker.trip.window: must be positive"},
		{"open_for zero", "{open_for: 0s}", "6:24: upstreams.app.circuit_breaker.trip.open_for: must be positive"},
		{"max_open_for zero", "{max_open_for: 0s}", "6:28: upstreams.app.circuit_breaker.trip.max_open_for: must be positive"},
		{"max below open", "{open_for: 10s, max_open_for: 5s}", "6:43: upstreams.app.circuit_breaker.trip.max_open_for: must not be less than open_for (10s)"},
		{"half open zero", "{half_open_requests: 0}", "6:34: upstreams.app.circuit_breaker.trip.half_open_requests: must be at least 1"},
		{"status word", "{statuses: [bad]}", `6:25: upstreams.app.circuit_breaker.trip.statuses[0]: invalid status "bad" (want a code such as 503, a range such as 502-504, or 5xx)`},
		{"status 2xx", "{statuses: [200]}", "6:25: upstreams.app.circuit_breaker.trip.statuses[0]: status 200 out of range 400-599"},
		{"status class", "{statuses: [3xx]}", `6:25: upstreams.app.circuit_breaker.trip.statuses[0]: invalid status class "3xx" (want 4xx or 5xx)`},
		{"range reversed", "{statuses: [504-502]}", `6:25: upstreams.app.circuit_breaker.trip.statuses[0]: invalid status range "504-502": 504 is above 502`},
		{"range wide", "{statuses: [400-600]}", `6:25: upstreams.app.circuit_breaker.trip.statuses[0]: status range "400-600" out of range 400-599`},
		{"range word", "{statuses: [5-x]}", `6:25: upstreams.app.circuit_breaker.trip.statuses[0]: invalid status range "5-x" (want e.g. 502-504)`},
		{"status duplicate", "{statuses: [503, \"503\"]}", `6:30: upstreams.app.circuit_breaker.trip.statuses[1]: duplicate status "503" (also statuses[0])`},
		{"decode type", "{consecutive_failures: many}", `6:36: upstreams.app.circuit_breaker.trip.consecutive_failures: expected an integer, got string "many"`},
		{"decode duration", "{window: 10}", `6:22: upstreams.app.circuit_breaker.trip.window: invalid duration "10" (want e.g. 250ms, 10s, 5m)`},
		{"unknown key", "{open_fr: 5s}", `6:14: upstreams.app.circuit_breaker.trip: unknown key "open_fr" (did you mean "open_for"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes("t.yaml", []byte(tripDoc(tt.trip)))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("got %v, want Errors with %q", err, tt.want)
			}
			for _, e := range errs {
				if e.Error() == "t.yaml:"+tt.want {
					return
				}
			}
			t.Errorf("missing error line\nwant: t.yaml:%s\ngot:\n%v", tt.want, err)
		})
	}
}

// TestTripAllErrors checks that every problem of a trip block is reported
// at once, positioned and in document order.
func TestTripAllErrors(t *testing.T) {
	doc := strings.Replace(base, "  app:\n", `  app:
    circuit_breaker:
      trip:
        consecutive_failures: 0
        failure_ratio: 0
        min_requests: 0
        window: 0s
        open_for: 10s
        max_open_for: 1s
        half_open_requests: 0
        statuses: [5xx, 600]
`, 1)
	_, err := LoadBytes("t.yaml", []byte(doc))
	want := strings.Join([]string{
		"t.yaml:7:31: upstreams.app.circuit_breaker.trip.consecutive_failures: must be at least 1",
		"t.yaml:8:24: upstreams.app.circuit_breaker.trip.failure_ratio: 0 out of range (0, 1]",
		"t.yaml:9:23: upstreams.app.circuit_breaker.trip.min_requests: must be at least 1",
		"t.yaml:10:17: upstreams.app.circuit_breaker.trip.window: must be positive",
		"t.yaml:12:23: upstreams.app.circuit_breaker.trip.max_open_for: must not be less than open_for (10s)",
		"t.yaml:13:29: upstreams.app.circuit_breaker.trip.half_open_requests: must be at least 1",
		"t.yaml:14:25: upstreams.app.circuit_breaker.trip.statuses[1]: status 600 out of range 400-599",
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

func TestParseStatusRange(t *testing.T) {
	for _, tt := range []struct {
		in     string
		lo, hi int
		ok     bool
	}{
		{"503", 503, 503, true},
		{"502-504", 502, 504, true},
		{" 502 - 504 ", 502, 504, true},
		{"5xx", 500, 599, true},
		{"4XX", 400, 499, true},
		{"400", 400, 400, true},
		{"599", 599, 599, true},
		{"399", 0, 0, false},
		{"600", 0, 0, false},
		{"1xx", 0, 0, false},
		{"", 0, 0, false},
		{"-", 0, 0, false},
		{"503-", 0, 0, false},
		{"x", 0, 0, false},
	} {
		lo, hi, err := ParseStatusRange(tt.in)
		if (err == nil) != tt.ok || lo != tt.lo || hi != tt.hi {
			t.Errorf("ParseStatusRange(%q) = %d, %d, %v; want %d, %d, ok %v", tt.in, lo, hi, err, tt.lo, tt.hi, tt.ok)
		}
	}
	for _, s := range DefaultTripStatuses {
		if _, _, err := ParseStatusRange(s); err != nil {
			t.Errorf("default %q: %v", s, err)
		}
	}
}
