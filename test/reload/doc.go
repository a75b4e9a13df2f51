// Package reload holds the black-box tests of the config life cycle: hot
// reload under load (no failed request, WebSockets kept, health state kept),
// refused configs from every trigger (file watch, SIGHUP, admin API, etcd),
// the etcd control plane with a real etcd server and the last-known-good
// cache, and candidate (canary) configs with automatic rollback. Every test
// uses real sockets on 127.0.0.1 and is bounded in time.
package reload
