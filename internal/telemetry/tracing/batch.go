package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Batch limits (the SDK's batch span processor defaults).
const (
	queueSize     = 2048
	maxBatch      = 512
	exportTimeout = 10 * time.Second
)

// batcher is the span processor: ended, sampled spans go into a bounded
// queue without ever waiting, and one goroutine exports them in batches
// every interval (or once maxBatch are waiting). It is the SDK's
// BatchSpanProcessor in its non-blocking mode, written here so that every
// span lost is counted: one that finds the queue full, and every span of a
// batch whose export fails (rampart_tracing_spans_dropped_total).
type batcher struct {
	exp      sdktrace.SpanExporter
	queue    chan sdktrace.ReadOnlySpan
	dropped  prometheus.Counter
	interval time.Duration
	log      *slog.Logger

	ctx    context.Context // ends in-flight exports when a shutdown runs out of time
	cancel context.CancelFunc
	flush  chan chan struct{}
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	// failing is set while exports fail, so that the log says so once
	// per outage and once when it ends.
	failing atomic.Bool
}

var _ sdktrace.SpanProcessor = (*batcher)(nil)

func newBatcher(exp sdktrace.SpanExporter, interval time.Duration, dropped prometheus.Counter, log *slog.Logger) *batcher {
	ctx, cancel := context.WithCancel(context.Background())
	b := &batcher{exp: exp, queue: make(chan sdktrace.ReadOnlySpan, queueSize), dropped: dropped,
		interval: interval, log: log, ctx: ctx, cancel: cancel,
		flush: make(chan chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

// OnStart does nothing.
func (b *batcher) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues a sampled span, or counts it dropped when the queue is
// full. It never blocks.
func (b *batcher) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	select {
	case b.queue <- s:
	default:
		b.dropped.Inc()
	}
}

// ForceFlush exports what is queued.
func (b *batcher) ForceFlush(ctx context.Context) error {
	ch := make(chan struct{})
	select {
	case b.flush <- ch:
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown exports what is queued, within ctx, and shuts the exporter
// down; spans still queued when ctx ends are counted dropped.
func (b *batcher) Shutdown(ctx context.Context) error {
	b.once.Do(func() { close(b.stop) })
	select {
	case <-b.done:
	case <-ctx.Done():
		b.cancel() // the export in flight fails, and is counted
		<-b.done
	}
	b.cancel()
	return b.exp.Shutdown(ctx)
}

func (b *batcher) run() {
	defer close(b.done)
	defer func() {
		if p := recover(); p != nil {
			b.log.Error("tracing: span export panicked; tracing stops until the next config change", "panic", fmt.Sprint(p))
		}
	}()
	t := time.NewTicker(b.interval)
	defer t.Stop()
	batch := make([]sdktrace.ReadOnlySpan, 0, maxBatch)
	for {
		select {
		case s := <-b.queue:
			if batch = append(batch, s); len(batch) >= maxBatch {
				batch = b.export(batch)
			}
		case <-t.C:
			batch = b.export(batch)
		case ch := <-b.flush:
			batch = b.drain(batch)
			close(ch)
		case <-b.stop:
			b.drain(batch)
			return
		}
	}
}

// drain exports batch and everything queued.
func (b *batcher) drain(batch []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	for {
		select {
		case s := <-b.queue:
			if batch = append(batch, s); len(batch) >= maxBatch {
				batch = b.export(batch)
			}
		default:
			return b.export(batch)
		}
	}
}

// export sends batch and returns it emptied for reuse.
func (b *batcher) export(batch []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	if len(batch) == 0 {
		return batch
	}
	if b.ctx.Err() != nil {
		b.dropped.Add(float64(len(batch)))
		return batch[:0]
	}
	ctx, cancel := context.WithTimeout(b.ctx, exportTimeout)
	err := b.exp.ExportSpans(ctx, batch)
	cancel()
	if err != nil {
		b.dropped.Add(float64(len(batch)))
		if !b.failing.Swap(true) {
			b.log.Warn("tracing: span export failing; spans are dropped and counted in rampart_tracing_spans_dropped_total", "err", err.Error())
		}
	} else if b.failing.Swap(false) {
		b.log.Info("tracing: span export works again")
	}
	clear(batch) // the spans are the exporter's no longer
	return batch[:0]
}
