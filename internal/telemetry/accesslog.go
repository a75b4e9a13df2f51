package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
)

// AccessLog writes one JSON line per request through log/slog.
type AccessLog struct {
	l      *slog.Logger
	closer io.Closer
}

// Entry is what one access log line records.
type Entry struct {
	Time       time.Time
	RequestID  string
	Route      string
	Upstream   string
	Target     string
	Method     string
	Path       string
	Host       string
	RemoteAddr string
	Proto      string
	Status     int
	BytesIn    int64
	BytesOut   int64
	Duration   time.Duration
	Code       string
	UserAgent  string
	Attempts   int
}

// OpenAccessLog opens the access log at path: stdout, stderr, off (or "")
// for none, or a file path opened for appending. It returns nil for off.
func OpenAccessLog(path string) (*AccessLog, error) {
	var w io.Writer
	var c io.Closer
	switch path {
	case "off", "":
		return nil, nil
	case "stdout":
		w = os.Stdout
	case "stderr":
		w = os.Stderr
	default:
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open access log: %w", err)
		}
		w, c = f, f
	}
	return NewAccessLog(w, c), nil
}

// NewAccessLog writes JSON lines to w; closer (may be nil) is closed by Close.
func NewAccessLog(w io.Writer, closer io.Closer) *AccessLog {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.LevelKey {
			return slog.Attr{} // every line is info; the level is noise
		}
		return a
	}})
	return &AccessLog{l: slog.New(h), closer: closer}
}

// Log writes e as one line. It is safe for concurrent use; a nil AccessLog
// logs nothing.
func (a *AccessLog) Log(e *Entry) {
	if a == nil {
		return
	}
	attrs := [...]slog.Attr{
		slog.String("request_id", e.RequestID),
		slog.String("route", e.Route),
		slog.String("upstream", e.Upstream),
		slog.String("target", e.Target),
		slog.String("method", e.Method),
		slog.String("host", e.Host),
		slog.String("path", e.Path),
		slog.String("proto", e.Proto),
		slog.Int("status", e.Status),
		slog.String("code", e.Code),
		slog.Int64("bytes_in", e.BytesIn),
		slog.Int64("bytes", e.BytesOut),
		slog.Float64("duration_ms", float64(e.Duration.Microseconds())/1000),
		slog.String("remote_addr", e.RemoteAddr),
		slog.String("user_agent", e.UserAgent),
		slog.Int("attempts", e.Attempts),
	}
	a.l.LogAttrs(context.Background(), slog.LevelInfo, "access", attrs[:]...)
}

// Close closes the underlying file, if any.
func (a *AccessLog) Close() error {
	if a == nil || a.closer == nil {
		return nil
	}
	return a.closer.Close()
}
