# bench/lib.sh — helpers shared by bench/run.sh and bench/profile.sh: process
# clean-up, free ports, CPU pinning, /proc accounting, and starting the backend,
# nginx and rampart with generated configs. Source it after setting ROOT.
# shellcheck shell=bash

export GOTOOLCHAIN=go1.27.3
GATEWAY_CPU=${GATEWAY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
THREADS=${THREADS:-1}

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# seconds converts a wrk duration (3s, 2m) to whole seconds, for timeouts.
seconds() {
	local d=$1
	case $d in
	*m) echo $((${d%m} * 60)) ;;
	*s) echo "${d%s}" ;;
	*) echo "$d" ;;
	esac
}

# ---------------------------------------------------------------- cleanup ---

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rampart-bench.XXXXXX")
PIDS=()

cleanup() {
	local rc=$? pid i alive
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for ((i = 0; i < 50; i++)); do # at most 5 s for graceful exits
		alive=0
		for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
		((alive)) || break
		sleep 0.1
	done
	for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# stop PID: TERM, wait up to 5 s, then KILL; forget it.
stop() {
	local pid=$1 i keep=()
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	for i in "${PIDS[@]}"; do [[ $i == "$pid" ]] || keep+=("$i"); done
	PIDS=("${keep[@]}")
}

# ----------------------------------------------------------- dependencies ---

apt_install() {
	[[ ${NO_INSTALL:-0} == 1 ]] && return 1
	command -v apt-get >/dev/null || return 1
	local sudo=()
	if [[ $(id -u) != 0 ]]; then
		command -v sudo >/dev/null || return 1
		sudo=(sudo -n)
	fi
	log "installing $* with apt-get"
	if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2; then
		"${sudo[@]}" apt-get update -q >&2 || return 1
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2 || return 1
	fi
}

find_nginx() {
	command -v nginx 2>/dev/null || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true
}

# need_tools installs curl and wrk when missing, and sets NGINX (empty if unavailable
# and $1 is "nginx-optional").
need_tools() {
	command -v curl >/dev/null || apt_install curl || die "curl is required"
	command -v wrk >/dev/null || apt_install wrk || die "wrk is required (apt-get install wrk)"
	NGINX=$(find_nginx)
	if [[ -z $NGINX && ${1:-} == nginx ]]; then
		apt_install nginx-light || apt_install nginx || true
		NGINX=$(find_nginx)
	fi
}

# setup_pinning sets GW_PIN (the gateway's CPU) and LOAD_PIN (wrk and backend).
setup_pinning() {
	GW_PIN=() LOAD_PIN=()
	if [[ ${NOPIN:-0} != 1 ]] && command -v taskset >/dev/null && (($(nproc) >= 2)); then
		GW_PIN=(taskset -c "$GATEWAY_CPU")
		LOAD_PIN=(taskset -c "$LOAD_CPU")
	else
		log "not pinning CPUs (taskset missing, one CPU, or NOPIN=1): results are noisier"
	fi
}

# build_rampart builds bin/rampart and sets RAMPART to it; it fails (printing
# why) when cmd/rampart is missing or does not compile. RAMPART_BIN=PATH uses a
# prebuilt binary instead (to compare two builds, or a stand-in).
build_rampart() {
	if [[ -n ${RAMPART_BIN:-} ]]; then
		[[ -x $RAMPART_BIN ]] || die "RAMPART_BIN=$RAMPART_BIN is not executable"
		RAMPART=$RAMPART_BIN
		log "using $RAMPART"
		return 0
	fi
	RAMPART=$ROOT/bin/rampart
	if [[ ! -d $ROOT/cmd/rampart ]]; then
		log "cmd/rampart does not exist yet"
		return 1
	fi
	if ! (cd "$ROOT" && go build -o bin/rampart ./cmd/rampart) 2>"$TMP/build.log"; then
		log "cmd/rampart does not build:"
		sed "s/^/[bench]   /" "$TMP/build.log" | head -20 >&2
		return 1
	fi
	log "built bin/rampart"
}

# ---------------------------------------------------------------- helpers ---

USED_PORTS=" "
# freeport sets FREEPORT to a TCP port on 127.0.0.1 that nothing listens on and
# that no earlier call returned. (Not a $(...) helper: the subshell would lose USED_PORTS.)
freeport() {
	local p i
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + RANDOM % 40000))
		[[ $USED_PORTS == *" $p "* ]] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			USED_PORTS+="$p "
			FREEPORT=$p
			return 0
		fi
	done
	die "no free port found"
}

# children prints the PIDs whose parent is $1 (nginx workers).
children() {
	local parent=$1 f stat rest
	for f in /proc/[0-9]*/stat; do
		{ stat=$(<"$f"); } 2>/dev/null || continue
		rest=${stat##*) }
		# shellcheck disable=SC2086
		set -- $rest # $1 state, $2 ppid
		[[ $2 == "$parent" ]] && { f=${f#/proc/}; echo "${f%/stat}"; }
	done
	return 0
}

# cpu_ticks prints utime+stime (clock ticks, all threads) of $1 and its children.
cpu_ticks() {
	local total=0 pid stat rest
	for pid in "$1" $(children "$1"); do
		{ stat=$(<"/proc/$pid/stat"); } 2>/dev/null || continue
		rest=${stat##*) }
		# shellcheck disable=SC2086
		set -- $rest # fields from 3 (state) on: utime is field 14, stime 15
		total=$((total + ${12} + ${13}))
	done
	echo "$total"
}

# rss_kb prints VmRSS (KiB) of $1 plus its children.
rss_kb() {
	local total=0 pid v
	for pid in "$1" $(children "$1"); do
		v=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || continue
		total=$((total + ${v:-0}))
	done
	echo "$total"
}

# wait_ready URL PID SIZE: until URL answers 200 with SIZE bytes (10 s at most).
wait_ready() {
	local url=$1 pid=$2 size=$3 i got
	for ((i = 0; i < 100; i++)); do
		[[ -z $pid ]] || kill -0 "$pid" 2>/dev/null || return 1
		got=$(curl -s -o /dev/null --max-time 1 -w '%{http_code} %{size_download}' "$url" 2>/dev/null) || got=
		[[ $got == "200 $size" ]] && return 0
		sleep 0.1
	done
	log "  $url answered '$got', wanted '200 $size'"
	return 1
}

run_wrk() { # URL CONNS DURATION OUT
	timeout "$(($(seconds "$3") + 30))" "${LOAD_PIN[@]}" wrk -t"$THREADS" -c"$2" -d"$3" --latency \
		-s "$ROOT/bench/wrk-report.lua" "$1" >"$4" 2>&1 || true
}

start_backend() { # SIZE
	rm -f "$TMP/backend.addr"
	"${LOAD_PIN[@]}" bin/bench-backend -size "$1" -addr 127.0.0.1:0 -addr-file "$TMP/backend.addr" \
		>"$TMP/backend.log" 2>&1 &
	BACKEND_PID=$!
	PIDS+=("$BACKEND_PID")
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -s $TMP/backend.addr ]] && break
		kill -0 "$BACKEND_PID" 2>/dev/null || die "backend exited: $(cat "$TMP/backend.log")"
		sleep 0.1
	done
	BACKEND_ADDR=$(<"$TMP/backend.addr")
}

start_nginx() { # CONNS
	local port keepalive=$(($1 > 64 ? $1 : 64)) user=""
	freeport
	port=$FREEPORT
	mkdir -p "$TMP/nginx"
	# As root, nginx would switch its worker to "nobody"; keep it the current user.
	[[ $(id -u) == 0 ]] && user="user $(id -un) $(id -gn);"
	cat >"$TMP/nginx/nginx.conf" <<EOF
# Generated by bench/run.sh.
$user
worker_processes 1;
daemon off;
master_process on;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/client_body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    # nginx closes a keep-alive connection after 1000 requests by default (both
    # sides); Go does not, so lift the limit to compare like with like.
    keepalive_requests 1000000;
    upstream backend {
        server $BACKEND_ADDR;
        keepalive $keepalive;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
	"$NGINX" -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" -t >"$TMP/nginx/test.log" 2>&1 ||
		die "nginx config test failed: $(cat "$TMP/nginx/test.log")"
	"${GW_PIN[@]}" "$NGINX" -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" \
		>"$TMP/nginx/stdout.log" 2>&1 &
	NGINX_PID=$!
	PIDS+=("$NGINX_PID")
	NGINX_URL=http://127.0.0.1:$port/
}

start_rampart() { # CONNS
	local port admin keepalive=$(($1 > 64 ? $1 : 64))
	freeport
	port=$FREEPORT
	freeport
	admin=$FREEPORT
	cat >"$TMP/rampart.yaml" <<EOF
# Generated by bench/run.sh.
listeners:
  - name: bench
    address: "127.0.0.1:$port"
    protocol: http
admin:
  address: "127.0.0.1:$admin"
upstreams:
  backend:
    targets:
      - {address: "$BACKEND_ADDR", weight: 1}
    keepalive: {max_idle_per_target: $keepalive, idle_timeout: 60s}
routes:
  - name: all
    match:
      path: {prefix: /}
    upstream: backend
observability:
  access_log: {path: "off"}
EOF
	GOMAXPROCS=1 "${GW_PIN[@]}" "$RAMPART" run -c "$TMP/rampart.yaml" >"$TMP/rampart.log" 2>&1 &
	RAMPART_PID=$!
	PIDS+=("$RAMPART_PID")
	RAMPART_URL=http://127.0.0.1:$port/
	RAMPART_ADMIN=127.0.0.1:$admin
}
