package source

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long a file must be quiet before a change is
// reported: editors write a file in several steps (truncate, write, rename).
const DefaultDebounce = 200 * time.Millisecond

// File watches one config file for changes.
type File struct {
	// Path is the config file.
	Path string
	// Debounce is the quiet period before a change is reported. Default
	// DefaultDebounce.
	Debounce time.Duration
	// Log receives watch errors (default slog.Default()).
	Log *slog.Logger
}

// Watch calls changed, from its own goroutine, each time the file may have
// changed, until ctx is done. It watches the file's directory rather than
// the file, so that editors that write a new file and rename it over the old
// one (vim, sed -i, Kubernetes ConfigMap symlink swaps) are seen too; the
// caller decides whether the content really changed.
func (f *File) Watch(ctx context.Context, changed func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch config: %w", err)
	}
	defer w.Close()
	abs, err := filepath.Abs(f.Path)
	if err != nil {
		return fmt.Errorf("watch config: %w", err)
	}
	dir := filepath.Dir(abs)
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch config directory %s: %w", dir, err)
	}
	log := f.Log
	if log == nil {
		log = slog.Default()
	}
	debounce := f.Debounce
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	base := filepath.Base(abs)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			name := filepath.Base(ev.Name)
			// "..data" is the symlink Kubernetes swaps to update a mounted
			// ConfigMap; the file itself never gets an event then.
			if name != base && name != "..data" {
				continue
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			timer.Reset(debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			log.Warn("config file watch error", "path", f.Path, "err", err.Error())
		case <-timer.C:
			changed()
		}
	}
}
