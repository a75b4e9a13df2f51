#!/usr/bin/env bash
# bench/profile.sh — CPU and allocation profiles of rampart under wrk load, taken
# through the admin listener's /debug/pprof/ endpoints. See bench/README.md.
#
#   bash bench/profile.sh              # 100-byte body, 50 connections, 15 s CPU profile
#   SIZE=16384 CONNS=200 bash bench/profile.sh
#
# Environment (all optional): SIZE=100 CONNS=50 SECONDS_CPU=15 TOP=25,
# MODE=h1 (tls: HTTPS, HTTP/1.1 over TLS),
# GATEWAY_CPU=0 LOAD_CPU=1 NOPIN=1, NO_INSTALL=1, OUT=bench/results/profile-<timestamp>.
set -euo pipefail

export GOTOOLCHAIN=go1.27.3
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SIZE=${SIZE:-100}
CONNS=${CONNS:-50}
SECONDS_CPU=${SECONDS_CPU:-15}
TOP=${TOP:-25}
MODE=${MODE:-h1}
[[ $MODE == h1 || $MODE == tls ]] || { echo "profile.sh: MODE=$MODE: want h1 or tls" >&2; exit 2; }
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-$ROOT/bench/results/profile-$STAMP}
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

need_tools
setup_pinning
mkdir -p bin "$OUT"
go build -o bin/bench-backend ./bench/backend
build_rampart || die "profiling needs bin/rampart"
cp "$RAMPART" "$OUT/rampart" # the binary the profiles belong to

[[ $MODE == tls ]] && make_cert
start_backend "$SIZE"
start_proxy rampart "$CONNS" "$MODE" || die "rampart did not start"
RAMPART_URL=$PROXY_URL RAMPART_PID=$PROXY_PID
wait_ready "$RAMPART_URL" "$RAMPART_PID" "$SIZE" "$MODE" || {
	proxy_log rampart "$MODE"
	die "rampart is not proxying"
}
ADMIN=http://$RAMPART_ADMIN
curl -fsS -o /dev/null --max-time 2 "$ADMIN/debug/pprof/" ||
	die "$ADMIN/debug/pprof/ does not answer: the admin listener must expose net/http/pprof"

load_seconds=$((SECONDS_CPU + 4))
log "load: wrk -c$CONNS for ${load_seconds}s against $RAMPART_URL ($SIZE-byte body)"
run_wrk "$RAMPART_URL" "$CONNS" "${load_seconds}s" "$OUT/wrk.txt" &
WRK_PID=$!
PIDS+=("$WRK_PID")
sleep 2 # let the connection pools and the heap settle before sampling

log "CPU profile: ${SECONDS_CPU}s"
# Allocation counts are cumulative since start, so take a baseline now and
# report the difference over the profiled window (pprof -diff_base).
curl -fsS --max-time 5 -o "$OUT/allocs-before.pprof" "$ADMIN/debug/pprof/allocs"
curl -fsS --max-time $((SECONDS_CPU + 10)) -o "$OUT/cpu.pprof" "$ADMIN/debug/pprof/profile?seconds=$SECONDS_CPU"
curl -fsS --max-time 5 -o "$OUT/allocs.pprof" "$ADMIN/debug/pprof/allocs"
curl -fsS --max-time 5 -o "$OUT/heap.pprof" "$ADMIN/debug/pprof/heap"
# Under load: goroutines (with stacks) and the runtime's memory statistics, and
# the process's RSS, to see what a busy connection holds.
curl -fsS --max-time 5 -o "$OUT/goroutine.txt" "$ADMIN/debug/pprof/goroutine?debug=1" || true
curl -fsS --max-time 5 -o "$OUT/heap-stats.txt" "$ADMIN/debug/pprof/heap?debug=1" || true
grep -E '^Vm(RSS|HWM)' "/proc/$RAMPART_PID/status" >"$OUT/rss.txt" 2>/dev/null || true
wait "$WRK_PID" || true

requests=$(awk '/requests in/ {print $1}' "$OUT/wrk.txt")
{
	echo "# rampart profile $STAMP: $MODE, $SIZE-byte body, $CONNS connections, CPU profile ${SECONDS_CPU}s"
	grep -E 'Requests/sec|requests in|^BENCH' "$OUT/wrk.txt" || true
	echo
	echo "## CPU (top $TOP by flat time)"
	go tool pprof -top -nodecount="$TOP" "$OUT/rampart" "$OUT/cpu.pprof" 2>&1
	echo
	echo "## CPU (top $TOP by cumulative time)"
	go tool pprof -top -cum -nodecount="$TOP" "$OUT/rampart" "$OUT/cpu.pprof" 2>&1
	echo
	echo "## Allocations during the profile window (objects; divide by ~${requests:-?} requests x $SECONDS_CPU/$load_seconds for per-request)"
	go tool pprof -top -sample_index=alloc_objects -nodecount="$TOP" \
		-diff_base "$OUT/allocs-before.pprof" "$OUT/rampart" "$OUT/allocs.pprof" 2>&1
	echo
	echo "## Allocations during the profile window (bytes)"
	go tool pprof -top -sample_index=alloc_space -nodecount="$TOP" \
		-diff_base "$OUT/allocs-before.pprof" "$OUT/rampart" "$OUT/allocs.pprof" 2>&1
} | tee "$OUT/summary.txt"

log "kept in $OUT: cpu.pprof, allocs.pprof (and allocs-before.pprof), heap.pprof, rampart, summary.txt"
log "explore: go tool pprof -http=127.0.0.1:0 $OUT/rampart $OUT/cpu.pprof"
