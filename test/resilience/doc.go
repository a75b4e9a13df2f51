// Package resilience holds black-box tests of the gateway's upstream
// resilience (issue 4): balancers, active and passive health checking,
// circuit breaking, retries and their budget, fallbacks, stale-if-error
// caching and failover. Each test runs the gateway in-process on free
// 127.0.0.1 ports in front of real upstream servers that fail on command.
package resilience
