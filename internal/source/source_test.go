package source

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseEtcdURL(t *testing.T) {
	tests := []struct {
		name, in string
		want     EtcdConfig
		bad      bool
	}{
		{name: "one", in: "etcd://127.0.0.1:2379/rampart/prod", want: EtcdConfig{Endpoints: []string{"127.0.0.1:2379"}, Prefix: "/rampart/prod"}},
		{name: "several", in: "etcd://a:1,b:2/p/", want: EtcdConfig{Endpoints: []string{"a:1", "b:2"}, Prefix: "/p"}},
		{name: "no prefix", in: "etcd://a:1", want: EtcdConfig{Endpoints: []string{"a:1"}, Prefix: DefaultPrefix}},
		{name: "no host", in: "etcd:///p", bad: true},
		{name: "not etcd", in: "http://a:1/p", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseEtcdURL(tc.in)
			if (err != nil) != tc.bad {
				t.Fatalf("err = %v", err)
			}
			if !tc.bad && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCacheRoundTrip(t *testing.T) {
	c := CacheFor(filepath.Join(t.TempDir(), "nested"), EtcdConfig{Prefix: "/rampart/prod"})
	if filepath.Base(c.Path) != "etcd-rampart_prod.json" {
		t.Errorf("cache file %s", c.Path)
	}
	if _, err := c.Load(); err == nil {
		t.Fatal("Load of a missing cache succeeded")
	}
	want := Entry{Source: "etcd://x/p", Revision: 7, Version: "abc", Format: "yaml", Config: "routes: []\n"}
	if err := c.Save(want); err != nil {
		t.Fatal(err)
	}
	got, err := c.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision != 7 || got.Config != want.Config || got.SavedAt.IsZero() {
		t.Errorf("got %+v", got)
	}
}

// TestFileWatchReplace checks that replacing the file by rename is seen, and
// that a burst of writes is reported once.
func TestFileWatchReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rampart.yaml")
	os.WriteFile(path, []byte("a"), 0o600)
	var n atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&File{Path: path, Debounce: 100 * time.Millisecond}).Watch(ctx, func() { n.Add(1) }) }()
	defer func() {
		cancel()
		<-done
	}()
	time.Sleep(100 * time.Millisecond) // the watch is being set up
	for i := range 5 {
		tmp := filepath.Join(dir, ".tmp")
		os.WriteFile(tmp, []byte{byte('b' + i)}, 0o600)
		os.Rename(tmp, path)
	}
	os.WriteFile(filepath.Join(dir, "other.yaml"), []byte("x"), 0o600)
	deadline := time.Now().Add(3 * time.Second)
	for n.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if got := n.Load(); got != 1 {
		t.Errorf("%d change reports, want 1 for one burst", got)
	}
}
