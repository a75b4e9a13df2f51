// Package source delivers config documents to the gateway: a watched file
// (fsnotify, debounced, robust to editors that replace the file), an etcd
// key prefix (publish, read, watch) and a local last-known-good cache for
// data planes that start while etcd is unreachable. Nothing here parses or
// applies a config; package app does that.
package source
