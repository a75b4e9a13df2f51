#!/usr/bin/env bash
# bench/run.sh — the load benchmark: direct-to-backend, rampart, nginx, haproxy
# and caddy side by side, interleaved over several rounds, on 127.0.0.1; then
# HTTP/2 (h2load, h2c), TLS (wrk over https) and memory per idle keep-alive
# connection. See bench/README.md.
#
#   bash bench/run.sh                  # full run (~20 min)
#   QUICK=1 bash bench/run.sh          # short run (~2 min)
#
# Environment (all optional):
#   QUICK=1                 short run (defaults below change)
#   PHASES="h1 h2 tls idle" which parts to run
#   ROUNDS=5                measured rounds per target and scenario (QUICK: 2)
#   DURATION=10s            wrk/h2load duration of one measured run (QUICK: 3s)
#   WARMUP=2s               warm-up per target before the rounds (QUICK: 1s)
#   SCENARIOS="100B 16K"    h1 phase: 100B = 100-byte body at 50 connections, 16K = 16 KiB
#                           at 200; SIZE:CONNS (e.g. 1024:100) defines another (QUICK: 100B)
#   TARGETS="direct rampart nginx haproxy caddy"   h1 phase
#   H2_TARGETS="rampart nginx haproxy caddy"  H2_CONNS=50 H2_STREAMS=10   h2 phase, 100-byte body
#   TLS_TARGETS="rampart nginx haproxy caddy" TLS_CONNS=50                tls phase, 100-byte body
#   IDLE_TARGETS="rampart nginx haproxy caddy" IDLE_CONNS=10000 (QUICK: 2000)   idle phase
#   THREADS=1               wrk threads
#   GATEWAY_CPU=0 LOAD_CPU=1  taskset pinning (gateway | load generator + backend); NOPIN=1 disables
#   NO_INSTALL=1            never call apt-get
#   RAMPART_BIN=PATH        measure this rampart binary instead of building cmd/rampart
#   RAMPART_B=PATH          A/B: also measure this other rampart binary, as target
#                           rampart-b, interleaved with rampart in every round
#                           (e.g. RAMPART_B=/tmp/rampart-old make bench-quick)
#   NO_HEAD_FALLBACK=1      skip rampart when the working tree does not build, instead
#                           of building the last commit
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
PHASES=${PHASES:-h1 h2 tls idle}
TARGETS=${TARGETS:-direct rampart nginx haproxy caddy}
H2_TARGETS=${H2_TARGETS:-rampart nginx haproxy caddy}
H2_CONNS=${H2_CONNS:-50} H2_STREAMS=${H2_STREAMS:-10}
TLS_TARGETS=${TLS_TARGETS:-rampart nginx haproxy caddy}
TLS_CONNS=${TLS_CONNS:-50}
IDLE_TARGETS=${IDLE_TARGETS:-rampart nginx haproxy caddy}
if [[ $QUICK == 1 ]]; then IDLE_CONNS=${IDLE_CONNS:-2000}; else IDLE_CONNS=${IDLE_CONNS:-10000}; fi
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results/$STAMP}
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

has_phase() { [[ " $PHASES " == *" $1 "* ]]; }
# Idle connections need one descriptor each on both sides: lift the soft limit
# to the hard one (20,000 on this machine kind); children inherit it.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [[ -n ${RAMPART_B:-} ]]; then
	[[ -x $RAMPART_B ]] || die "RAMPART_B=$RAMPART_B is not an executable"
	# rampart-b runs right after rampart in every phase that has rampart.
	addb() { [[ " $1 " == *" rampart "* && " $1 " != *" rampart-b "* ]] && echo "${1/rampart/rampart rampart-b}" || echo "$1"; }
	TARGETS=$(addb "$TARGETS") H2_TARGETS=$(addb "$H2_TARGETS") TLS_TARGETS=$(addb "$TLS_TARGETS") IDLE_TARGETS=$(addb "$IDLE_TARGETS")
fi
need_tools $TARGETS $H2_TARGETS $TLS_TARGETS $IDLE_TARGETS "$(has_phase h2 && echo h2load)"
# available T: the proxy T can run here (direct and rampart are checked later).
available() {
	case $1 in
	nginx) [[ -n $NGINX ]] ;;
	haproxy) [[ -n $HAPROXY ]] ;;
	caddy) [[ -n $CADDY ]] ;;
	*) return 0 ;;
	esac
}
for t in nginx haproxy caddy; do
	available "$t" && continue
	log "$t unavailable: skipping it"
	TARGETS=${TARGETS//$t/} H2_TARGETS=${H2_TARGETS//$t/} TLS_TARGETS=${TLS_TARGETS//$t/} IDLE_TARGETS=${IDLE_TARGETS//$t/}
done
if has_phase h2 && [[ -z $H2LOAD ]]; then
	log "h2load unavailable (Debian nghttp2-client): skipping the h2 phase"
	PHASES=${PHASES//h2/}
fi
setup_pinning
CLK_TCK=$(getconf CLK_TCK)

# ------------------------------------------------------------------ build ---

mkdir -p bin "$RESULTS_DIR/wrk"
log "building the backend, the idle-connection client and the report tool"
go build -o bin/bench-backend ./bench/backend
go build -o bin/bench-idleconns ./bench/idleconns
go build -o bin/bench-report ./bench/report
if [[ " $TARGETS $H2_TARGETS $TLS_TARGETS $IDLE_TARGETS " == *" rampart "* ]] && ! build_rampart; then
	log "skipping rampart"
	TARGETS=${TARGETS//rampart/} H2_TARGETS=${H2_TARGETS//rampart/} TLS_TARGETS=${TLS_TARGETS//rampart/} IDLE_TARGETS=${IDLE_TARGETS//rampart/}
fi
has_phase tls && make_cert

RESULTS=$RESULTS_DIR/results.txt
{
	echo "# rampart bench $STAMP"
	echo "# host: $(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
	echo "# commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (dirty tree)')"
	[[ -n ${RAMPART_BUILT_FROM:-} ]] && echo "# rampart built from $RAMPART_BUILT_FROM"
	[[ -n ${RAMPART_B:-} ]] && echo "# rampart-b: $RAMPART_B ($("$RAMPART_B" version 2>&1 | head -1))"
	echo "# $(go version)"
	echo "# wrk: $(wrk --version 2>&1 | head -1 | cut -c1-40)"
	[[ -n $NGINX ]] && echo "# nginx: $("$NGINX" -v 2>&1)"
	[[ -n $HAPROXY ]] && echo "# haproxy: $("$HAPROXY" -v 2>&1 | head -1)"
	[[ -n $CADDY ]] && echo "# caddy: $("$CADDY" version 2>&1 | head -1)"
	[[ -n $H2LOAD ]] && echo "# h2load: $("$H2LOAD" --version 2>&1 | head -1)"
	echo "# loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# phases=$PHASES rounds=$ROUNDS duration=$DURATION warmup=$WARMUP threads=$THREADS pin=${GW_PIN[*]:-none}|${LOAD_PIN[*]:-none}"
} >"$RESULTS"

log "results: $RESULTS_DIR"
if awk '{exit !($1 > 0.5)}' /proc/loadavg; then
	log "warning: load average is $(cut -d' ' -f1 /proc/loadavg) before starting; other work on this machine adds noise"
fi

# run_h2load URL CONNS DURATION OUT: h2c with prior knowledge (h2load's default
# for http:// URLs), H2_STREAMS concurrent streams per connection.
run_h2load() {
	local secs
	secs=$(seconds "$3")
	timeout "$((secs + 30))" "${LOAD_PIN[@]}" "$H2LOAD" -t1 -c"$2" -m"$H2_STREAMS" -D"$secs" "$1" >"$4" 2>&1 || true
}

# measure SCENARIO MODE SIZE CONNS TARGET...: start the backend and every target,
# warm each up, then run ROUNDS interleaved rounds (order rotated every round)
# and append one line per run to $RESULTS.
measure() {
	local scenario=$1 mode=$2 size=$3 conns=$4 t r k n pid out line t0 t1 rps tool=wrk
	shift 4
	[[ $mode == h2 ]] && tool=h2load
	# Upstream keep-alive is sized to the requests in flight, so that no
	# proxy reconnects under load: over h2 that is every stream.
	local upstream=$conns
	[[ $mode == h2 ]] && upstream=$((conns * H2_STREAMS))
	log "scenario $scenario: $mode, $size-byte body, $conns connections"
	start_backend "$size"
	declare -A URL=() PID=()
	local active=()
	for t in "$@"; do
		if [[ $t == direct ]]; then
			URL[direct]=http://$BACKEND_ADDR/ PID[direct]=""
		elif start_proxy "$t" "$upstream" "$mode"; then
			URL[$t]=$PROXY_URL PID[$t]=$PROXY_PID
		else
			log "$t cannot run the $mode scenario: skipping it"
			proxy_log "$t" "$mode"
			continue
		fi
		if wait_ready "${URL[$t]}" "${PID[$t]}" "$size" "$mode"; then
			active+=("$t")
		else
			log "$t is not answering correctly: skipping it in this scenario"
			proxy_log "$t" "$mode"
			[[ -n ${PID[$t]} ]] && stop "${PID[$t]}"
		fi
	done

	for t in "${active[@]}"; do
		log "  warm-up $t ($WARMUP)"
		"run_$tool" "${URL[$t]}" "$conns" "$WARMUP" "$TMP/warmup.txt"
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
			"run_$tool" "${URL[$t]}" "$conns" "$DURATION" "$RESULTS_DIR/$out"
			line="scenario=$scenario size=$size conns=$conns duration=$DURATION round=$r target=$t $tool=$out"
			if [[ -n $pid ]]; then
				t1=$(cpu_ticks "$pid")
				line+=" cpu_ticks=$((t1 - t0)) clk_tck=$CLK_TCK rss_kb=$(rss_kb "$pid")"
			fi
			echo "$line" >>"$RESULTS"
			rps=$(awk '/^Requests\/sec:/ {print $2} /^finished in/ {print $4}' "$RESULTS_DIR/$out")
			log "  round $r/$ROUNDS $t: ${rps:-FAILED} req/s"
		done
	done

	for t in "${active[@]}"; do [[ -n ${PID[$t]} ]] && stop "${PID[$t]}"; done
	stop "$BACKEND_PID"
}

# measure_idle TARGET: RSS of the proxy before and after IDLE_CONNS idle
# keep-alive connections (one request each), written to $RESULTS.
measure_idle() {
	local t=$1 out n=$IDLE_CONNS
	# HAProxy's maxconn is 9,990 within the 20,000 open files (see start_haproxy).
	[[ $t == haproxy ]] && ((n > 9900)) && n=9900
	start_backend 100
	if ! start_proxy "$t" 64 h1; then
		proxy_log "$t" h1
		stop "$BACKEND_PID"
		return 0
	fi
	if wait_ready "$PROXY_URL" "$PROXY_PID" 100; then
		log "  idle $t: $n connections"
		if out=$(timeout 180 "${LOAD_PIN[@]}" bin/bench-idleconns -url "$PROXY_URL" -n "$n" -pid "$PROXY_PID" 2>"$TMP/idle.log"); then
			echo "scenario=idle target=$t $out" >>"$RESULTS"
			log "  idle $t: $out"
		else
			log "  idle $t failed: $(tail -3 "$TMP/idle.log")"
		fi
	else
		log "$t is not answering correctly: skipping it"
		proxy_log "$t" h1
	fi
	stop "$PROXY_PID"
	stop "$BACKEND_PID"
}

# ----------------------------------------------------------------- phases ---

list() { echo $*; } # normalises spaces left by removed targets
if has_phase h1; then
	for scenario in $SCENARIOS; do
		case $scenario in
		100B) size=100 conns=50 ;;
		16K) size=16384 conns=200 ;;
		*:*) size=${scenario%%:*} conns=${scenario##*:} ;;
		*) die "unknown scenario $scenario (100B, 16K or SIZE:CONNS)" ;;
		esac
		# shellcheck disable=SC2046
		measure "$scenario" h1 "$size" "$conns" $(list $TARGETS)
	done
fi
# shellcheck disable=SC2046
has_phase h2 && [[ -n $(list $H2_TARGETS) ]] && measure h2-100B h2 100 "$H2_CONNS" $(list $H2_TARGETS)
# shellcheck disable=SC2046
has_phase tls && [[ -n $(list $TLS_TARGETS) ]] && measure tls-100B tls 100 "$TLS_CONNS" $(list $TLS_TARGETS)
if has_phase idle; then
	log "idle keep-alive connections: $IDLE_CONNS per target (open files: $(ulimit -n))"
	for t in $IDLE_TARGETS; do measure_idle "$t"; done
fi

echo "# loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS"
echo
bin/bench-report "$RESULTS" | tee "$RESULTS_DIR/report.md"
if [[ $(dirname "$RESULTS_DIR") == "$ROOT/bench/results" ]]; then
	ln -sfn "$(basename "$RESULTS_DIR")" "$ROOT/bench/results/latest"
fi
log "kept in $RESULTS_DIR (report.md, results.txt, wrk/)"
