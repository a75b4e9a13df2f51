// Package chaos injects faults between the gateway and its upstream with
// toxiproxy (in-process: its server package behind a local API, driven by
// its client package) and checks the resilience promises: no client hangs,
// route timeouts hold, and a truncated upstream body reaches the client as
// a broken response, never as a silently short 200.
package chaos
