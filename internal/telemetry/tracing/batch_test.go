package tracing

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// exporter is a SpanExporter that counts what it gets, fails while fail
// is set, and blocks while block is open.
type exporter struct {
	mu    sync.Mutex
	spans int
	fail  bool
	block chan struct{}
}

func (e *exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	block, fail := e.block, e.fail
	e.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail {
		return errors.New("collector down")
	}
	e.mu.Lock()
	e.spans += len(spans)
	e.mu.Unlock()
	return nil
}

func (e *exporter) Shutdown(context.Context) error { return nil }

func (e *exporter) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.spans
}

func provider(b *batcher) *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(b))
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestBatcherExports: spans are exported in batches; Shutdown flushes.
func TestBatcherExports(t *testing.T) {
	exp := &exporter{}
	dropped := NewDropped()
	b := newBatcher(exp, time.Hour, dropped, quiet)
	tp := provider(b)
	tr := tp.Tracer("t")
	for range 1000 {
		_, s := tr.Start(context.Background(), "s")
		s.End()
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if exp.count() != 1000 || testutil.ToFloat64(dropped) != 0 {
		t.Errorf("exported %d, dropped %v; want 1000, 0", exp.count(), testutil.ToFloat64(dropped))
	}
}

// TestBatcherQueueFull: with the export stuck, ending spans never blocks;
// what the queue cannot hold is counted, and so are the spans of the
// stuck export that a bounded shutdown gives up on.
func TestBatcherQueueFull(t *testing.T) {
	exp := &exporter{block: make(chan struct{})}
	dropped := NewDropped()
	b := newBatcher(exp, time.Millisecond, dropped, quiet)
	tr := provider(b).Tracer("t")
	const n = 5000
	start := time.Now()
	for range n {
		_, s := tr.Start(context.Background(), "s")
		s.End()
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("ending %d spans with a stuck exporter took %v", n, d)
	}
	if got := testutil.ToFloat64(dropped); got < n-queueSize-maxBatch {
		t.Errorf("dropped %v, want at least %d", got, n-queueSize-maxBatch)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	b.Shutdown(ctx)
	if got := testutil.ToFloat64(dropped); got != n {
		t.Errorf("after a bounded shutdown: dropped %v, want all %d (none was exported)", got, n)
	}
}

// TestBatcherExportFails: a failed export counts its spans; the next
// working export counts nothing.
func TestBatcherExportFails(t *testing.T) {
	exp := &exporter{fail: true}
	dropped := NewDropped()
	b := newBatcher(exp, time.Hour, dropped, quiet)
	tp := provider(b)
	tr := tp.Tracer("t")
	for range 10 {
		_, s := tr.Start(context.Background(), "s")
		s.End()
	}
	tp.ForceFlush(context.Background())
	if got := testutil.ToFloat64(dropped); got != 10 {
		t.Errorf("dropped %v, want 10", got)
	}
	exp.mu.Lock()
	exp.fail = false
	exp.mu.Unlock()
	_, s := tr.Start(context.Background(), "s")
	s.End()
	tp.Shutdown(context.Background())
	if got := testutil.ToFloat64(dropped); got != 10 || exp.count() != 1 {
		t.Errorf("dropped %v, exported %d; want 10, 1", got, exp.count())
	}
}
