package policy

import (
	"encoding/json"
	"strconv"
	"strings"
)

// ClaimText returns a verified token claim (exchange.Exchange.Claims) as
// text: a string as it is, a number or boolean in its JSON form, an array
// of scalars joined with commas, an object as compact JSON. ok is false for
// an absent (nil) claim.
func ClaimText(v any) (s string, ok bool) {
	switch v := v.(type) {
	case nil:
		return "", false
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			switch e.(type) {
			case []any, map[string]any:
				b, _ := json.Marshal(v)
				return string(b), true
			}
			t, _ := ClaimText(e)
			parts = append(parts, t)
		}
		return strings.Join(parts, ","), true
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// ClaimStrings returns a claim that lists values, as roles and scopes do:
// an array's string elements, or a string split at spaces (the form of
// OAuth's scope claim, RFC 8693, section 4.2). Anything else gives nil.
func ClaimStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
