package clientip

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	lb := []string{"10.0.0.0/8", "192.168.1.1", "fd00::/8"}
	tests := []struct {
		name        string
		trusted     []string
		peer        string
		xff         []string
		forwarded   []string
		want        string
		wantTrusted bool
	}{
		{"no trusted proxies: the peer, whatever it sends", nil, "203.0.113.9:5555", []string{"1.2.3.4"}, nil, "203.0.113.9", false},
		{"untrusted peer: spoofed header ignored", lb, "203.0.113.9:5555", []string{"1.2.3.4"}, nil, "203.0.113.9", false},
		{"trusted peer, one hop", lb, "10.1.2.3:40000", []string{"198.51.100.7"}, nil, "198.51.100.7", true},
		{"trusted peer, no header: the peer", lb, "10.1.2.3:40000", nil, nil, "10.1.2.3", true},
		{"chain of trusted proxies skipped", lb, "10.1.2.3:1", []string{"198.51.100.7, 192.168.1.1, 10.9.9.9"}, nil, "198.51.100.7", true},
		{"client-forged entries left of the client ignored", lb, "10.1.2.3:1", []string{"6.6.6.6, 198.51.100.7, 10.9.9.9"}, nil, "198.51.100.7", true},
		{"several header lines read right to left", lb, "10.1.2.3:1", []string{"6.6.6.6", "198.51.100.7", "10.9.9.9"}, nil, "198.51.100.7", true},
		{"every hop trusted: the leftmost", lb, "10.1.2.3:1", []string{"10.0.0.2, 10.0.0.3"}, nil, "10.0.0.2", true},
		{"garbage ends the walk at the last address", lb, "10.1.2.3:1", []string{"garbage, 10.0.0.3"}, nil, "10.0.0.3", true},
		{"garbage right after the peer: the peer", lb, "10.1.2.3:1", []string{"198.51.100.7, not-an-ip"}, nil, "10.1.2.3", true},
		{"entry with a port", lb, "10.1.2.3:1", []string{"198.51.100.7:8443"}, nil, "198.51.100.7", true},
		{"empty entries skipped", lb, "10.1.2.3:1", []string{" , 198.51.100.7 , ,"}, nil, "198.51.100.7", true},
		{"IPv6 peer and client", lb, "[fd00::1]:443", []string{"2001:db8::7"}, nil, "2001:db8::7", true},
		{"IPv6 entry in brackets with a port", lb, "[fd00::1]:443", []string{"[2001:db8::7]:99"}, nil, "2001:db8::7", true},
		{"IPv4-mapped peer is trusted", lb, "[::ffff:10.1.2.3]:1", []string{"198.51.100.7"}, nil, "198.51.100.7", true},
		{"Forwarded for=", lb, "10.1.2.3:1", nil, []string{`for=198.51.100.7;proto=https;by=10.1.2.3`}, "198.51.100.7", true},
		{"Forwarded chain, quoted IPv6", lb, "10.1.2.3:1", nil, []string{`for=6.6.6.6, for="[2001:db8::7]:4711", for=10.0.0.5`}, "2001:db8::7", true},
		{"Forwarded unknown ends the walk", lb, "10.1.2.3:1", nil, []string{`for=unknown, for=10.0.0.5`}, "10.0.0.5", true},
		{"Forwarded element without for= skipped", lb, "10.1.2.3:1", nil, []string{`for=198.51.100.7, proto=https`}, "198.51.100.7", true},
		{"X-Forwarded-For wins over Forwarded", lb, "10.1.2.3:1", []string{"198.51.100.7"}, []string{"for=6.6.6.6"}, "198.51.100.7", true},
		{"single-address trusted proxy", lb, "192.168.1.1:1", []string{"198.51.100.7"}, nil, "198.51.100.7", true},
		{"next to a single trusted address: untrusted", lb, "192.168.1.2:1", []string{"198.51.100.7"}, nil, "192.168.1.2", false},
		{"peer not an address", lb, "@unix", []string{"198.51.100.7"}, nil, "@unix", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.trusted)
			if err != nil {
				t.Fatal(err)
			}
			h := http.Header{}
			if tt.xff != nil {
				h["X-Forwarded-For"] = tt.xff
			}
			if tt.forwarded != nil {
				h["Forwarded"] = tt.forwarded
			}
			got, trusted := r.Resolve(tt.peer, h)
			if got != tt.want || trusted != tt.wantTrusted {
				t.Errorf("Resolve = %q, trusted %v; want %q, %v", got, trusted, tt.want, tt.wantTrusted)
			}
		})
	}
}

func TestNewRefusesBadEntries(t *testing.T) {
	for _, s := range []string{"10.0.0.0/33", "not-an-ip", "10.0.0.1/", ""} {
		if _, err := New([]string{s}); err == nil {
			t.Errorf("New(%q) accepted", s)
		}
	}
	r, err := New([]string{"10.0.0.7/8"})
	if err != nil || !r.Trusts(netip.MustParseAddr("10.200.0.1")) {
		t.Errorf("a CIDR with host bits is masked: %v", err)
	}
}

func TestResolveNoAllocs(t *testing.T) {
	r, _ := New([]string{"10.0.0.0/8"})
	h := http.Header{"X-Forwarded-For": {"198.51.100.7, 10.0.0.9"}}
	if n := testing.AllocsPerRun(100, func() { r.Resolve("10.1.2.3:5", h) }); n != 0 {
		t.Errorf("Resolve allocates %.0f times", n)
	}
	var none Resolver
	if n := testing.AllocsPerRun(100, func() { none.Resolve("10.1.2.3:5", h) }); n != 0 {
		t.Errorf("Resolve without trusted proxies allocates %.0f times", n)
	}
}

// FuzzResolve: whatever the headers say, the client is the peer or an
// address that appears in them, and an untrusted peer is always the client.
func FuzzResolve(f *testing.F) {
	f.Add("10.1.2.3:1", "198.51.100.7, 10.0.0.9", "for=1.2.3.4")
	f.Add("203.0.113.9:5", "1.2.3.4", "")
	f.Add("[fd00::1]:1", "[2001:db8::1]:5, garbage", `for="[::1]"`)
	r, _ := New([]string{"10.0.0.0/8", "fd00::/8"})
	f.Fuzz(func(t *testing.T, peer, xff, fwd string) {
		h := http.Header{}
		if xff != "" {
			h["X-Forwarded-For"] = []string{xff}
		}
		if fwd != "" {
			h["Forwarded"] = []string{fwd}
		}
		got, trusted := r.Resolve(peer, h)
		if !trusted {
			if got != hostOnly(peer) {
				t.Fatalf("untrusted peer %q: client %q", peer, got)
			}
			return
		}
		if got != hostOnly(peer) && !strings.Contains(xff+fwd, got) {
			t.Fatalf("client %q is neither the peer nor in the headers", got)
		}
		if got != hostOnly(peer) {
			if _, err := netip.ParseAddr(got); err != nil {
				t.Fatalf("client %q from the headers is not an address", got)
			}
		}
	})
}
