package registry

import (
	"slices"
	"testing"
)

type closer struct{ closed int }

func (c *closer) Close() { c.closed++ }

func TestRetention(t *testing.T) {
	reg := New()
	made := 0
	claim := func(key string) (*Claims, **closer) {
		c := &Claims{}
		var got *closer
		Claim(c, key, func() *closer { made++; return &closer{} }, func(v *closer) { got = v })
		return c, &got
	}
	a, av := claim("k")
	b, bv := claim("k")
	o, _ := claim("other")
	tests := []struct {
		name  string
		step  func()
		refs  int
		made  int
		keys  []string
		close int
	}{
		{"first acquire makes", func() { a.Acquire(reg) }, 1, 1, []string{"k"}, 0},
		{"second shares", func() { b.Acquire(reg) }, 2, 1, []string{"k"}, 0},
		{"acquire twice is a no-op", func() { b.Acquire(reg) }, 2, 1, []string{"k"}, 0},
		{"other key", func() { o.Acquire(reg) }, 2, 2, []string{"k", "other"}, 0},
		{"release keeps while held", func() { a.Release() }, 1, 2, []string{"k", "other"}, 0},
		{"release twice is a no-op", func() { a.Release() }, 1, 2, []string{"k", "other"}, 0},
		{"last release closes", func() { b.Release() }, 0, 2, []string{"other"}, 1},
	}
	for _, tc := range tests {
		tc.step()
		if reg.Refs("k") != tc.refs || made != tc.made || !slices.Equal(reg.Keys(), tc.keys) || (*av).closed != tc.close {
			t.Fatalf("%s: refs %d made %d keys %v closed %d", tc.name, reg.Refs("k"), made, reg.Keys(), (*av).closed)
		}
	}
	if *av != *bv {
		t.Fatal("claims of one key got different state")
	}
	reg.Close()
	if len(reg.Keys()) != 0 {
		t.Fatal("Close left state")
	}
}

func TestAfterAcquireAndNilRegistry(t *testing.T) {
	c := &Claims{}
	var v *closer
	order := []string{}
	Claim(c, "k", func() *closer { return &closer{} }, func(x *closer) { v = x; order = append(order, "set") })
	c.AfterAcquire(func() { order = append(order, "after") })
	c.Acquire(nil) // fresh state of its own
	if v == nil || !slices.Equal(order, []string{"set", "after"}) {
		t.Fatalf("order %v", order)
	}
	c.Release()
	var unacquired Claims
	unacquired.Release() // before Acquire: nothing
}

// Values returns the states under a prefix, in key order.
func TestValues(t *testing.T) {
	reg := New()
	c := &Claims{}
	for i, k := range []string{"redis|b", "pool|x", "redis|a"} {
		Claim(c, k, func() *closer { return &closer{closed: i} }, func(*closer) {})
	}
	c.Acquire(reg)
	got := reg.Values("redis|")
	if len(got) != 2 || got[0].(*closer).closed != 2 || got[1].(*closer).closed != 0 {
		t.Fatalf("Values(redis|) = %v, want the two redis states", got)
	}
	if n := len(reg.Values("none|")); n != 0 {
		t.Fatalf("Values(none|) has %d states", n)
	}
}
