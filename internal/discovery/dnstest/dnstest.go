// Package dnstest runs a real DNS server on 127.0.0.1 (UDP and TCP, one
// port) for tests: it answers A, AAAA and SRV questions from records the
// test sets and changes while it runs, and can be told to fail (an error
// code), to answer garbage, or to stay silent.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// Mode is how the server answers.
type Mode int

const (
	// Answer answers from the records (NXDOMAIN for unknown names).
	Answer Mode = iota
	// ServFail answers every question with SERVFAIL.
	ServFail
	// Garbage answers every question with bytes that are not DNS.
	Garbage
	// Silent never answers (the client times out).
	Silent
	// WrongID answers with a message whose ID is not the question's.
	WrongID
)

// SRV is one SRV record.
type SRV struct {
	Priority, Weight, Port uint16
	Target                 string
}

// Server is a DNS server for tests.
type Server struct {
	// Addr is host:port, for discovery's resolver.
	Addr string

	mu      sync.Mutex
	a       map[string][]string // name -> IPs (v4 and v6)
	srv     map[string][]SRV
	ttl     uint32
	extra   bool // SRV answers carry the targets' addresses
	mode    atomic.Int32
	queries atomic.Int64
	udp     *dns.Server
	tcp     *dns.Server
}

// Start starts a server on a free 127.0.0.1 port, stopped when the test
// ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{a: map[string][]string{}, srv: map[string][]SRV{}, ttl: 5}
	// One port for both transports: UDP first, then TCP on the same port.
	var pc net.PacketConn
	var ln net.Listener
	for i := 0; i < 20 && ln == nil; i++ {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			ln = nil
		}
	}
	if ln == nil {
		t.Fatal("dnstest: no port free for both UDP and TCP")
	}
	s.Addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: ln, Handler: h}
	var ready sync.WaitGroup
	ready.Add(2)
	s.udp.NotifyStartedFunc = ready.Done
	s.tcp.NotifyStartedFunc = ready.Done
	go s.udp.ActivateAndServe()
	go s.tcp.ActivateAndServe()
	ready.Wait()
	t.Cleanup(func() {
		s.udp.Shutdown()
		s.tcp.Shutdown()
	})
	return s
}

// SetA makes name resolve to ips (IPv4 addresses answer A questions,
// IPv6 ones AAAA questions); no ips removes the name.
func (s *Server) SetA(name string, ips ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(ips) == 0 {
		delete(s.a, dns.Fqdn(strings.ToLower(name)))
		return
	}
	s.a[dns.Fqdn(strings.ToLower(name))] = ips
}

// SetSRV sets the SRV records of name; none removes the name.
func (s *Server) SetSRV(name string, recs ...SRV) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(recs) == 0 {
		delete(s.srv, dns.Fqdn(strings.ToLower(name)))
		return
	}
	s.srv[dns.Fqdn(strings.ToLower(name))] = recs
}

// SetTTL sets the TTL of every answer, in seconds (default 5).
func (s *Server) SetTTL(ttl uint32) {
	s.mu.Lock()
	s.ttl = ttl
	s.mu.Unlock()
}

// SetExtra makes SRV answers carry their targets' A/AAAA records in the
// additional section.
func (s *Server) SetExtra(on bool) {
	s.mu.Lock()
	s.extra = on
	s.mu.Unlock()
}

// SetMode sets how the server answers from now on.
func (s *Server) SetMode(m Mode) { s.mode.Store(int32(m)) }

// Queries returns how many questions the server has received.
func (s *Server) Queries() int64 { return s.queries.Load() }

func (s *Server) serve(w dns.ResponseWriter, q *dns.Msg) {
	s.queries.Add(1)
	switch Mode(s.mode.Load()) {
	case Silent:
		return // no answer: the client's query times out
	case Garbage:
		w.Write([]byte("\x00\x01this is not a DNS message at all"))
		return
	case ServFail:
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeServerFailure)
		w.WriteMsg(m)
		return
	case WrongID:
		m := s.answer(q)
		m.Id = q.Id + 1
		w.WriteMsg(m)
		return
	}
	w.WriteMsg(s.answer(q))
}

func (s *Server) answer(q *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	if len(q.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	qq := q.Question[0]
	name := strings.ToLower(qq.Name)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, hasA := s.a[name]
	_, hasSRV := s.srv[name]
	if !hasA && !hasSRV {
		m.Rcode = dns.RcodeNameError
		return m
	}
	switch qq.Qtype {
	case dns.TypeA, dns.TypeAAAA:
		m.Answer = s.addrs(name, qq.Qtype)
	case dns.TypeSRV:
		for _, r := range s.srv[name] {
			m.Answer = append(m.Answer, &dns.SRV{Hdr: s.hdr(name, dns.TypeSRV), Priority: r.Priority, Weight: r.Weight,
				Port: r.Port, Target: dns.Fqdn(r.Target)})
			if s.extra {
				t := dns.Fqdn(strings.ToLower(r.Target))
				m.Extra = append(m.Extra, s.addrs(t, dns.TypeA)...)
				m.Extra = append(m.Extra, s.addrs(t, dns.TypeAAAA)...)
			}
		}
	}
	return m
}

// addrs returns name's records of type qt. s.mu held.
func (s *Server) addrs(name string, qt uint16) []dns.RR {
	var out []dns.RR
	for _, a := range s.a[name] {
		ip := net.ParseIP(a)
		if ip == nil {
			continue
		}
		if v4 := ip.To4(); v4 != nil && qt == dns.TypeA {
			out = append(out, &dns.A{Hdr: s.hdr(name, dns.TypeA), A: v4})
		} else if v4 == nil && qt == dns.TypeAAAA {
			out = append(out, &dns.AAAA{Hdr: s.hdr(name, dns.TypeAAAA), AAAA: ip})
		}
	}
	return out
}

func (s *Server) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: s.ttl}
}
