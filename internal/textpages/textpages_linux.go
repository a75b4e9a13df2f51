package textpages

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// span is a range of virtual addresses, [lo, hi).
type span struct{ lo, hi uint64 }

// Release drops the resident pages of the executable's read-only mappings
// (see the package comment).
func Release() (Result, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return Result{Skipped: "no /proc/self/exe"}, err
	}
	if strings.HasSuffix(exe, " (deleted)") {
		return Result{Skipped: "the executable was replaced on disk"}, nil
	}
	allowed, why, err := readOnlySegments(exe)
	if err != nil || why != "" {
		return Result{Skipped: why}, err
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return Result{Skipped: "no /proc/self/maps"}, err
	}
	spans := releasable(maps, exe, allowed)
	if len(spans) == 0 {
		return Result{Skipped: "no read-only mapping of the executable found"}, nil
	}
	res := Result{RSSBefore: vmRSS()}
	for _, s := range spans {
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, uintptr(s.lo), uintptr(s.hi-s.lo), syscall.MADV_DONTNEED); e != 0 {
			return res, fmt.Errorf("madvise %#x-%#x: %w", s.lo, s.hi, e)
		}
		res.Bytes += int64(s.hi - s.lo)
	}
	res.RSSAfter = vmRSS()
	return res, nil
}

// readOnlySegments returns the address ranges of the PT_LOAD segments of
// the executable at path that are not writable. It refuses (why != "") a
// position-independent executable (its mappings are relocated, and a
// relocated page differs from the file) and one with a RELRO segment
// (written by the dynamic loader before it is made read-only).
func readOnlySegments(path string) (segs []span, why string, err error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, "the executable is not readable as ELF", err
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC {
		return nil, "not a fixed-address executable (" + f.Type.String() + ")", nil
	}
	for _, p := range f.Progs {
		switch {
		case p.Type == elf.PT_GNU_RELRO:
			return nil, "the executable has a RELRO segment", nil
		case p.Type == elf.PT_LOAD && p.Flags&elf.PF_W == 0 && p.Filesz == p.Memsz:
			segs = append(segs, span{p.Vaddr, p.Vaddr + p.Memsz})
		}
	}
	return segs, "", nil
}

// releasable returns the mappings of exe in a /proc/self/maps listing that
// are read-only, private, backed by exe and inside one of the allowed
// segments (each clipped to the whole pages inside it).
func releasable(maps []byte, exe string, allowed []span) []span {
	var out []span
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 6 || strings.Join(fl[5:], " ") != exe {
			continue
		}
		perm := fl[1]
		if len(perm) != 4 || perm[0] != 'r' || perm[1] != '-' || perm[3] != 'p' {
			continue
		}
		lo, hi, ok := strings.Cut(fl[0], "-")
		if !ok {
			continue
		}
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || b <= a {
			continue
		}
		for _, s := range allowed {
			l, h := max(a, s.lo), min(b, s.hi)
			l = (l + 4095) &^ 4095
			h &^= 4095
			if h > l {
				out = append(out, span{l, h})
			}
		}
	}
	return out
}

// vmRSS returns this process's VmRSS in KiB, 0 if unknown.
func vmRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
