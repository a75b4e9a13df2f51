// Package textpages gives back, once the gateway has started, the pages
// of its own executable that only the start-up touched.
//
// A Go binary of Rampart's size (about 57 MB, 18 MB of machine code and
// 21 MB of read-only data) has about 24 MiB of it resident after start-up:
// every package's init, the config compiler and the kernel's fault-around
// (a page fault maps up to 64 KiB of neighbouring pages from the page cache)
// touch far more of it than serving does. Those pages are clean and
// file-backed, so the kernel could reclaim them under pressure, but they
// count in the process's RSS (and in a container's working set) until it
// does. Release drops them from the process's page tables with
// madvise(MADV_DONTNEED); any page needed again is mapped back from the
// page cache on first touch (a minor fault, no disk read while the file
// stays cached). Only read-only, non-writable mappings of a non-PIE
// executable without a RELRO segment are touched: their contents always
// equal the file's, so nothing can be lost.
package textpages

import "os"

// Result says what Release did.
type Result struct {
	// Bytes is the length of the mappings released.
	Bytes int64
	// RSSBefore and RSSAfter are the process's VmRSS in KiB around it
	// (0 when /proc could not be read).
	RSSBefore, RSSAfter int64
	// Skipped says why nothing was released ("" when something was).
	Skipped string
}

// Enabled reports whether Release should run: on unless
// RAMPART_RELEASE_STARTUP_PAGES=0.
func Enabled() bool { return os.Getenv("RAMPART_RELEASE_STARTUP_PAGES") != "0" }
