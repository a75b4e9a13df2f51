package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// dnsSource resolves A and AAAA records (dns), or SRV records and then
// their targets' addresses (srv), every Refresh or at the answer's TTL.
//
// With a resolver address, or with refresh: ttl, queries go straight to a
// DNS server with github.com/miekg/dns (the answer's TTLs are needed, and
// the system resolver hides them): the configured resolver, else the
// nameservers and search list of /etc/resolv.conf. With the system
// resolver and a fixed refresh, Go's resolver is used, which also reads
// /etc/hosts.
type dnsSource struct {
	cfg     Config
	servers []string // host:port; empty: Go's resolver
	names   func(string) []string
}

const resolvConf = "/etc/resolv.conf"

func newDNS(cfg Config) (*dnsSource, error) {
	if cfg.Name == "" {
		return nil, errors.New("no name to resolve")
	}
	if cfg.Type == "dns" && (cfg.Port < 1 || cfg.Port > 65535) {
		return nil, fmt.Errorf("port %d out of range", cfg.Port)
	}
	if !cfg.TTL && cfg.Refresh <= 0 {
		return nil, errors.New("no refresh period")
	}
	s := &dnsSource{cfg: cfg, names: func(n string) []string { return []string{dns.Fqdn(n)} }}
	switch {
	case cfg.Resolver != "":
		s.servers = []string{cfg.Resolver}
	case cfg.TTL:
		// Read when the source is made; a resolv.conf that cannot be read
		// shows as the error of every lookup.
		if cc, err := dns.ClientConfigFromFile(resolvConf); err == nil && len(cc.Servers) > 0 {
			for _, h := range cc.Servers {
				s.servers = append(s.servers, net.JoinHostPort(h, cc.Port))
			}
			s.names = cc.NameList
		}
	}
	return s, nil
}

func (s *dnsSource) describe() string {
	what := s.cfg.Type + " " + s.cfg.Name
	if s.cfg.Type == "dns" {
		what = "dns " + net.JoinHostPort(strings.TrimSuffix(s.cfg.Name, "."), strconv.Itoa(s.cfg.Port))
	}
	switch {
	case s.cfg.Resolver != "":
		return what + " via " + s.cfg.Resolver
	case len(s.servers) > 0:
		return what + " via " + strings.Join(s.servers, ",")
	}
	return what + " via the system resolver"
}

// run looks the name up at once, then every Refresh (or at the TTL) until
// ctx ends.
func (s *dnsSource) run(ctx context.Context, w *Watcher) {
	for {
		lctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		eps, ttl, err := s.lookup(lctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		wait := s.cfg.Refresh
		if err != nil {
			w.fail(err)
			if s.cfg.TTL {
				wait = TTLFailRetry
			}
		} else {
			w.update(eps, true)
			if s.cfg.TTL {
				wait = min(max(ttl, MinTTL), MaxTTL)
			}
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

// lookup returns the endpoints the name resolves to now and the smallest
// TTL of the records that gave them (0 with Go's resolver).
func (s *dnsSource) lookup(ctx context.Context) ([]Endpoint, time.Duration, error) {
	if s.cfg.Type == "srv" {
		return s.lookupSRV(ctx)
	}
	addrs, ttl, err := s.lookupIP(ctx, s.cfg.Name, nil)
	if err != nil {
		return nil, 0, err
	}
	eps := make([]Endpoint, len(addrs))
	for i, a := range addrs {
		eps[i] = Endpoint{Addr: hostPort(a, s.cfg.Port), Weight: 1}
	}
	return eps, ttl, nil
}

// lookupIP resolves the A and AAAA records of name, in parallel. Both
// must answer: a failure of either is the lookup's failure, so that one
// family's targets are not dropped because its query failed. extra holds
// records that came with an earlier answer (SRV additionals).
func (s *dnsSource) lookupIP(ctx context.Context, name string, extra []dns.RR) ([]net.IP, time.Duration, error) {
	if ips, ttl := fromExtra(name, extra); len(ips) > 0 {
		return ips, ttl, nil
	}
	if len(s.servers) == 0 {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", name)
		if err != nil {
			return nil, 0, fmt.Errorf("resolve %s: %w", name, err)
		}
		out := make([]net.IP, len(ips))
		for i, ip := range ips {
			out[i] = net.IP(ip.Unmap().AsSlice())
		}
		return out, 0, nil
	}
	var (
		wg      sync.WaitGroup
		answers [2][]dns.RR
		errs    [2]error
	)
	for i, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		wg.Go(func() {
			// The root of a short-lived query goroutine: a panic is this
			// query's failure.
			defer func() {
				if r := recover(); r != nil {
					errs[i] = fmt.Errorf("resolve %s %s: panic: %v", name, dns.TypeToString[qt], r)
				}
			}()
			answers[i], errs[i] = s.query(ctx, name, qt)
		})
	}
	wg.Wait()
	if err := errors.Join(errs[0], errs[1]); err != nil {
		return nil, 0, err
	}
	var ips []net.IP
	var ttl uint32
	first := true
	for _, rr := range append(answers[0], answers[1]...) {
		var ip net.IP
		switch r := rr.(type) {
		case *dns.A:
			ip = r.A
		case *dns.AAAA:
			ip = r.AAAA
		default:
			continue // CNAMEs on the way
		}
		ips = append(ips, ip)
		if h := rr.Header().Ttl; first || h < ttl {
			ttl, first = h, false
		}
	}
	return ips, time.Duration(ttl) * time.Second, nil
}

// fromExtra returns the addresses of name among extra.
func fromExtra(name string, extra []dns.RR) ([]net.IP, time.Duration) {
	var ips []net.IP
	var ttl uint32
	for _, rr := range extra {
		h := rr.Header()
		if !strings.EqualFold(h.Name, dns.Fqdn(name)) {
			continue
		}
		switch r := rr.(type) {
		case *dns.A:
			ips = append(ips, r.A)
		case *dns.AAAA:
			ips = append(ips, r.AAAA)
		default:
			continue
		}
		if len(ips) == 1 || h.Ttl < ttl {
			ttl = h.Ttl
		}
	}
	return ips, time.Duration(ttl) * time.Second
}

// lookupSRV resolves the SRV records of the name, then each record's
// target: every address of a target is an endpoint with the record's
// port, weight and priority. A record whose target is "." (RFC 2782: no
// service) is skipped; a weight of 0 counts as 1.
func (s *dnsSource) lookupSRV(ctx context.Context) ([]Endpoint, time.Duration, error) {
	type rec struct {
		target       string
		port         uint16
		prio, weight uint16
		ttl          time.Duration
	}
	var recs []rec
	var extra []dns.RR
	if len(s.servers) == 0 {
		_, srvs, err := net.DefaultResolver.LookupSRV(ctx, "", "", s.cfg.Name)
		if err != nil {
			return nil, 0, fmt.Errorf("resolve SRV %s: %w", s.cfg.Name, err)
		}
		for _, r := range srvs {
			recs = append(recs, rec{target: r.Target, port: r.Port, prio: r.Priority, weight: r.Weight})
		}
	} else {
		msg, err := s.exchange(ctx, s.cfg.Name, dns.TypeSRV)
		if err != nil {
			return nil, 0, err
		}
		for _, rr := range msg.Answer {
			if r, ok := rr.(*dns.SRV); ok {
				recs = append(recs, rec{target: r.Target, port: r.Port, prio: r.Priority, weight: r.Weight,
					ttl: time.Duration(r.Hdr.Ttl) * time.Second})
			}
		}
		extra = msg.Extra
	}
	var eps []Endpoint
	var ttl time.Duration
	first := true
	minTTL := func(d time.Duration) {
		if first || d < ttl {
			ttl, first = d, false
		}
	}
	for _, r := range recs {
		if r.target == "." || r.target == "" || r.port == 0 {
			continue
		}
		minTTL(r.ttl)
		var ips []net.IP
		if ip, err := netip.ParseAddr(strings.TrimSuffix(r.target, ".")); err == nil {
			ips = []net.IP{net.IP(ip.Unmap().AsSlice())}
		} else {
			var t time.Duration
			ips, t, err = s.lookupIP(ctx, r.target, extra)
			if err != nil {
				return nil, 0, fmt.Errorf("resolve SRV target %s: %w", r.target, err)
			}
			if len(s.servers) > 0 {
				minTTL(t)
			}
		}
		for _, ip := range ips {
			eps = append(eps, Endpoint{Addr: hostPort(ip, int(r.port)), Weight: max(int(r.weight), 1), Priority: int(r.prio)})
		}
	}
	return eps, ttl, nil
}

// query asks for name's qtype records and returns the answer section.
func (s *dnsSource) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	msg, err := s.exchange(ctx, name, qtype)
	if err != nil {
		return nil, err
	}
	return msg.Answer, nil
}

// exchange asks the servers in turn for name's qtype records (each name
// of the search list in turn with resolv.conf) until one answers. An
// answer that says the name does not exist ends the search for that name;
// a server failure moves on to the next server.
func (s *dnsSource) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	var last error
	for _, n := range s.names(name) {
		for _, srv := range s.servers {
			msg, err := exchangeOne(ctx, n, qtype, srv)
			if err == nil {
				return msg, nil
			}
			last = err
			var rc *rcodeError
			if errors.As(err, &rc) && rc.code == dns.RcodeNameError {
				break // NXDOMAIN: the next name of the search list
			}
			if ctx.Err() != nil {
				return nil, last
			}
		}
	}
	if last == nil {
		last = fmt.Errorf("resolve %s: no DNS server", name)
	}
	return nil, last
}

// rcodeError is an answer with an error code (SERVFAIL, NXDOMAIN, ...).
type rcodeError struct {
	name, qtype, server string
	code                int
}

func (e *rcodeError) Error() string {
	return fmt.Sprintf("resolve %s %s via %s: %s", e.name, e.qtype, e.server, dns.RcodeToString[e.code])
}

// exchangeOne sends one query over UDP, again over TCP when the answer is
// truncated.
func exchangeOne(ctx context.Context, name string, qtype uint16, server string) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = true
	q.SetEdns0(4096, false)
	c := &dns.Client{Net: "udp", UDPSize: 4096}
	if d, ok := ctx.Deadline(); ok {
		c.Timeout = time.Until(d)
	}
	tname := dns.TypeToString[qtype]
	r, _, err := c.ExchangeContext(ctx, q, server)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, q, server)
	}
	if err != nil {
		return nil, fmt.Errorf("resolve %s %s via %s: %w", strings.TrimSuffix(name, "."), tname, server, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return nil, &rcodeError{name: strings.TrimSuffix(name, "."), qtype: tname, server: server, code: r.Rcode}
	}
	return r, nil
}
