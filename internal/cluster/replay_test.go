package cluster

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReplay(t *testing.T) {
	body := strings.Repeat("0123456789", 1000) // 10 000 bytes
	t.Run("replays a body within the limit", func(t *testing.T) {
		r := &replay{src: io.NopCloser(iotest.HalfReader(strings.NewReader(body))), limit: 64 << 10}
		for attempt := 0; attempt < 3; attempt++ {
			got, err := io.ReadAll(r.reader())
			if err != nil || string(got) != body {
				t.Fatalf("attempt %d: %d bytes, %v", attempt, len(got), err)
			}
		}
		if !r.replayable() {
			t.Fatal("not replayable")
		}
	})
	t.Run("a partly read body is completed on the retry", func(t *testing.T) {
		r := &replay{src: io.NopCloser(strings.NewReader(body)), limit: 64 << 10}
		first := r.reader()
		io.ReadFull(first, make([]byte, 1234))
		got, err := io.ReadAll(r.reader())
		if err != nil || string(got) != body {
			t.Fatalf("retry read %d bytes, %v", len(got), err)
		}
		if _, err := first.Read(make([]byte, 10)); err != errStaleAttempt {
			t.Fatalf("stale reader returned %v", err)
		}
	})
	t.Run("over the limit it cannot be replayed", func(t *testing.T) {
		r := &replay{src: io.NopCloser(bytes.NewReader([]byte(body))), limit: 4096}
		got, err := io.ReadAll(r.reader())
		if err != nil || string(got) != body {
			t.Fatalf("first attempt read %d bytes, %v", len(got), err)
		}
		if r.replayable() {
			t.Fatal("replayable after overflow")
		}
	})
}
