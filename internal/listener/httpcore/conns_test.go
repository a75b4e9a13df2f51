package httpcore

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestConns(t *testing.T) {
	var cs Conns[int]
	var closing atomic.Bool
	for i := range 3 {
		if !cs.Add(i, &closing) {
			t.Fatalf("Add(%d) refused before closing", i)
		}
	}
	cs.Remove(1)
	cs.Remove(7) // not tracked: nothing
	if n := cs.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}
	got := cs.Snapshot()
	slices.Sort(got)
	if !slices.Equal(got, []int{0, 2}) {
		t.Fatalf("Snapshot = %v", got)
	}
	var ranged []int
	cs.Range(func(c int) { ranged = append(ranged, c) })
	slices.Sort(ranged)
	if !slices.Equal(ranged, got) {
		t.Fatalf("Range saw %v, want %v", ranged, got)
	}
	closing.Store(true)
	if cs.Add(9, &closing) {
		t.Fatal("Add accepted once closing")
	}
	if cs.Len() != 2 {
		t.Fatal("a refused Add was tracked")
	}
	var zero Conns[int]
	zero.Remove(1) // the zero value is ready
	if zero.Len() != 0 || len(zero.Snapshot()) != 0 {
		t.Fatal("zero Conns not empty")
	}
}

func TestConnsDrain(t *testing.T) {
	t.Run("empties", func(t *testing.T) {
		var cs Conns[int]
		var closing atomic.Bool
		cs.Add(1, &closing)
		cs.Add(2, &closing)
		steps := 0
		err := cs.Drain(context.Background(), func() {
			steps++
			if steps == 2 {
				cs.Remove(1)
				cs.Remove(2)
			}
		}, func() error { t.Fatal("closeAll called"); return nil })
		if err != nil || steps != 2 {
			t.Fatalf("Drain = %v after %d steps", err, steps)
		}
	})
	t.Run("ctx ends", func(t *testing.T) {
		var cs Conns[int]
		var closing atomic.Bool
		cs.Add(1, &closing)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		closed := false
		err := cs.Drain(ctx, nil, func() error { closed = true; return nil })
		if err != context.DeadlineExceeded || !closed {
			t.Fatalf("Drain = %v, closeAll called %v", err, closed)
		}
	})
	t.Run("already empty", func(t *testing.T) {
		var cs Conns[int]
		if err := cs.Drain(context.Background(), nil, nil); err != nil {
			t.Fatal(err)
		}
	})
}
