package route

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestShape(t *testing.T) {
	const doc = `{"id":1,"name":"Ada","secret":"s","address":{"city":"London","zip":"N1","geo":{"lat":1.5,"lon":2}},
		"orders":[{"id":1,"total":9.5,"x":0},{"id":2,"total":20,"x":1},"scalar"]}`
	tests := []struct {
		name   string
		allow  []string
		rename map[string]string
		want   string
	}{
		{"all", nil, nil, `{"address":{"city":"London","geo":{"lat":1.5,"lon":2},"zip":"N1"},"id":1,"name":"Ada","orders":[{"id":1,"total":9.5,"x":0},{"id":2,"total":20,"x":1},"scalar"],"secret":"s"}`},
		{"top fields", []string{"id", "name"}, nil, `{"id":1,"name":"Ada"}`},
		{"dotted", []string{"address.city", "address.geo.lat"}, nil, `{"address":{"city":"London","geo":{"lat":1.5}}}`},
		{"through arrays", []string{"orders.total"}, nil, `{"orders":[{"total":9.5},{"total":20},null]}`},
		{"missing", []string{"nope", "address.nope", "id.deeper"}, nil, `{"address":{}}`},
		{"rename", []string{"id", "name"}, map[string]string{"name": "full_name", "absent": "x"}, `{"full_name":"Ada","id":1}`},
		{"empty allow", []string{}, nil, `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := decodeJSON([]byte(doc), true)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(shape(v, SplitAllow(tt.allow), tt.rename))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("got  %s\nwant %s", b, tt.want)
			}
		})
	}
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		in     string
		object bool
		ok     bool
	}{
		{`{"a":1}`, true, true},
		{` {"a":12345678901234567890} `, true, true},
		{`[1,2]`, false, true},
		{`[1,2]`, true, false},
		{`"s"`, false, true},
		{`<html>`, false, false},
		{`{"a":1}{"b":2}`, true, false},
		{`{"a":1} x`, true, false},
		{``, false, false},
	}
	for _, tt := range tests {
		_, err := decodeJSON([]byte(tt.in), tt.object)
		if (err == nil) != tt.ok {
			t.Errorf("decodeJSON(%q, %v) = %v, want ok=%v", tt.in, tt.object, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrNotJSON) {
			t.Errorf("decodeJSON(%q): %v is not ErrNotJSON", tt.in, err)
		}
	}
	// Large numbers keep their digits.
	v, _ := decodeJSON([]byte(`{"n":12345678901234567890}`), true)
	if b, _ := json.Marshal(v); string(b) != `{"n":12345678901234567890}` {
		t.Errorf("number changed: %s", b)
	}
}

// FuzzMerge feeds backend answers and allow/rename settings through the
// decode and shape steps of an aggregate: never a panic, and the result
// is always JSON again.
func FuzzMerge(f *testing.F) {
	f.Add(`{"a":{"b":[{"c":1}]},"d":2}`, "a.b.c,d", "d=e")
	f.Add(`[{"x":1},2,null]`, "x", "")
	f.Add(`{"a":[[{"b":1}]]}`, "a.b,a", "a=a")
	f.Fuzz(func(t *testing.T, doc, allow, rename string) {
		v, err := decodeJSON([]byte(doc), false)
		if err != nil {
			return
		}
		var paths []string
		if allow != "" {
			paths = strings.Split(allow, ",")
		}
		var ren map[string]string
		for _, kv := range strings.Split(rename, ",") {
			if from, to, ok := strings.Cut(kv, "="); ok {
				if ren == nil {
					ren = map[string]string{}
				}
				ren[from] = to
			}
		}
		out := map[string]any{"g": shape(v, SplitAllow(paths), ren)}
		if _, err := json.Marshal(out); err != nil {
			t.Fatalf("merged answer does not marshal: %v", err)
		}
	})
}
