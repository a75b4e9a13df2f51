#!/usr/bin/env bash
# bench/run.sh — the load benchmark: direct-to-backend, rampart, nginx, haproxy
# and caddy side by side, interleaved over several rounds, on 127.0.0.1; then
# HTTP/2 (h2load, h2c), h2 over TLS (h2load, ALPN), TLS (wrk over https), gRPC
# unary (h2load, rampart vs nginx grpc_pass), scaling with the connection count
# and with 2 cores (rampart vs nginx), and memory per idle keep-alive
# connection. See bench/README.md.
#
#   bash bench/run.sh                  # full run (~35 min)
#   QUICK=1 bash bench/run.sh          # short run (~6 min)
#
# Environment (all optional):
#   QUICK=1                 short run (defaults below change)
#   PHASES="h1 h2 h2tls tls grpc scale idle"   which parts to run
#   ROUNDS=5                measured rounds per target and scenario (QUICK: 2)
#   DURATION=10s            wrk/h2load duration of one measured run (QUICK: 3s)
#   WARMUP=2s               warm-up per target before the rounds (QUICK: 1s)
#   SCENARIOS="100B 16K"    h1 phase: 100B = 100-byte body at 50 connections, 16K = 16 KiB
#                           at 200; SIZE:CONNS (e.g. 1024:100) defines another (QUICK: 100B)
#   TARGETS="direct rampart nginx haproxy caddy"   h1 phase
#   H2_TARGETS="rampart nginx haproxy caddy"  H2_CONNS=50 H2_STREAMS=10   h2 phase, 100-byte body
#   H2TLS_TARGETS="rampart nginx haproxy caddy" H2TLS_CONNS=50 (streams: H2_STREAMS)   h2tls phase
#   TLS_TARGETS="rampart nginx haproxy caddy" TLS_CONNS=50                tls phase, 100-byte body
#   GRPC_TARGETS="rampart nginx" GRPC_CONNS=50 GRPC_STREAMS=10 GRPC_SIZE=100   grpc phase
#   SCALE_TARGETS="rampart nginx" SCALE_CONNS="50 1000 10000" SCALE_2CPU_CONNS=1000
#   SCALE_THREADS=1 SCALE_ROUNDS=$ROUNDS (QUICK: 1) SCALE_DURATION=$DURATION (QUICK: 3s;
#   at least 10s from 5,000 connections) SCALE_STRICT=0   scale phase (h1, 100 B); see scale_fit
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
PHASES=${PHASES:-h1 h2 h2tls tls grpc scale idle}
TARGETS=${TARGETS:-direct rampart nginx haproxy caddy}
H2_TARGETS=${H2_TARGETS:-rampart nginx haproxy caddy}
H2_CONNS=${H2_CONNS:-50} H2_STREAMS=${H2_STREAMS:-10}
TLS_TARGETS=${TLS_TARGETS:-rampart nginx haproxy caddy}
TLS_CONNS=${TLS_CONNS:-50}
H2TLS_TARGETS=${H2TLS_TARGETS:-rampart nginx haproxy caddy}
H2TLS_CONNS=${H2TLS_CONNS:-$H2_CONNS}
GRPC_TARGETS=${GRPC_TARGETS:-rampart nginx}
GRPC_CONNS=${GRPC_CONNS:-50} GRPC_STREAMS=${GRPC_STREAMS:-10} GRPC_SIZE=${GRPC_SIZE:-100}
SCALE_TARGETS=${SCALE_TARGETS:-rampart nginx}
SCALE_CONNS=${SCALE_CONNS:-50 1000 10000}
SCALE_2CPU_CONNS=${SCALE_2CPU_CONNS-1000}
SCALE_THREADS=${SCALE_THREADS:-1}
if [[ $QUICK == 1 ]]; then
	SCALE_ROUNDS=${SCALE_ROUNDS:-1} SCALE_DURATION=${SCALE_DURATION:-3s}
else
	SCALE_ROUNDS=${SCALE_ROUNDS:-$ROUNDS} SCALE_DURATION=${SCALE_DURATION:-$DURATION}
fi
SCALE_STRICT=${SCALE_STRICT:-0}
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
	H2TLS_TARGETS=$(addb "$H2TLS_TARGETS") GRPC_TARGETS=$(addb "$GRPC_TARGETS") SCALE_TARGETS=$(addb "$SCALE_TARGETS")
fi
ALL_TARGETS="$TARGETS $H2_TARGETS $H2TLS_TARGETS $TLS_TARGETS $GRPC_TARGETS $SCALE_TARGETS $IDLE_TARGETS"
# drop_target T: remove T from every phase's target list.
drop_target() {
	local v
	for v in TARGETS H2_TARGETS H2TLS_TARGETS TLS_TARGETS GRPC_TARGETS SCALE_TARGETS IDLE_TARGETS; do
		printf -v "$v" '%s' "$(echo " ${!v} " | sed "s/ $1 / /g")"
	done
	ALL_TARGETS=$(echo " $ALL_TARGETS " | sed "s/ $1 / /g")
}
need_h2load() { has_phase h2 || has_phase h2tls || has_phase grpc; }
need_tools $ALL_TARGETS "$(need_h2load && echo h2load)"
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
	drop_target "$t"
done
if need_h2load && [[ -z $H2LOAD ]]; then
	log "h2load unavailable (Debian nghttp2-client): skipping the h2, h2tls and grpc phases"
	PHASES=$(echo " $PHASES " | sed 's/ h2 / /g; s/ h2tls / /g; s/ grpc / /g')
fi
setup_pinning
CLK_TCK=$(getconf CLK_TCK)

# ------------------------------------------------------------------ build ---

mkdir -p bin "$RESULTS_DIR/wrk"
log "building the backend, the idle-connection client and the report tool"
go build -o bin/bench-backend ./bench/backend
go build -o bin/bench-idleconns ./bench/idleconns
go build -o bin/bench-report ./bench/report
has_phase grpc && go build -o bin/bench-grpc ./bench/grpcbackend
if [[ " $ALL_TARGETS " == *" rampart"* ]] && ! build_rampart; then
	log "skipping rampart"
	drop_target rampart
	drop_target rampart-nethttp
fi
{ has_phase tls || has_phase h2tls; } && make_cert

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
	has_phase grpc && echo "# grpc: conns=$GRPC_CONNS streams=$GRPC_STREAMS size=$GRPC_SIZE"
	has_phase scale && echo "# scale: conns=$SCALE_CONNS 2cpu_conns=${SCALE_2CPU_CONNS:-none} rounds=$SCALE_ROUNDS duration=$SCALE_DURATION threads=$SCALE_THREADS open_files=$(ulimit -n) ports=$(tr '\t' - </proc/sys/net/ipv4/ip_local_port_range)"
} >"$RESULTS"

log "results: $RESULTS_DIR"
if awk '{exit !($1 > 0.5)}' /proc/loadavg; then
	log "warning: load average is $(cut -d' ' -f1 /proc/loadavg) before starting; other work on this machine adds noise"
fi

# run_h2load URL CONNS DURATION OUT: h2c with prior knowledge for http:// URLs,
# h2 negotiated by ALPN for https:// ones (h2load's defaults), STREAMS
# concurrent streams per connection, H2LOAD_ARGS added (the grpc phase's
# request body and headers).
run_h2load() {
	local secs
	secs=$(seconds "$3")
	timeout "$((secs + 30))" "${LOAD_PIN[@]}" "$H2LOAD" -t1 -c"$2" -m"$STREAMS" -D"$secs" \
		"${H2LOAD_ARGS[@]}" "$1" >"$4" 2>&1 || true
}
STREAMS=1 H2LOAD_ARGS=() EXTRA="" SETTLE=0 ROUND_BASE=0

# measure SCENARIO MODE SIZE CONNS TARGET...: start the backend and every target,
# warm each up, then run ROUNDS interleaved rounds (order rotated every round)
# and append one line per run to $RESULTS. MODE is h1, tls (wrk) or h2, h2tls,
# grpc (h2load, STREAMS streams per connection). EXTRA is appended to every
# results line. SETTLE seconds of pause before every run let the proxy close
# the last run's connections first. ROUND_BASE is added to the round numbers.
measure() {
	local scenario=$1 mode=$2 size=$3 conns=$4 t r k n pid out line t0 t1 c0 c1 rps tool=wrk
	shift 4
	[[ $mode == h2 || $mode == h2tls || $mode == grpc ]] && tool=h2load
	# Upstream keep-alive is sized to the requests in flight, so that no
	# proxy reconnects under load: over h2 that is every stream.
	local upstream=$conns streams=""
	if [[ $tool == h2load ]]; then
		upstream=$((conns * STREAMS)) streams=" streams=$STREAMS"
	fi
	log "scenario $scenario: $mode, $size-byte body, $conns connections${streams:+ x $STREAMS streams}"
	if [[ $mode == grpc ]]; then start_grpc_backend "$size"; else start_backend "$size"; fi
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
			out=wrk/$scenario-$((r + ROUND_BASE))-$t.txt
			((SETTLE > 0)) && sleep "$SETTLE"
			[[ $mode == grpc ]] && c0=$(grpc_calls)
			[[ -n $pid ]] && t0=$(cpu_ticks "$pid")
			"run_$tool" "${URL[$t]}" "$conns" "$DURATION" "$RESULTS_DIR/$out"
			line="scenario=$scenario mode=$mode size=$size conns=$conns$streams duration=$DURATION round=$((r + ROUND_BASE)) target=$t $tool=$out"
			if [[ -n $pid ]]; then
				t1=$(cpu_ticks "$pid")
				line+=" cpu_ticks=$((t1 - t0)) clk_tck=$CLK_TCK rss_kb=$(rss_kb "$pid")"
			fi
			# Calls the backend answered during the run: fewer than h2load's
			# successes means the proxy answered some itself.
			[[ $mode == grpc ]] && c1=$(grpc_calls) && line+=" backend_calls=$((c1 - c0))"
			line+=$EXTRA
			echo "$line" >>"$RESULTS"
			rps=$(awk '/^Requests\/sec:/ {print $2} /^finished in/ {print $4}' "$RESULTS_DIR/$out")
			log "  round $((r + ROUND_BASE))/$((ROUNDS + ROUND_BASE)) $t: ${rps:-FAILED} req/s"
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

# scale_fit CONNS: sets FIT to the number of active connections the scale
# phase can run for CONNS asked, and FIT_WHY to why it is lower. A proxy holds
# one descriptor per client connection and one per upstream connection (the
# keep-alive pool is sized to the requests in flight), so 2 x CONNS + 200
# must fit the open-files limit; the load generator's connections to the proxy and
# the proxy's to the backend each take a source port from the ephemeral range,
# and the previous round's may still be in TIME_WAIT, so 2 x CONNS must fit it.
# Beyond that the point is clamped (or, with SCALE_STRICT=1, the run stops).
scale_fit() {
	local want=$1 nofile lo hi ports max
	nofile=$(ulimit -n)
	[[ $nofile == unlimited ]] && nofile=1048576
	read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
	ports=$((hi - lo + 1))
	FIT=$want FIT_WHY=""
	max=$(((nofile - 200) / 2 / 100 * 100))
	if ((want > max)); then
		FIT=$max
		FIT_WHY="the open-files limit is $nofile (hard $(ulimit -Hn)) and the proxy needs one descriptor per client and one per upstream connection and some spare, so at most $max active connections fit (raise the hard limit to $((2 * want + 200)) as root for $want)"
	fi
	max=$((ports / 2 / 100 * 100))
	if ((FIT > max)); then
		FIT=$max
		FIT_WHY="the ephemeral port range $lo-$hi has $ports ports, and client and upstream connections (and the last round's in TIME_WAIT) need 2 per connection (sysctl net.ipv4.ip_local_port_range)"
	fi
	if ((FIT < want)); then
		[[ $SCALE_STRICT == 1 ]] && die "scale: cannot run $want active connections: $FIT_WHY"
		((FIT < 1)) && die "scale: cannot run any active connection: $FIT_WHY"
		log "scale: $want connections asked, running $FIT: $FIT_WHY"
		echo "# scale-note: $want connections asked, $FIT measured: $FIT_WHY" >>"$RESULTS"
	fi
}

# scale_phase: h1 100 B at every SCALE_CONNS active keep-alive connections with
# the usual one pinned core for the proxy, then SCALE_2CPU_CONNS connections
# with everything (proxy with 2 threads or workers, wrk with 2 threads, the
# backend) spread over the two CPUs.
scale_phase() {
	local c targets
	targets=$(list $SCALE_TARGETS)
	log "scale: open files $(ulimit -n) (hard $(ulimit -Hn)), ephemeral ports $(tr '\t' - </proc/sys/net/ipv4/ip_local_port_range)"
	for c in $SCALE_CONNS; do
		scale_fit "$c"
		# wrk opens every connection at the start of each run; thousands take a
		# second or more (SYN backlog), so runs are long enough to amortise that.
		# The warm-up also fills the upstream pools, so that the measured runs
		# do not dial thousands of upstream connections at once (SYN drops
		# then push some connects past rampart's 5 s connect timeout).
		local dur=$SCALE_DURATION warm=$WARMUP
		((FIT >= 5000 && $(seconds "$dur") < 10)) && dur=10s
		((FIT >= 5000 && $(seconds "$warm") < 5)) && warm=5s
		if ((FIT < 5000)); then
			# shellcheck disable=SC2086
			EXTRA=" phase=scale cores=1" ROUNDS=$SCALE_ROUNDS DURATION=$dur WARMUP=$warm THREADS=$SCALE_THREADS WRK_TIMEOUT=10s \
				measure "scale-$FIT" h1 100 "$FIT" $targets
			continue
		fi
		# From 5,000 connections each target runs alone, with a backend of its
		# own, one round at a time (the order still rotates): the backend's
		# descriptors would not hold two proxies' upstream pools (with rampart's
		# pool idle beside it, NGINX had thousands of wrk read errors), and an
		# idle proxy holding thousands of connections is not a quiet neighbour.
		# SETTLE: a proxy near its descriptor budget needs the last run's
		# connections closed before the next run opens as many again.
		local r k t arr
		read -ra arr <<<"$targets"
		for ((r = 0; r < SCALE_ROUNDS; r++)); do
			for ((k = 0; k < ${#arr[@]}; k++)); do
				t=${arr[$(((k + r) % ${#arr[@]}))]}
				EXTRA=" phase=scale cores=1" SETTLE=2 ROUNDS=1 ROUND_BASE=$r DURATION=$dur WARMUP=$warm THREADS=$SCALE_THREADS \
					WRK_TIMEOUT=10s measure "scale-$FIT" h1 100 "$FIT" "$t"
			done
		done
	done
	if [[ -n $SCALE_2CPU_CONNS ]]; then
		scale_fit "$SCALE_2CPU_CONNS"
		local gw=("${GW_PIN[@]}") load=("${LOAD_PIN[@]}")
		if ((${#GW_PIN[@]})); then
			GW_PIN=(taskset -c "$GATEWAY_CPU,$LOAD_CPU") LOAD_PIN=(taskset -c "$GATEWAY_CPU,$LOAD_CPU")
		fi
		# shellcheck disable=SC2086
		EXTRA=" phase=scale cores=2" ROUNDS=$SCALE_ROUNDS DURATION=$SCALE_DURATION THREADS=2 WRK_TIMEOUT=10s PROXY_PROCS=2 \
			measure "scale-2cpu-$FIT" h1 100 "$FIT" $targets
		GW_PIN=("${gw[@]}") LOAD_PIN=("${load[@]}")
	fi
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
if has_phase h2 && [[ -n $(list $H2_TARGETS) ]]; then
	STREAMS=$H2_STREAMS
	# shellcheck disable=SC2046
	measure h2-100B h2 100 "$H2_CONNS" $(list $H2_TARGETS)
fi
if has_phase h2tls && [[ -n $(list $H2TLS_TARGETS) ]]; then
	STREAMS=$H2_STREAMS
	# shellcheck disable=SC2046
	measure h2tls-100B h2tls 100 "$H2TLS_CONNS" $(list $H2TLS_TARGETS)
fi
# shellcheck disable=SC2046
has_phase tls && [[ -n $(list $TLS_TARGETS) ]] && measure tls-100B tls 100 "$TLS_CONNS" $(list $TLS_TARGETS)
if has_phase grpc && [[ -n $(list $GRPC_TARGETS) ]]; then
	# One length-prefixed GRPC_SIZE-byte message, POSTed by h2load as a unary call.
	bin/bench-grpc -write-request "$TMP/grpc-request.bin" -size "$GRPC_SIZE"
	STREAMS=$GRPC_STREAMS
	H2LOAD_ARGS=(-d "$TMP/grpc-request.bin" -H "content-type: application/grpc" -H "te: trailers")
	# shellcheck disable=SC2046
	measure "grpc-${GRPC_SIZE}B" grpc "$GRPC_SIZE" "$GRPC_CONNS" $(list $GRPC_TARGETS)
	H2LOAD_ARGS=()
fi
if has_phase scale && [[ -n $(list $SCALE_TARGETS) ]]; then
	scale_phase
fi
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
