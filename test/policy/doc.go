// Package policy holds end-to-end tests of the request policies: the real
// gateway, started in-process through package app on 127.0.0.1, in front of
// real upstream servers. Everything lives in the _test.go files; run them
// with `go test -race ./test/policy/`.
package policy
