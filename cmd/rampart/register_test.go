package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestRegisterRefusesBadFlags: every bad flag is refused with exit 2 and
// a line naming it, before anything talks to etcd.
func TestRegisterRefusesBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no service", []string{"--address", "127.0.0.1:80"}, "usage: rampart register"},
		{"no address", []string{"--service", "users"}, "usage: rampart register"},
		{"address without port", []string{"--service", "users", "--address", "127.0.0.1"}, `--address "127.0.0.1" is not HOST:PORT`},
		{"port out of range", []string{"--service", "users", "--address", "a:70000"}, "port out of range"},
		{"slash in service", []string{"--service", "a/b", "--address", "a:1"}, "must not contain '/'"},
		{"weight", []string{"--service", "users", "--address", "a:1", "--weight", "0"}, "--weight 0 out of range"},
		{"ttl", []string{"--service", "users", "--address", "a:1", "--ttl", "100ms"}, "--ttl 100ms is under 1s"},
		{"meta", []string{"--service", "users", "--address", "a:1", "--meta", "novalue"}, `--meta "novalue" is not k=v`},
		{"extra argument", []string{"--service", "users", "--address", "a:1", "now"}, `unexpected argument "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(append([]string{"register", "--etcd", "127.0.0.1:1"}, tt.args...), &out, &errb)
			if code != 2 || !strings.Contains(errb.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errb.String(), tt.want)
			}
		})
	}
}
