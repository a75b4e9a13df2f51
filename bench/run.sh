#!/usr/bin/env bash
# bench/run.sh — the load benchmark: direct-to-backend, rampart and nginx side by
# side, interleaved over several rounds, on 127.0.0.1. See bench/README.md.
#
#   bash bench/run.sh                  # full run: 5 rounds x 10 s, scenarios 100B and 16K
#   QUICK=1 bash bench/run.sh          # about 30 s: 2 rounds x 3 s, scenario 100B
#
# Environment (all optional):
#   QUICK=1                 short run (defaults below change)
#   ROUNDS=5                measured rounds per target and scenario (QUICK: 2)
#   DURATION=10s            wrk duration of one measured run (QUICK: 3s)
#   WARMUP=2s               wrk warm-up per target before the rounds (QUICK: 1s)
#   SCENARIOS="100B 16K"    100B = 100-byte body at 50 connections, 16K = 16 KiB at 200;
#                           SIZE:CONNS (e.g. 1024:100) defines another (QUICK: 100B)
#   TARGETS="direct rampart nginx"
#   THREADS=1               wrk threads
#   GATEWAY_CPU=0 LOAD_CPU=1  taskset pinning (gateway | wrk + backend); NOPIN=1 disables
#   NO_INSTALL=1            never call apt-get
#   RAMPART_BIN=PATH        measure this rampart binary instead of building cmd/rampart
#   RESULTS_DIR=...         where results go (default bench/results/<timestamp>)
set -euo pipefail

export GOTOOLCHAIN=go1.27.3
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
	ROUNDS=${ROUNDS:-2} DURATION=${DURATION:-3s} WARMUP=${WARMUP:-1s} SCENARIOS=${SCENARIOS:-100B}
else
	ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-10s} WARMUP=${WARMUP:-2s} SCENARIOS=${SCENARIOS:-100B 16K}
fi
TARGETS=${TARGETS:-direct rampart nginx}
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results/$STAMP}
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

need_tools "$([[ " $TARGETS " == *" nginx "* ]] && echo nginx)"
if [[ -z $NGINX && " $TARGETS " == *" nginx "* ]]; then
	log "nginx unavailable: skipping it"
	TARGETS=${TARGETS//nginx/}
fi
setup_pinning
CLK_TCK=$(getconf CLK_TCK)

# ------------------------------------------------------------------ build ---

mkdir -p bin "$RESULTS_DIR/wrk"
log "building the backend and the report tool"
go build -o bin/bench-backend ./bench/backend
go build -o bin/bench-report ./bench/report
if [[ " $TARGETS " == *" rampart "* ]] && ! build_rampart; then
	log "skipping rampart"
	TARGETS=${TARGETS//rampart/}
fi
read -r -a TARGET_LIST <<<"$TARGETS"
((${#TARGET_LIST[@]} > 0)) || die "no targets left to measure"

# ------------------------------------------------------------- scenarios ---

RESULTS=$RESULTS_DIR/results.txt
{
	echo "# rampart bench $STAMP"
	echo "# host: $(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
	echo "# commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (dirty tree)')"
	echo "# $(go version)"
	echo "# wrk: $(wrk --version 2>&1 | head -1 | cut -c1-40)"
	[[ -n $NGINX ]] && echo "# nginx: $("$NGINX" -v 2>&1)"
	echo "# loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# rounds=$ROUNDS duration=$DURATION warmup=$WARMUP threads=$THREADS pin=${GW_PIN[*]:-none}|${LOAD_PIN[*]:-none}"
} >"$RESULTS"

log "results: $RESULTS_DIR"
if awk '{exit !($1 > 0.5)}' /proc/loadavg; then
	log "warning: load average is $(cut -d' ' -f1 /proc/loadavg) before starting; other work on this machine adds noise"
fi
log "targets: ${TARGET_LIST[*]}; scenarios: $SCENARIOS; $ROUNDS rounds x $DURATION"

for scenario in $SCENARIOS; do
	case $scenario in
	100B) size=100 conns=50 ;;
	16K) size=16384 conns=200 ;;
	*:*) size=${scenario%%:*} conns=${scenario##*:} ;;
	*) die "unknown scenario $scenario (100B, 16K or SIZE:CONNS)" ;;
	esac
	log "scenario $scenario: $size-byte body, $conns connections"

	start_backend "$size"
	declare -A URL=() PID=()
	URL[direct]=http://$BACKEND_ADDR/
	PID[direct]=""
	active=()
	for t in "${TARGET_LIST[@]}"; do
		case $t in
		direct) ;;
		nginx) start_nginx "$conns" && URL[nginx]=$NGINX_URL PID[nginx]=$NGINX_PID ;;
		rampart) start_rampart "$conns" && URL[rampart]=$RAMPART_URL PID[rampart]=$RAMPART_PID ;;
		*) die "unknown target $t" ;;
		esac
		if wait_ready "${URL[$t]}" "${PID[$t]}" "$size"; then
			active+=("$t")
		else
			log "$t is not answering correctly: skipping it in this scenario"
			[[ $t == rampart ]] && sed 's/^/[bench]   rampart: /' "$TMP/rampart.log" | tail -20 >&2
			[[ $t == nginx ]] && sed 's/^/[bench]   nginx: /' "$TMP/nginx/error.log" | tail -20 >&2
			[[ -n ${PID[$t]} ]] && stop "${PID[$t]}"
		fi
	done

	for t in "${active[@]}"; do
		log "  warm-up $t ($WARMUP)"
		run_wrk "${URL[$t]}" "$conns" "$WARMUP" "$TMP/warmup.txt"
	done

	n=${#active[@]}
	for ((r = 1; r <= ROUNDS; r++)); do
		# Rotate the order every round so no target always runs first or last.
		for ((k = 0; k < n; k++)); do
			t=${active[$(((k + r - 1) % n))]}
			pid=${PID[$t]}
			if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
				log "  $t has exited: skipping"
				continue
			fi
			out=wrk/$scenario-$r-$t.txt
			[[ -n $pid ]] && t0=$(cpu_ticks "$pid")
			run_wrk "${URL[$t]}" "$conns" "$DURATION" "$RESULTS_DIR/$out"
			line="scenario=$scenario size=$size conns=$conns duration=$DURATION round=$r target=$t wrk=$out"
			if [[ -n $pid ]]; then
				t1=$(cpu_ticks "$pid")
				line+=" cpu_ticks=$((t1 - t0)) clk_tck=$CLK_TCK rss_kb=$(rss_kb "$pid")"
			fi
			echo "$line" >>"$RESULTS"
			rps=$(awk '/^Requests\/sec:/ {print $2}' "$RESULTS_DIR/$out")
			log "  round $r/$ROUNDS $t: ${rps:-FAILED} req/s"
		done
	done

	for t in "${active[@]}"; do [[ -n ${PID[$t]} ]] && stop "${PID[$t]}"; done
	stop "$BACKEND_PID"
	unset URL PID
done

echo "# loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS"
echo
bin/bench-report "$RESULTS" | tee "$RESULTS_DIR/report.md"
if [[ $(dirname "$RESULTS_DIR") == "$ROOT/bench/results" ]]; then
	ln -sfn "$(basename "$RESULTS_DIR")" "$ROOT/bench/results/latest"
fi
log "kept in $RESULTS_DIR (report.md, results.txt, wrk/)"
