package source

import (
	"context"
	"net"
	"testing"
	"time"
)

// closedAddr returns a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestEtcdWatchUnreachable: Watch returns at once even when etcd cannot be
// reached, so that the caller goes on probing and reports etcd as lost; its
// channel closes when ctx ends. clientv3's Watch blocks until its stream is
// open, which was, when etcd died between a read and the watch, until etcd
// came back: the data plane reported "connected" all along.
func TestEtcdWatchUnreachable(t *testing.T) {
	e, err := NewEtcd(EtcdConfig{Endpoints: []string{closedAddr(t)}, Prefix: "/p"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan (<-chan Revision), 1)
	go func() { got <- e.Watch(ctx, 0, "yaml") }()
	var wch <-chan Revision
	select {
	case wch = <-got:
	case <-time.After(2 * time.Second):
		cancel() // unblocks Watch, so the goroutine ends
		t.Fatal("Watch against an unreachable etcd did not return within 2s")
	}
	cancel()
	select {
	case r, ok := <-wch:
		if ok {
			t.Fatalf("revision %+v from an unreachable etcd", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch channel not closed within 5s of its context ending")
	}
}
