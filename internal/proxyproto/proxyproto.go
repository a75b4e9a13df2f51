// Package proxyproto reads and writes the PROXY protocol header, versions 1
// (text) and 2 (binary), as HAProxy specifies it
// (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt): the few
// bytes a proxy sends first on a TCP connection to say which client the
// connection is for. The L4 proxy reads it from trusted peers and sends it
// to upstreams that want it.
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// Versions.
const (
	V1 = 1
	V2 = 2
)

// Limits of what Read accepts.
const (
	// MaxV1 is the longest version 1 header, CRLF included (the spec's
	// 107 bytes).
	MaxV1 = 107
	// MaxV2 is the longest version 2 header Read accepts: the 16-byte
	// preamble and 4080 bytes of addresses and TLVs (the spec allows
	// 65535; real senders add a few small TLVs).
	MaxV2 = 4096
)

// signature starts every version 2 header.
var signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// ErrNoHeader is returned by Read when the data does not start with a
// PROXY protocol header of either version.
var ErrNoHeader = errors.New("no PROXY protocol header")

// Header is one PROXY protocol header.
type Header struct {
	// Version is V1 or V2.
	Version int
	// Local is set when the header names no client: version 1 UNKNOWN,
	// version 2 command LOCAL or an address family other than IPv4 and
	// IPv6. The connection's own endpoints then apply.
	Local bool
	// Source is the client's address and port, Destination the address
	// it connected to; both valid unless Local.
	Source, Destination netip.AddrPort
}

// Error is a malformed header: Read read a header's start and found it
// broken.
type Error struct{ Msg string }

func (e *Error) Error() string { return "bad PROXY protocol header: " + e.Msg }

func bad(format string, args ...any) error { return &Error{Msg: fmt.Sprintf(format, args...)} }

// Parse reads one header from the start of b and returns it with its
// length. It returns io.ErrUnexpectedEOF when b is a header's start that
// is not complete yet, ErrNoHeader when b cannot start a header, and an
// *Error when the header is malformed.
func Parse(b []byte) (Header, int, error) {
	switch {
	case len(b) == 0:
		return Header{}, 0, io.ErrUnexpectedEOF
	case b[0] == '\r':
		return parseV2(b)
	case b[0] == 'P':
		return parseV1(b)
	}
	return Header{}, 0, ErrNoHeader
}

// Read reads one header from r, and nothing after it: it never asks r for
// more bytes than the header still needs, so the client's first bytes stay
// unread (a version 1 line is read a byte at a time after its first 12).
// Errors are those of Parse, or r's.
func Read(r io.Reader) (Header, error) {
	var buf [MaxV1]byte
	// The first 12 bytes are either the version 2 signature or "PROXY "
	// and the start of a version 1 line, which is at least 15 bytes long.
	n := len(signature)
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		return Header{}, err
	}
	if buf[0] == '\r' {
		if !bytes.Equal(buf[:n], signature) {
			return Header{}, ErrNoHeader
		}
		var pre [16]byte
		copy(pre[:], buf[:n])
		if _, err := io.ReadFull(r, pre[n:]); err != nil {
			return Header{}, err
		}
		// The fixed part says how long the rest is, and may already be
		// wrong (a version, a family, a length out of bounds).
		h, _, err := parseV2(pre[:])
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			return h, err
		}
		full := make([]byte, 16+int(binary.BigEndian.Uint16(pre[14:])))
		copy(full, pre[:])
		if _, err := io.ReadFull(r, full[16:]); err != nil {
			return Header{}, err
		}
		h, _, err = parseV2(full)
		return h, err
	}
	// Version 1: read byte by byte to the LF, so nothing after it is
	// consumed. The line is short and already in the socket buffer.
	for {
		h, _, err := parseV1(buf[:n])
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			return h, err
		}
		if n == len(buf) {
			return Header{}, bad("version 1 line longer than %d bytes", MaxV1)
		}
		if _, err := io.ReadFull(r, buf[n:n+1]); err != nil {
			return Header{}, err
		}
		n++
	}
}

func parseV1(b []byte) (Header, int, error) {
	const prefix = "PROXY "
	if len(b) < len(prefix) {
		if !bytes.HasPrefix([]byte(prefix), b) {
			return Header{}, 0, ErrNoHeader
		}
		return Header{}, 0, io.ErrUnexpectedEOF
	}
	if !bytes.HasPrefix(b, []byte(prefix)) {
		return Header{}, 0, ErrNoHeader
	}
	end := bytes.IndexByte(b[:min(len(b), MaxV1)], '\n')
	if end < 0 {
		if len(b) >= MaxV1 {
			return Header{}, 0, bad("version 1 line longer than %d bytes", MaxV1)
		}
		return Header{}, 0, io.ErrUnexpectedEOF
	}
	if end == 0 || b[end-1] != '\r' {
		return Header{}, 0, bad("version 1 line does not end with CRLF")
	}
	line := b[len(prefix) : end-1]
	f := bytes.Split(line, []byte(" "))
	h := Header{Version: V1}
	if string(f[0]) == "UNKNOWN" {
		// The rest of the line is to be ignored (the spec).
		h.Local = true
		return h, end + 1, nil
	}
	if len(f) != 5 {
		return Header{}, 0, bad("version 1 line has %d fields, want 5 after PROXY", len(f))
	}
	var want4 bool
	switch string(f[0]) {
	case "TCP4":
		want4 = true
	case "TCP6":
	default:
		return Header{}, 0, bad("version 1 protocol %q (want TCP4, TCP6 or UNKNOWN)", clip(f[0]))
	}
	var addrs [2]netip.Addr
	for i := range addrs {
		a, err := netip.ParseAddr(string(f[1+i]))
		if err != nil || a.Zone() != "" || a.Is4() != want4 {
			return Header{}, 0, bad("version 1 address %q is not an %s address", clip(f[1+i]), string(f[0]))
		}
		addrs[i] = a
	}
	var ports [2]uint16
	for i := range ports {
		p, err := port(f[3+i])
		if err != nil {
			return Header{}, 0, err
		}
		ports[i] = p
	}
	src, dst := unmapPair(addrs[0], addrs[1])
	h.Source = netip.AddrPortFrom(src, ports[0])
	h.Destination = netip.AddrPortFrom(dst, ports[1])
	return h, end + 1, nil
}

// port parses a version 1 port: decimal 0-65535, no sign, no leading zero.
func port(b []byte) (uint16, error) {
	if len(b) == 0 || len(b) > 5 || (len(b) > 1 && b[0] == '0') {
		return 0, bad("version 1 port %q", clip(b))
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, bad("version 1 port %q", clip(b))
		}
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || n > 65535 {
		return 0, bad("version 1 port %q out of range", clip(b))
	}
	return uint16(n), nil
}

func parseV2(b []byte) (Header, int, error) {
	n := min(len(b), len(signature))
	if !bytes.Equal(b[:n], signature[:n]) {
		return Header{}, 0, ErrNoHeader
	}
	if len(b) < 16 {
		return Header{}, 0, io.ErrUnexpectedEOF
	}
	if v := b[12] >> 4; v != 2 {
		return Header{}, 0, bad("version 2 signature with version %d", v)
	}
	l := int(binary.BigEndian.Uint16(b[14:]))
	if 16+l > MaxV2 {
		return Header{}, 0, bad("version 2 header of %d bytes; at most %d accepted", 16+l, MaxV2)
	}
	cmd, fam, proto := b[12]&0x0f, b[13]>>4, b[13]&0x0f
	if cmd > 1 {
		return Header{}, 0, bad("version 2 command %d (want 0 LOCAL or 1 PROXY)", cmd)
	}
	if fam > 3 || proto > 2 {
		return Header{}, 0, bad("version 2 address family %d, protocol %d", fam, proto)
	}
	// The address block's size for the family; the header must hold it
	// even when it is LOCAL, when the receiver ignores it.
	size := [4]int{0, 12, 36, 216}[fam]
	if l < size {
		return Header{}, 0, bad("version 2 length %d too short for address family %d", l, fam)
	}
	if len(b) < 16+l {
		return Header{}, 0, io.ErrUnexpectedEOF
	}
	if err := tlvs(b[16+size : 16+l]); err != nil {
		return Header{}, 0, err
	}
	h := Header{Version: V2}
	if cmd == 0 || (fam != 1 && fam != 2) || proto != 1 {
		// LOCAL (health checks from the proxy itself), and families or
		// protocols whose addresses cannot name a TCP client: the
		// connection's own endpoints apply.
		h.Local = true
		return h, 16 + l, nil
	}
	a := b[16 : 16+size]
	if fam == 1 {
		h.Source = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[0:4])), binary.BigEndian.Uint16(a[8:]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[4:8])), binary.BigEndian.Uint16(a[10:]))
	} else {
		src, dst := unmapPair(netip.AddrFrom16([16]byte(a[0:16])), netip.AddrFrom16([16]byte(a[16:32])))
		h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(a[32:]))
		h.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(a[34:]))
	}
	return h, 16 + l, nil
}

// tlvs checks that b is a well-formed sequence of TLVs (type, 16-bit
// length, value); their contents are not used.
func tlvs(b []byte) error {
	for len(b) > 0 {
		if len(b) < 3 {
			return bad("version 2 TLV cut short")
		}
		l := int(binary.BigEndian.Uint16(b[1:3]))
		if len(b) < 3+l {
			return bad("version 2 TLV of type 0x%02x runs past the header", b[0])
		}
		b = b[3+l:]
	}
	return nil
}

// unmapPair turns IPv4-mapped IPv6 addresses into IPv4 ones when both
// are mapped, so that a pair keeps one family: an IPv6 source with a
// mapped destination stays an IPv6 pair.
func unmapPair(a, b netip.Addr) (netip.Addr, netip.Addr) {
	if a.Unmap().Is4() && b.Unmap().Is4() {
		return a.Unmap(), b.Unmap()
	}
	return a, b
}

func clip(b []byte) string {
	if len(b) > 40 {
		b = b[:40]
	}
	return string(b)
}

// Append appends a header of version v naming the connection from src to
// dst. When src or dst is not valid, or their families differ, it appends
// a header that names no client (v1 UNKNOWN, v2 LOCAL when local is set,
// else v2 PROXY with address family UNSPEC). A local header (the proxy's
// own connection, such as a health check) is v1 UNKNOWN or v2 LOCAL.
func Append(dst []byte, v int, local bool, src, to netip.AddrPort) []byte {
	sa, da := unmapPair(src.Addr(), to.Addr())
	known := !local && sa.IsValid() && da.IsValid() && sa.Is4() == da.Is4()
	if v == V1 {
		if !known {
			return append(dst, "PROXY UNKNOWN\r\n"...)
		}
		proto := "TCP6"
		if sa.Is4() {
			proto = "TCP4"
		}
		dst = append(dst, "PROXY "+proto+" "...)
		dst = sa.AppendTo(dst)
		dst = append(dst, ' ')
		dst = da.AppendTo(dst)
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, uint64(src.Port()), 10)
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, uint64(to.Port()), 10)
		return append(dst, "\r\n"...)
	}
	dst = append(dst, signature...)
	switch {
	case local:
		return append(dst, 0x20, 0x00, 0, 0) // LOCAL, UNSPEC, no addresses
	case !known:
		return append(dst, 0x21, 0x00, 0, 0) // PROXY, UNSPEC
	case sa.Is4():
		dst = append(dst, 0x21, 0x11, 0, 12) // PROXY, INET, STREAM
		a, b := sa.As4(), da.As4()
		dst = append(dst, a[:]...)
		dst = append(dst, b[:]...)
	default:
		dst = append(dst, 0x21, 0x21, 0, 36) // PROXY, INET6, STREAM
		a, b := sa.As16(), da.As16()
		dst = append(dst, a[:]...)
		dst = append(dst, b[:]...)
	}
	dst = binary.BigEndian.AppendUint16(dst, src.Port())
	return binary.BigEndian.AppendUint16(dst, to.Port())
}
