// Package discovery holds black-box tests of service discovery (issue 17):
// the gateway runs in-process against a real DNS server in the test
// process (internal/discovery/dnstest, on 127.0.0.1) whose A, AAAA and
// SRV records the tests change, and a real etcd; upstreams are real HTTP
// servers on 127.0.0.1 and ::1.
package discovery
