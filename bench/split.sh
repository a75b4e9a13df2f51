#!/usr/bin/env bash
# bench/split.sh — where a proxy's CPU per request goes: user space or kernel,
# and how many system calls of which kind, for rampart and nginx side by side.
# See bench/README.md and docs/performance.md ("Where the time goes").
#
#   bash bench/split.sh
#
# Environment (all optional): TARGETS="rampart nginx" SIZE=100 CONNS=50
# DURATION=5s ROUNDS=2 MODE=h1 (tls: HTTPS, HTTP/1.1 over TLS), STRACE=1
# (0 skips the strace count), GATEWAY_CPU=0
# LOAD_CPU=1 NOPIN=1, NO_INSTALL=1, RAMPART_BIN=PATH.
set -euo pipefail

export GOTOOLCHAIN=go1.27.3
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

TARGETS=${TARGETS:-rampart nginx}
SIZE=${SIZE:-100}
CONNS=${CONNS:-50}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-2}
STRACE=${STRACE:-1}
MODE=${MODE:-h1}
[[ $MODE == h1 || $MODE == tls ]] || { echo "split.sh: MODE=$MODE: want h1 or tls" >&2; exit 2; }
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

# shellcheck disable=SC2086
need_tools $TARGETS
setup_pinning
mkdir -p bin
go build -o bin/bench-backend ./bench/backend
if [[ " $TARGETS " == *" rampart "* ]]; then build_rampart || die "rampart does not build"; fi
if [[ $STRACE == 1 ]] && ! command -v strace >/dev/null; then
	apt_install strace || { log "strace unavailable: no syscall counts"; STRACE=0; }
fi
HZ=$(getconf CLK_TCK)

# user_sys PID prints utime and stime (ticks) of PID and its children.
user_sys() {
	local u=0 s=0 pid stat rest
	for pid in "$1" $(children "$1"); do
		{ stat=$(<"/proc/$pid/stat"); } 2>/dev/null || continue
		rest=${stat##*) }
		# shellcheck disable=SC2086
		set -- $rest
		u=$((u + ${12})) s=$((s + ${13}))
	done
	echo "$u $s"
}

requests() { awk '/requests in/ {print $1}' "$1"; }

[[ $MODE == tls ]] && make_cert
start_backend "$SIZE"
declare -A URL=() PID=()
for t in $TARGETS; do
	start_proxy "$t" "$CONNS" "$MODE" || die "$t did not start"
	wait_ready "$PROXY_URL" "$PROXY_PID" "$SIZE" "$MODE" || { proxy_log "$t" "$MODE"; die "$t is not proxying"; }
	URL[$t]=$PROXY_URL PID[$t]=$PROXY_PID
	run_wrk "$PROXY_URL" "$CONNS" 2s "$TMP/warmup.txt"
done

echo "# bench/split.sh $(date -u +%FT%TZ): $MODE, $SIZE-byte body, $CONNS connections, $ROUNDS x $DURATION, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| round | target | requests | user µs/req | system µs/req |"
echo "| ---: | --- | ---: | ---: | ---: |"
for ((r = 1; r <= ROUNDS; r++)); do
	for t in $TARGETS; do
		read -r u0 s0 < <(user_sys "${PID[$t]}")
		run_wrk "${URL[$t]}" "$CONNS" "$DURATION" "$TMP/wrk-$t.txt"
		read -r u1 s1 < <(user_sys "${PID[$t]}")
		awk -v r="$r" -v t="$t" -v n="$(requests "$TMP/wrk-$t.txt")" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$HZ" \
			'BEGIN { if (n > 0) printf "| %d | %s | %d | %.1f | %.1f |\n", r, t, n, u / hz * 1e6 / n, s / hz * 1e6 / n }'
	done
done

[[ $STRACE == 1 ]] || exit 0
echo
echo "System calls per request under strace -c -f (strace slows the proxy; the counts, not the times, are the point):"
for t in $TARGETS; do
	args=()
	for p in "${PID[$t]}" $(children "${PID[$t]}"); do args+=(-p "$p"); done
	strace -c -f "${args[@]}" -o "$TMP/strace-$t.txt" 2>/dev/null &
	sp=$!
	PIDS+=("$sp")
	sleep 1 # strace attaches to every thread before the load starts
	run_wrk "${URL[$t]}" "$CONNS" 3s "$TMP/wrk-$t.txt"
	sleep 0.5
	stop "$sp"
	n=$(requests "$TMP/wrk-$t.txt")
	echo
	echo "$t ($n requests):"
	awk -v n="$n" '$1 ~ /^[0-9.]+$/ && NF >= 5 && n > 0 {
		calls = $4; errs = (NF == 6) ? $5 : 0; name = $NF
		if (calls / n >= 0.01) printf "  %-14s %6.2f/req", name, calls / n
		if (calls / n >= 0.01 && errs > 0) printf "  (%.2f/req failed)", errs / n
		if (calls / n >= 0.01) printf "\n"
	}' "$TMP/strace-$t.txt"
done
