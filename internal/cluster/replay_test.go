package cluster

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
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
	t.Run("finished: the copy is sent, then dropped", func(t *testing.T) {
		r := &replay{src: io.NopCloser(strings.NewReader(body)), limit: 64 << 10}
		io.ReadFull(r.reader(), make([]byte, 3000))
		retry := r.reader() // replays 3000 kept bytes, then the rest
		head := make([]byte, 1000)
		io.ReadFull(retry, head)
		r.finish() // the retry's response head arrived
		rest, err := io.ReadAll(retry)
		if err != nil || string(head)+string(rest) != body {
			t.Fatalf("after finish: %d bytes, %v", len(head)+len(rest), err)
		}
		if r.buf != nil || r.replayable() {
			t.Fatalf("still keeping %d bytes after finish", len(r.buf))
		}
		if _, err := r.again(); err != errNotReplayable {
			t.Fatalf("again after finish: %v", err)
		}
	})
	t.Run("again gives a fresh reader", func(t *testing.T) {
		r := &replay{src: io.NopCloser(strings.NewReader(body)), limit: 64 << 10}
		io.ReadFull(r.reader(), make([]byte, 500))
		rc, err := r.again()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		if string(got) != body {
			t.Fatalf("again read %d bytes", len(got))
		}
	})
	t.Run("a read waiting for the client blocks nothing else", func(t *testing.T) {
		pr, pw := io.Pipe()
		r := &replay{src: pr, limit: 64 << 10}
		first := r.reader()
		got := make(chan string, 1)
		go func() {
			b := make([]byte, 10)
			n, _ := first.Read(b) // waits for the client's next message
			got <- string(b[:n])
		}()
		done := make(chan struct{})
		go func() {
			r.replayable()
			r.finish()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Fatal("finish blocked behind a read of the client's body")
		}
		pw.Write([]byte("next"))
		if s := <-got; s != "next" {
			t.Fatalf("read %q", s)
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
