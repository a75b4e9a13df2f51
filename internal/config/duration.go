package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as a Go duration string ("250ms",
// "10s", "5m") in config files.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// ParseDuration parses a Go duration string; "0" is accepted.
func ParseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. 250ms, 10s, 5m)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return Duration(d), nil
}

// Rate is a number of events per period, written "N/s", "N/m" or "N/h".
type Rate struct {
	N      float64
	Period time.Duration
}

// PerSecond returns the rate in events per second.
func (r Rate) PerSecond() float64 {
	if r.Period <= 0 {
		return 0
	}
	return r.N / r.Period.Seconds()
}

// String formats r as N/s, N/m or N/h.
func (r Rate) String() string {
	unit := "s"
	switch r.Period {
	case time.Minute:
		unit = "m"
	case time.Hour:
		unit = "h"
	}
	return strconv.FormatFloat(r.N, 'f', -1, 64) + "/" + unit
}

// MarshalText writes r as N/s, N/m or N/h.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// ParseRate parses "N/s", "N/m" or "N/h" with N > 0.
func ParseRate(s string) (Rate, error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Rate{}, fmt.Errorf("invalid rate %q (want N/s, N/m or N/h)", s)
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || n <= 0 {
		return Rate{}, fmt.Errorf("invalid rate %q: count must be a positive number", s)
	}
	var p time.Duration
	switch strings.TrimSpace(unit) {
	case "s":
		p = time.Second
	case "m":
		p = time.Minute
	case "h":
		p = time.Hour
	default:
		return Rate{}, fmt.Errorf("invalid rate %q: unit must be s, m or h", s)
	}
	return Rate{N: n, Period: p}, nil
}

// UnmarshalText parses a Go duration string (see ParseDuration).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// UnmarshalText parses N/s, N/m or N/h (see ParseRate).
func (r *Rate) UnmarshalText(b []byte) error {
	v, err := ParseRate(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Refresh is a discovery refresh period: a duration, or the records' TTL.
type Refresh struct {
	// Every is the period when TTL is false.
	Every Duration
	// TTL refreshes at the smallest TTL of the last answer.
	TTL bool
}

// String formats r as a duration or "ttl".
func (r Refresh) String() string {
	if r.TTL {
		return "ttl"
	}
	return r.Every.String()
}

// IsZero reports whether r is unset.
func (r Refresh) IsZero() bool { return !r.TTL && r.Every == 0 }

// MarshalText writes r as a duration or "ttl".
func (r Refresh) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses a Go duration or "ttl".
func (r *Refresh) UnmarshalText(b []byte) error {
	if strings.TrimSpace(string(b)) == "ttl" {
		*r = Refresh{TTL: true}
		return nil
	}
	d, err := ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid refresh %q (want a duration such as 10s, or ttl)", b)
	}
	*r = Refresh{Every: d}
	return nil
}
