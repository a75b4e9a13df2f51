package retry

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Backoff returns the wait before retry number attempt+1 (attempt counts
// from 0 for the first retry): exponential with full jitter, uniform in
// [0, min(max, base·2^attempt)) as in AWS's "Exponential Backoff And
// Jitter". rnd returns a float in [0, 1); nil means math/rand/v2.Float64.
// A non-positive base gives 0; a non-positive max means no cap.
func Backoff(attempt int, base, max time.Duration, rnd func() float64) time.Duration {
	if base <= 0 {
		return 0
	}
	if attempt < 0 {
		attempt = 0
	}
	ceil := base
	for i := 0; i < attempt; i++ {
		if (max > 0 && ceil >= max) || ceil > (1<<62)/2 {
			break // doubling further cannot change the capped result, or would overflow
		}
		ceil *= 2
	}
	if max > 0 && ceil > max {
		ceil = max
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	return time.Duration(rnd() * float64(ceil))
}

// ParseRetryAfter interprets a Retry-After header value (RFC 9110 section
// 10.2.3): either delay-seconds or an HTTP-date, taken relative to now. It
// reports false for an empty or malformed value. A date in the past gives 0.
func ParseRetryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if h[0] >= '0' && h[0] <= '9' {
		secs, err := strconv.ParseUint(h, 10, 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return maxDuration, true
			}
			return 0, false
		}
		if secs > uint64(maxDuration/time.Second) {
			return maxDuration, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(h)
	if err != nil {
		return 0, false
	}
	if d := t.Sub(now); d > 0 {
		return d, true
	}
	return 0, true
}

const maxDuration = time.Duration(1<<63 - 1)
