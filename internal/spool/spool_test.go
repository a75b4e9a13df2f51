package spool

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

// chunks hides a body's length and hands it over in small reads, as a
// chunked request body arrives.
func chunks(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) }

func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, FilePrefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRead(t *testing.T) {
	const memory = 1000
	tests := []struct {
		name     string
		size     int
		toFile   bool
		complete bool
		file     bool
	}{
		{"empty", 0, false, true, false},
		{"small in memory", 100, false, true, false},
		{"exactly the memory", memory, false, true, false},
		{"one byte over, streamed", memory + 1, false, false, false},
		{"far over, streamed", 10 * memory, false, false, false},
		{"exactly the memory, to file", memory, true, true, false},
		{"one byte over, spilled", memory + 1, true, true, true},
		{"far over, spilled", 100 * memory, true, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := New(Config{Memory: memory, Budget: 10 * memory, Dir: dir})
			want := make([]byte, tc.size)
			rand.Read(want)
			src := chunks(want)
			b, err := s.Read(src, tc.toFile)
			if err != nil {
				t.Fatal(err)
			}
			if b.Complete() != tc.complete {
				t.Errorf("Complete() = %v, want %v", b.Complete(), tc.complete)
			}
			if tc.complete && b.Len() != int64(tc.size) {
				t.Errorf("Len() = %d, want %d", b.Len(), tc.size)
			}
			if got := b.File() != ""; got != tc.file {
				t.Errorf("File() = %q, want a file: %v", b.File(), tc.file)
			}
			if files := tempFiles(t, dir); len(files) != map[bool]int{false: 0, true: 1}[tc.file] {
				t.Errorf("temporary files %v, want one: %v", files, tc.file)
			}
			if s.InUse() > memory {
				t.Errorf("InUse() = %d, over the per-body memory %d", s.InUse(), memory)
			}
			reads := 1
			if tc.complete {
				reads = 3 // a complete body replays, once per attempt
			}
			for i := range reads {
				r, _ := b.Open()
				got, err := io.ReadAll(r)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("read %d: got %d bytes, want the %d sent", i, len(got), len(want))
				}
			}
			b.Close()
			if s.InUse() != 0 {
				t.Errorf("InUse() = %d after Close, want 0", s.InUse())
			}
			if files := tempFiles(t, dir); len(files) != 0 {
				t.Errorf("temporary files %v left after Close", files)
			}
		})
	}
}

// The budget is shared: a body that finds it used up is spilled whole to
// a file, or streamed, and the memory comes back on Close.
func TestBudget(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{Memory: 8 << 10, Budget: 8 << 10, Dir: dir})
	body := make([]byte, 6<<10)
	first, err := s.Read(chunks(body), true)
	if err != nil {
		t.Fatal(err)
	}
	if first.File() != "" || s.InUse() != 8<<10 {
		t.Fatalf("first body: file %q, in use %d; want memory only, 8 KiB", first.File(), s.InUse())
	}
	tests := []struct {
		name     string
		toFile   bool
		complete bool
		file     bool
	}{
		{"on spills", true, true, true},
		{"auto streams", false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := s.Read(chunks(body), tc.toFile)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if b.Complete() != tc.complete || (b.File() != "") != tc.file {
				t.Errorf("complete %v, file %q; want %v, a file: %v", b.Complete(), b.File(), tc.complete, tc.file)
			}
			r, _ := b.Open()
			if got, _ := io.ReadAll(r); !bytes.Equal(got, body) {
				t.Errorf("read %d bytes, want %d", len(got), len(body))
			}
			if s.InUse() != 8<<10 {
				t.Errorf("InUse() = %d, want the first body's 8 KiB only", s.InUse())
			}
		})
	}
	first.Close()
	b, err := s.Read(chunks(body), true)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.File() != "" {
		t.Errorf("after the first body closed, a body spilled to %s; want memory", b.File())
	}
}

var errClient = errors.New("client went away")

// A source that fails leaves nothing behind: no memory held, no file.
func TestReadError(t *testing.T) {
	tests := []struct {
		name   string
		src    io.Reader
		toFile bool
		want   error
	}{
		{"in memory", io.MultiReader(bytes.NewReader(make([]byte, 100)), iotest.ErrReader(errClient)), false, errClient},
		{"probing past memory", io.MultiReader(bytes.NewReader(make([]byte, 1000)), iotest.ErrReader(errClient)), false, errClient},
		{"in the file", io.MultiReader(bytes.NewReader(make([]byte, 5000)), iotest.ErrReader(errClient)), true, errClient},
		{"no progress", zeroReader{}, true, io.ErrNoProgress},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := New(Config{Memory: 1000, Budget: 1000, Dir: dir})
			b, err := s.Read(tc.src, tc.toFile)
			if !errors.Is(err, tc.want) || b != nil {
				t.Fatalf("got %v, %v; want no body and %v", b, err, tc.want)
			}
			if s.InUse() != 0 {
				t.Errorf("InUse() = %d, want 0", s.InUse())
			}
			if files := tempFiles(t, dir); len(files) != 0 {
				t.Errorf("temporary files %v left", files)
			}
		})
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

// A directory that cannot take the file fails with ErrSpill.
func TestSpillError(t *testing.T) {
	s := New(Config{Memory: 10, Budget: 10, Dir: filepath.Join(t.TempDir(), "missing")})
	_, err := s.Read(bytes.NewReader(make([]byte, 100)), true)
	if !errors.Is(err, ErrSpill) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want ErrSpill wrapping the missing directory", err)
	}
	if s.InUse() != 0 {
		t.Errorf("InUse() = %d, want 0", s.InUse())
	}
}

// TestRetain checks that a retained body outlives its owner's Close: its
// memory budget and its file stay until the last holder releases it, and a
// reader opened by the holder reads the whole body meanwhile.
func TestRetain(t *testing.T) {
	const memory = 1000
	for _, order := range []string{"close first", "release first"} {
		t.Run(order, func(t *testing.T) {
			dir := t.TempDir()
			s := New(Config{Memory: memory, Budget: 10 * memory, Dir: dir})
			want := make([]byte, 3*memory)
			rand.Read(want)
			b, err := s.Read(chunks(want), true)
			if err != nil {
				t.Fatal(err)
			}
			b.Retain()
			rd, _ := b.Open()
			if order == "close first" {
				b.Close()
				b.Close() // twice is still one owner's close
				if s.InUse() == 0 || len(tempFiles(t, dir)) != 1 {
					t.Fatalf("body freed while held: in use %d, files %v", s.InUse(), tempFiles(t, dir))
				}
			}
			got, err := io.ReadAll(rd)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("holder read %d bytes (err %v), want the %d of the body", len(got), err, len(want))
			}
			b.Release()
			if order == "release first" {
				if s.InUse() == 0 || len(tempFiles(t, dir)) != 1 {
					t.Fatalf("body freed before its owner closed it")
				}
				b.Close()
			}
			if s.InUse() != 0 || len(tempFiles(t, dir)) != 0 {
				t.Errorf("after close and release: in use %d, files %v, want none", s.InUse(), tempFiles(t, dir))
			}
		})
	}
}

func TestBuffered(t *testing.T) {
	s := New(Config{Memory: 1 << 10, Budget: 1 << 20})
	b, err := s.Read(strings.NewReader("hello"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rd, _ := b.Open()
	if got, ok := Buffered(rd); !ok || got != b {
		t.Fatal("a fresh reader of a complete body is not recognised")
	}
	rd.Read(make([]byte, 2))
	if _, ok := Buffered(rd); ok {
		t.Error("a reader already read from is taken as buffered")
	}
	if _, ok := Buffered(strings.NewReader("x")); ok {
		t.Error("another reader is taken as buffered")
	}
}
