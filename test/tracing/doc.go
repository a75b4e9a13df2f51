// Package tracing holds the end-to-end tests of OpenTelemetry tracing
// (docs/operations.md, "Tracing"): the real gateway, in-process, exporting
// to an in-process OTLP receiver (internal/telemetry/tracing/otlptest) over
// gRPC and HTTP, with real upstreams on 127.0.0.1. The tests assert the
// span tree (SERVER per request, CLIENT per upstream attempt), the
// propagation in and out, sampling and the cost of a dead collector.
package tracing
