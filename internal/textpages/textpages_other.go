//go:build !linux

package textpages

// Release does nothing outside Linux.
func Release() (Result, error) { return Result{Skipped: "not Linux"}, nil }
