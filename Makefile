# Rampart — see README.md. Machines here start on an older Go with
# GOTOOLCHAIN=local; go.mod needs go1.27.3, which the go command fetches from
# the module proxy when GOTOOLCHAIN names it.
GOTOOLCHAIN ?= go1.27.3
export GOTOOLCHAIN

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
FUZZTIME ?= 60s

.PHONY: all build demo test test-deps vet fmt-check unit crs fuzz fuzz-smoke soak bench bench-quick bench-go waf-score gotestwaf clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/rampart ./cmd/rampart

## demo: build and run the gateway with built-in demo upstreams (no files needed).
demo: build
	./bin/rampart demo

## test: everything CI runs: formatting, vet, race-enabled tests, bounded fuzzing, benchmarks once.
test: test-deps fmt-check vet unit crs fuzz-smoke bench-go

# Installs what the tests need when it is missing (Debian packages).
test-deps:
	@bash scripts/test-deps.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 15m ./...

# The OWASP CRS regression suite (go-ftw) against the waf policy: all of it,
# without the race detector (about 20 s); under -race, `unit` runs the first
# test of each rule only. See docs/security.md.
crs:
	$(GO) test -count=1 -timeout 10m -run '^TestCRSRegression$$' ./internal/policy/waf/

# Each fuzz target for a bounded time (FUZZTIME_SMOKE), so CI stays fast.
FUZZTIME_SMOKE ?= 5s
fuzz-smoke:
	@bash scripts/fuzz.sh $(FUZZTIME_SMOKE)

## soak: mixed load with reloads and target churn for SOAKTIME (default 10m),
## reporting RSS, goroutines and open files at start and end. Not in CI.
SOAKTIME ?= 10m
soak:
	RAMPART_SOAK=$(SOAKTIME) $(GO) test -run '^TestSoak$$' -count=1 -timeout 30m -v ./test/chaos/

## fuzz: every fuzz target for FUZZTIME (default 60s) each.
fuzz:
	@bash scripts/fuzz.sh $(FUZZTIME)

# Go benchmarks run once so they keep compiling and working; timings are not gated.
bench-go:
	$(GO) test -run='^$$' -bench=. -benchtime=1x ./... > /dev/null

## bench: the load benchmark: direct, rampart, nginx, haproxy and caddy, interleaved and
## pinned; HTTP/1.1, h2c and h2 over TLS (h2load), TLS, gRPC unary (vs nginx grpc_pass),
## scaling with connections and 2 cores (vs nginx) and idle-connection memory phases
## (bench/README.md; about 35 min).
bench:
	bash bench/run.sh

## bench-quick: a short version (about 30 s of load per phase, about 6 min in all; the scale phase about 80 s).
bench-quick:
	QUICK=1 bash bench/run.sh

## waf-score: gotestwaf's true-positive and true-negative scores of the waf policy at PL1
## and PL2 and of sanitize, each against a gateway on 127.0.0.1 with an echo upstream
## (docs/security.md). Not in CI: a few minutes. WAFSCORE_OUT keeps the reports;
## WAFSCORE_ONLY=waf-pl1|waf-pl2|sanitize|stock-pl1 runs one (stock-pl1: stock Coraza, the reference).
WAFSCORE_OUT ?= $(CURDIR)/bin/waf-score
waf-score gotestwaf:
	cd tools/gotestwaf && $(GO) build -o $(CURDIR)/bin/gotestwaf github.com/wallarm/gotestwaf/cmd/gotestwaf
	RAMPART_GOTESTWAF=$(CURDIR)/bin/gotestwaf \
	RAMPART_GOTESTWAF_CASES=$$(cd tools/gotestwaf && $(GO) list -m -f '{{.Dir}}' github.com/wallarm/gotestwaf)/testcases \
	RAMPART_GOTESTWAF_OUT=$(WAFSCORE_OUT) RAMPART_GOTESTWAF_ONLY=$(WAFSCORE_ONLY) \
	$(GO) test -run '^TestGoTestWAF$$' -count=1 -timeout 60m -v ./test/wafscore/

clean:
	rm -rf bin
