package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/source"
)

// revisionName names an etcd revision in error positions; its extension
// selects strict JSON for JSON documents.
func revisionName(prefix string, rev int64, format string) string {
	if format != "json" {
		format = "yaml"
	}
	return fmt.Sprintf("etcd:%s/config@%d.%s", prefix, rev, format)
}

// startEtcd loads the first config from etcd or, when etcd cannot be read,
// from the local cache of the last config applied from it.
func (a *App) startEtcd() error {
	e, err := source.NewEtcd(*a.opts.Etcd)
	if err != nil {
		return err
	}
	e.Log = a.log
	a.etcd = e
	ec := e.Config()
	dir := a.opts.CacheDir
	if dir == "" {
		dir = source.DefaultCacheDir()
	}
	a.etcdCache = source.CacheFor(dir, ec)
	a.status.etcd(func(s *EtcdStatus, _ *ActiveStatus) {
		s.Endpoints, s.Prefix, s.CacheFile = ec.Endpoints, ec.Prefix, a.etcdCache.Path
	})
	timeout := a.opts.EtcdStartTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	rev, err := e.Get(ctx)
	cancel()
	if err == nil {
		a.etcdContact(nil)
		cfg, lerr := config.LoadBytes(revisionName(ec.Prefix, rev.Rev, rev.Format), rev.Data)
		if lerr == nil {
			if lerr = a.apply(cfg, SourceEtcd); lerr == nil {
				a.etcdRev.Store(rev.Rev)
				a.saveCache(rev)
				return nil
			}
		} else {
			a.refused(SourceEtcd, lerr)
		}
		err = fmt.Errorf("etcd revision %d refused: %w", rev.Rev, lerr)
		a.etcdRev.Store(rev.Rev) // do not apply this revision again
	} else {
		a.etcdContact(err)
	}
	ent, cerr := a.etcdCache.Load()
	if cerr != nil {
		return fmt.Errorf("no config: etcd %s: %w; and no usable cache: %w", ec, err, cerr)
	}
	cfg, lerr := config.LoadBytes(a.etcdCache.Path+"#"+revisionName(ec.Prefix, ent.Revision, ent.Format), []byte(ent.Config))
	if lerr != nil {
		return fmt.Errorf("no config: etcd %s: %w; and the cache is invalid: %w", ec, err, lerr)
	}
	if lerr := a.apply(cfg, SourceCache); lerr != nil {
		return lerr
	}
	if a.etcdRev.Load() == 0 {
		a.etcdRev.Store(ent.Revision)
	}
	a.status.etcd(func(s *EtcdStatus, act *ActiveStatus) {
		s.StartedFromCache, s.Revision = true, ent.Revision
		act.FromCache = true
	})
	a.log.Warn("etcd unreachable at start-up; serving the cached config until it returns",
		"etcd", ec.String(), "err", err.Error(), "cache", a.etcdCache.Path, "revision", ent.Revision,
		"version", cfg.Version(), "saved_at", ent.SavedAt)
	return nil
}

// saveCache writes the applied revision to the cache; a failure is logged,
// never fatal.
func (a *App) saveCache(rev source.Revision) {
	ec := a.etcd.Config()
	err := a.etcdCache.Save(source.Entry{Source: ec.String(), Revision: rev.Rev, Version: rev.Version, Format: rev.Format, Config: string(rev.Data)})
	if err != nil {
		a.log.Warn("config cache not written", "err", err.Error())
	}
}

// etcdContact records a contact with etcd (err nil) or a failed one.
func (a *App) etcdContact(err error) {
	a.status.etcd(func(s *EtcdStatus, _ *ActiveStatus) {
		if err == nil {
			s.Connected, s.LastContact, s.LastError = true, time.Now().UTC(), ""
			return
		}
		if s.Connected || s.LastError == "" {
			a.log.Warn("etcd unreachable; the data plane keeps serving its config", "err", err.Error())
		}
		s.Connected, s.LastError = false, err.Error()
	})
}

// applyRevision applies one etcd revision unless it was seen already. An
// invalid revision is refused; the active config keeps serving.
func (a *App) applyRevision(rev source.Revision) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	caughtUp := func() {
		a.status.etcd(func(s *EtcdStatus, act *ActiveStatus) {
			if act.FromCache {
				a.log.Info("etcd is back; the data plane is in sync", "revision", rev.Rev)
			}
			s.Revision = a.etcdRev.Load()
			act.FromCache = false
		})
	}
	if rev.Rev <= a.etcdRev.Load() {
		caughtUp()
		return
	}
	a.etcdRev.Store(rev.Rev)
	ec := a.etcd.Config()
	cfg, err := config.LoadBytes(revisionName(ec.Prefix, rev.Rev, rev.Format), rev.Data)
	if err != nil {
		a.refused(SourceEtcd, err)
		caughtUp()
		return
	}
	if cur := a.store.Load(); cur != nil && cur.Version == cfg.Version() && a.cand == nil {
		a.saveCache(rev) // same content, newer revision
		caughtUp()
		return
	}
	if err := a.apply(cfg, SourceEtcd); err == nil {
		a.saveCache(rev)
	}
	caughtUp()
}

// etcdSync reads etcd once and applies what it holds.
func (a *App) etcdSync(ctx context.Context) error {
	rev, err := a.etcd.Get(ctx)
	a.etcdContact(err)
	if err != nil {
		return err
	}
	a.applyRevision(rev)
	return nil
}

// etcdLoop keeps the data plane in step with etcd: read, then watch from
// that revision on; when the watch ends (etcd lost, compaction) read again.
// A probe every few seconds keeps the status current and catches anything
// a stalled watch missed. Nothing here can stop the data plane; a panic is
// logged and the loop starts again a second later.
func (a *App) etcdLoop(ctx context.Context) {
	for ctx.Err() == nil {
		func() {
			defer func() {
				if p := recover(); p != nil {
					a.log.Error("etcd watch panicked; restarting it", "panic", fmt.Sprint(p))
					sleepCtx(ctx, time.Second)
				}
			}()
			a.etcdWatch(ctx)
		}()
	}
}

// etcdWatch is etcdLoop without the recover.
func (a *App) etcdWatch(ctx context.Context) {
	const probeEvery = 2 * time.Second
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		gctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		rev, err := a.etcd.Get(gctx)
		cancel()
		if err != nil && !errors.Is(err, source.ErrNotPublished) {
			if ctx.Err() != nil {
				return
			}
			a.etcdContact(err)
			sleepCtx(ctx, backoff)
			backoff = min(backoff*2, 2*time.Second)
			continue
		}
		backoff = 200 * time.Millisecond
		a.etcdContact(nil)
		from := a.etcdRev.Load()
		format := "yaml"
		if err == nil {
			a.applyRevision(rev)
			from, format = rev.Rev, rev.Format
		}
		wctx, wcancel := context.WithCancel(ctx)
		wch := a.etcd.Watch(wctx, from, format)
		probe := time.NewTicker(probeEvery)
	watch:
		for {
			select {
			case <-ctx.Done():
				break watch
			case r, ok := <-wch:
				if !ok {
					break watch
				}
				a.applyRevision(r)
			case <-probe.C:
				pctx, pcancel := context.WithTimeout(ctx, time.Second)
				r, perr := a.etcd.Get(pctx)
				pcancel()
				if errors.Is(perr, source.ErrNotPublished) {
					perr = nil
				}
				if ctx.Err() != nil {
					break watch
				}
				a.etcdContact(perr)
				if perr == nil && r.Rev > a.etcdRev.Load() {
					a.applyRevision(r)
				}
			}
		}
		probe.Stop()
		wcancel()
		sleepCtx(ctx, 100*time.Millisecond)
	}
}
