// Package e2e holds Rampart's black-box end-to-end tests: the real gateway
// (in-process through package app, or the built binary) against real
// upstream servers on 127.0.0.1. Everything lives in the _test.go files;
// run them with `go test -race ./test/e2e/`.
package e2e
