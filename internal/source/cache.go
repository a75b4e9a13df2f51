package source

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Cache keeps the last applied config of an etcd source on local disk, so a
// data plane can start while etcd is unreachable.
type Cache struct {
	// Path is the cache file.
	Path string
}

// Entry is what the cache file holds.
type Entry struct {
	Source   string    `json:"source"`
	Revision int64     `json:"revision"`
	Version  string    `json:"version"`
	Format   string    `json:"format"`
	SavedAt  time.Time `json:"saved_at"`
	Config   string    `json:"config"`
}

// DefaultCacheDir is $XDG_STATE_HOME/rampart when XDG_STATE_HOME is set,
// otherwise ./.rampart-cache.
func DefaultCacheDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "rampart")
	}
	return ".rampart-cache"
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// CacheFor returns the cache of the etcd source cfg in dir: one file per
// prefix, so data planes of several configs can share a directory.
func CacheFor(dir string, cfg EtcdConfig) *Cache {
	name := unsafeName.ReplaceAllString(strings.Trim(cfg.Prefix, "/"), "_")
	if name == "" {
		name = "root"
	}
	return &Cache{Path: filepath.Join(dir, "etcd-"+name+".json")}
}

// Save writes e atomically (a temporary file renamed over the old one), so
// a crash never leaves a half-written cache.
func (c *Cache) Save(e Entry) error {
	if e.SavedAt.IsZero() {
		e.SavedAt = time.Now().UTC()
	}
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("save config cache: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(c.Path), 0o700); err != nil {
		return fmt.Errorf("save config cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.Path), ".cache-*")
	if err != nil {
		return fmt.Errorf("save config cache: %w", err)
	}
	_, werr := tmp.Write(b)
	if err := tmp.Sync(); werr == nil {
		werr = err
	}
	if err := tmp.Close(); werr == nil {
		werr = err
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), c.Path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save config cache: %w", werr)
	}
	return nil
}

// Load reads the cache.
func (c *Cache) Load() (Entry, error) {
	b, err := os.ReadFile(c.Path)
	if err != nil {
		return Entry{}, fmt.Errorf("read config cache: %w", err)
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return Entry{}, fmt.Errorf("read config cache %s: %w", c.Path, err)
	}
	return e, nil
}
