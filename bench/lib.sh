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
	# KEEP_TMP=1 keeps the generated configs and the proxies' logs.
	if [[ ${KEEP_TMP:-0} == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
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

# find_tool prints the path of command $1 (also looking in /usr/sbin), or nothing.
find_tool() {
	command -v "$1" 2>/dev/null || { [[ -x /usr/sbin/$1 ]] && echo "/usr/sbin/$1"; } || true
}

# need_tools installs curl and wrk when missing, and the Debian packages of the
# proxies named in $* (nginx haproxy caddy) and of h2load when asked for; it sets
# NGINX, HAPROXY, CADDY and H2LOAD to their paths, empty when unavailable.
need_tools() {
	command -v curl >/dev/null || apt_install curl || die "curl is required"
	command -v wrk >/dev/null || apt_install wrk || die "wrk is required (apt-get install wrk)"
	NGINX=$(find_tool nginx) HAPROXY=$(find_tool haproxy) CADDY=$(find_tool caddy) H2LOAD=$(find_tool h2load)
	local want=" $* "
	if [[ -z $NGINX && $want == *" nginx "* ]]; then
		apt_install nginx-light || apt_install nginx || true
		NGINX=$(find_tool nginx)
	fi
	if [[ -z $HAPROXY && $want == *" haproxy "* ]]; then
		apt_install haproxy || true
		HAPROXY=$(find_tool haproxy)
	fi
	if [[ -z $CADDY && $want == *" caddy "* ]]; then
		apt_install caddy || true
		CADDY=$(find_tool caddy)
	fi
	if [[ -z $H2LOAD && $want == *" h2load "* ]]; then
		apt_install nghttp2-client || true
		H2LOAD=$(find_tool h2load)
	fi
	return 0
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
	if (cd "$ROOT" && go build -o bin/rampart ./cmd/rampart) 2>"$TMP/build.log"; then
		log "built bin/rampart"
		return 0
	fi
	log "cmd/rampart in the working tree does not build:"
	sed "s/^/[bench]   /" "$TMP/build.log" | head -8 >&2
	# Other work in progress in a shared tree must not stop the benchmark:
	# measure the last commit instead, and say so in the results.
	[[ ${NO_HEAD_FALLBACK:-0} == 1 ]] && return 1
	rm -rf "$TMP/head" && mkdir -p "$TMP/head"
	if git -C "$ROOT" archive HEAD | tar -x -C "$TMP/head" &&
		(cd "$TMP/head" && go build -o "$ROOT/bin/rampart" ./cmd/rampart) 2>"$TMP/build.log"; then
		RAMPART_BUILT_FROM="HEAD $(git -C "$ROOT" rev-parse --short HEAD) (working tree did not build)"
		log "built bin/rampart from $RAMPART_BUILT_FROM"
		return 0
	fi
	log "cmd/rampart at HEAD does not build either:"
	sed "s/^/[bench]   /" "$TMP/build.log" | head -8 >&2
	return 1
}

# ---------------------------------------------------------------- helpers ---

USED_PORTS=" "
# freeport sets FREEPORT to a TCP port on 127.0.0.1 that nothing listens on and
# that no earlier call returned. (Not a $(...) helper: the subshell would lose USED_PORTS.)
freeport() {
	local p i
	for ((i = 0; i < 200; i++)); do
		# Below the kernel's ephemeral range (32768–60999 by default), so the
		# source port of some client connection cannot already hold it.
		p=$((10000 + RANDOM % 22000))
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

# wait_ready URL PID SIZE [MODE]: until URL answers 200 with SIZE bytes (10 s at
# most), over HTTP/2 with prior knowledge when MODE is h2, over HTTP/2 negotiated
# by ALPN when MODE is h2tls; for MODE grpc, until one unary gRPC call through
# URL's host:port gets a SIZE-byte answer (bench/grpcbackend -call).
wait_ready() {
	local url=$1 pid=$2 size=$3 mode=${4:-h1} i got opts=(-k)
	[[ $mode == h2 ]] && opts+=(--http2-prior-knowledge)
	[[ $mode == h2tls ]] && opts+=(--http2)
	for ((i = 0; i < 100; i++)); do
		[[ -z $pid ]] || kill -0 "$pid" 2>/dev/null || return 1
		if [[ $mode == grpc ]]; then
			local hostport=${url#http://}
			got=$(bin/bench-grpc -call "${hostport%%/*}" -size "$size" 2>&1) && return 0
			sleep 0.1
			continue
		fi
		got=$(curl -s "${opts[@]}" -o /dev/null --max-time 1 -w '%{http_code} %{size_download} %{http_version}' "$url" 2>/dev/null) || got=
		[[ $mode == h2* && $got == "200 $size 2" ]] && return 0
		[[ $mode != h2* && $got == "200 $size "* ]] && return 0
		sleep 0.1
	done
	log "  $url answered '$got', wanted '200 $size'"
	return 1
}

# run_wrk URL CONNS DURATION OUT: THREADS wrk threads; WRK_TIMEOUT (wrk's
# --timeout, default 2s) matters at thousands of connections.
run_wrk() { # URL CONNS DURATION OUT
	local threads=$THREADS
	((threads > $2)) && threads=$2
	timeout "$(($(seconds "$3") + 60))" "${LOAD_PIN[@]}" wrk -t"$threads" -c"$2" -d"$3" --latency \
		--timeout "${WRK_TIMEOUT:-2s}" -s "$ROOT/bench/wrk-report.lua" "$1" >"$4" 2>&1 || true
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

# start_grpc_backend SIZE: bench/grpcbackend (gRPC over h2c, SIZE-byte answers)
# on a free port; sets BACKEND_ADDR and GRPC_STATS (its call counter's address).
start_grpc_backend() { # SIZE
	rm -f "$TMP/backend.addr" "$TMP/backend.stats"
	"${LOAD_PIN[@]}" bin/bench-grpc -size "$1" -addr 127.0.0.1:0 -addr-file "$TMP/backend.addr" \
		-stats-addr-file "$TMP/backend.stats" >"$TMP/backend.log" 2>&1 &
	BACKEND_PID=$!
	PIDS+=("$BACKEND_PID")
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -s $TMP/backend.addr ]] && break
		kill -0 "$BACKEND_PID" 2>/dev/null || die "grpc backend exited: $(cat "$TMP/backend.log")"
		sleep 0.1
	done
	BACKEND_ADDR=$(<"$TMP/backend.addr") GRPC_STATS=$(<"$TMP/backend.stats")
}

# grpc_calls prints how many calls the gRPC backend has answered.
grpc_calls() { curl -s --max-time 2 "http://$GRPC_STATS/" || echo 0; }


# ---------------------------------------------------------------- targets ---
#
# start_proxy NAME CONNS MODE starts one proxy in front of $BACKEND_ADDR, pinned
# to the gateway CPU with one thread or process, upstream keep-alive and no access
# log, and sets PROXY_URL and PROXY_PID. MODE is h1 (HTTP/1.1 on plain text), h2
# (HTTP/2 with prior knowledge on plain text, h2c), tls (HTTPS with the
# self-signed $CERT/$KEY from make_cert, HTTP/1.1), h2tls (the same with h2
# offered by ALPN) or grpc (h2c on both sides, in front of bench/grpcbackend).
# PROXY_PROCS (default 1) is the number of threads or worker processes (rampart
# GOMAXPROCS, nginx worker_processes; the scale phase's 2-core run sets 2).
# It returns 1, with a message, when the proxy cannot serve that mode. Logs go
# to $TMP/NAME-MODE/.

start_proxy() { # NAME CONNS MODE
	local name=$1 conns=$2 mode=$3
	PROXY_DIR=$TMP/$name-$mode
	rm -rf "$PROXY_DIR"
	mkdir -p "$PROXY_DIR"
	freeport
	PROXY_PORT=$FREEPORT
	PROXY_URL=http://127.0.0.1:$PROXY_PORT/
	[[ $mode == tls || $mode == h2tls ]] && PROXY_URL=https://127.0.0.1:$PROXY_PORT/
	[[ $mode == grpc ]] && PROXY_URL=http://127.0.0.1:$PROXY_PORT/bench.Echo/Call
	PROXY_KEEPALIVE=$((conns > 64 ? conns : 64))
	"start_$name" "$mode" || return 1
	PIDS+=("$PROXY_PID")
}

# proxy_log prints the last lines a proxy logged (after it failed a check).
proxy_log() { # NAME MODE
	local f
	for f in "$TMP/$1-$2"/*.log; do
		[[ -s $f ]] && sed "s/^/[bench]   $1: /" "$f" | tail -15 >&2
	done
	return 0
}

# nginx_has_http2_on: nginx 1.25.1+ has the "http2 on;" directive; older ones
# take "http2" as a listen parameter.
nginx_has_http2_on() {
	local v
	v=$("$NGINX" -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p')
	[[ -n $v ]] && printf '%s\n1.25.1\n' "$v" | sort -V -C -r
}

start_nginx() { # MODE
	local d=$PROXY_DIR user="" listen="127.0.0.1:$PROXY_PORT" tls="" h2on=""
	local procs=${PROXY_PROCS:-1} pass="proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";"
	# As root, nginx would switch its worker to "nobody"; keep it the current user.
	[[ $(id -u) == 0 ]] && user="user $(id -un) $(id -gn);"
	case $1 in
	# nginx 1.22 has no "http2 on;" (1.25.1+): "listen ... http2" without ssl
	# serves HTTP/2 with prior knowledge only, which is what h2load speaks.
	h2 | grpc)
		if nginx_has_http2_on; then h2on="http2 on;"; else listen+=" http2"; fi
		# grpc_pass speaks HTTP/2 (h2c) upstream, one call per connection,
		# reusing the keep-alive connections of the upstream block.
		[[ $1 == grpc ]] && pass="grpc_pass grpc://backend;"
		;;
	tls | h2tls)
		listen+=" ssl"
		if [[ $1 == h2tls ]]; then
			if nginx_has_http2_on; then h2on="http2 on;"; else listen+=" http2"; fi
		fi
		# nginx before 1.23.4 leaves TLS 1.3 out of its default ssl_protocols:
		# without this line it negotiates TLS 1.2 while the others do 1.3.
		tls="ssl_certificate $CERT; ssl_certificate_key $KEY; ssl_session_cache shared:SSL:1m; ssl_protocols TLSv1.2 TLSv1.3;"
		;;
	esac
	# Thousands of connections arrive at once in the scale phase: a backlog as
	# deep as Go's (somaxconn), and with several workers one accept queue each.
	listen+=" backlog=$(cat /proc/sys/net/core/somaxconn 2>/dev/null || echo 4096)"
	((procs > 1)) && listen+=" reuseport"
	# Each worker may use every descriptor the hard limit allows; client and
	# upstream connections both count against worker_connections.
	local nofile wconns
	nofile=$(ulimit -Hn)
	[[ $nofile == unlimited ]] && nofile=1048576
	wconns=$((nofile - 64))
	# With thousands of busy connections (the scale phase) NGINX counts more
	# connection slots than it holds descriptors: at 9,500 clients (19,000
	# descriptors) 19,936 slots ran out ("worker_connections are not enough,
	# reusing connections", closing clients), with 40,000 no descriptor limit
	# was hit. Let the descriptors be the limit, as they are for rampart (NGINX
	# then warns that worker_connections exceed the open-files limit).
	((PROXY_KEEPALIVE > 1024)) && wconns=$((2 * nofile))
	cat >"$d/nginx.conf" <<CONF
# Generated by bench/lib.sh.
$user
worker_processes $procs;
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/error.log warn;
worker_rlimit_nofile $nofile;
events { worker_connections $wconns; }
http {
    access_log off;
    client_body_temp_path $d/client_body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    # nginx closes a keep-alive connection after 1000 requests by default (both
    # sides); Go does not, so lift the limit to compare like with like.
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    upstream backend {
        server $BACKEND_ADDR;
        keepalive $PROXY_KEEPALIVE;
        keepalive_requests 1000000;
    }
    server {
        listen $listen;
        $h2on
        $tls
        location / {
            $pass
        }
    }
}
CONF
	if ! "$NGINX" -p "$d" -e "$d/error.log" -c "$d/nginx.conf" -t >"$d/test.log" 2>&1; then
		log "nginx config test failed: $(cat "$d/test.log")"
		return 1
	fi
	"${GW_PIN[@]}" "$NGINX" -p "$d" -e "$d/error.log" -c "$d/nginx.conf" >"$d/stdout.log" 2>&1 &
	PROXY_PID=$!
}

start_haproxy() { # MODE
	local d=$PROXY_DIR bind="127.0.0.1:$PROXY_PORT"
	case $1 in
	h2) bind+=" proto h2" ;;
	tls)
		cat "$CERT" "$KEY" >"$d/cert+key.pem"
		bind+=" ssl crt $d/cert+key.pem alpn http/1.1"
		;;
	h2tls)
		cat "$CERT" "$KEY" >"$d/cert+key.pem"
		bind+=" ssl crt $d/cert+key.pem alpn h2,http/1.1"
		;;
	grpc) log "haproxy is not measured in the $1 phase"; return 1 ;;
	esac
	cat >"$d/haproxy.cfg" <<CONF
# Generated by bench/lib.sh.
global
    nbthread 1
    # HAProxy reserves two descriptors per connection (client and server side)
    # and refuses to start when maxconn does not fit the open-files limit,
    # 20,000 on this machine kind.
    maxconn 9990
    tune.ssl.default-dh-param 2048
defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 300s
    timeout server 60s
    timeout http-keep-alive 300s
frontend bench
    bind $bind
    default_backend backend
backend backend
    # Reuse idle upstream connections across client connections, like the
    # upstream keep-alive pools of the other proxies.
    http-reuse always
    server s1 $BACKEND_ADDR maxconn $PROXY_KEEPALIVE
CONF
	if ! "$HAPROXY" -c -f "$d/haproxy.cfg" >"$d/test.log" 2>&1; then
		log "haproxy config check failed: $(cat "$d/test.log")"
		return 1
	fi
	# -db: stay in the foreground, one process (no master-worker).
	"${GW_PIN[@]}" "$HAPROXY" -db -f "$d/haproxy.cfg" >"$d/haproxy.log" 2>&1 &
	PROXY_PID=$!
}

start_caddy() { # MODE
	local d=$PROXY_DIR site="http://127.0.0.1:$PROXY_PORT" tls="" protocols="h1"
	case $1 in
	h2) protocols="h1 h2c" ;;
	tls | h2tls)
		site="https://127.0.0.1:$PROXY_PORT"
		tls="tls $CERT $KEY"
		protocols="h1 h2"
		;;
	grpc) log "caddy is not measured in the grpc phase"; return 1 ;;
	esac
	# No "log" directive: Caddy writes no access log unless asked to.
	cat >"$d/Caddyfile" <<CONF
# Generated by bench/lib.sh.
{
	admin off
	auto_https disable_redirects
	skip_install_trust
	servers {
		protocols $protocols
	}
}
$site {
	$tls
	reverse_proxy $BACKEND_ADDR {
		transport http {
			keepalive 60s
			keepalive_idle_conns $PROXY_KEEPALIVE
			keepalive_idle_conns_per_host $PROXY_KEEPALIVE
		}
	}
}
CONF
	export XDG_DATA_HOME=$d/data XDG_CONFIG_HOME=$d/config
	if ! "$CADDY" validate --adapter caddyfile --config "$d/Caddyfile" >"$d/test.log" 2>&1; then
		log "caddy config check failed: $(tail -3 "$d/test.log")"
		return 1
	fi
	GOMAXPROCS=1 "${GW_PIN[@]}" "$CADDY" run --adapter caddyfile --config "$d/Caddyfile" >"$d/caddy.log" 2>&1 &
	PROXY_PID=$!
}

start_rampart() { # MODE
	local d=$PROXY_DIR tls="" upstream=""
	freeport
	RAMPART_ADMIN=127.0.0.1:$FREEPORT
	# gRPC: HTTP/2 in plain text to the backend (docs/grpc.md).
	[[ $1 == grpc ]] && upstream="
    protocol: h2c"
	# Above the circuit breaker's defaults (1,024 connections, pending and in
	# flight requests), the scale phase would measure 503s: lift them to the
	# connections in flight.
	# Thousands of upstream dials at once lose SYNs (the backend's accept
	# queue is somaxconn deep) and wait for retransmits: wait as long as
	# NGINX does (proxy_connect_timeout and proxy_read_timeout, 60s) rather
	# than rampart's 5 s connect and 15 s route timeouts.
	local route=""
	if ((PROXY_KEEPALIVE > 1024)); then
		upstream+="
    circuit_breaker: {max_connections: $PROXY_KEEPALIVE, max_pending_requests: $PROXY_KEEPALIVE, max_requests: $PROXY_KEEPALIVE}
    connect_timeout: 60s"
		route="
    timeout: 60s"
	fi
	[[ $1 == tls || $1 == h2tls ]] && tls="
    tls:
      certificates:
        - {cert_file: \"$CERT\", key_file: \"$KEY\"}"
	# The per-IP connection cap (if this build has it) would stop the idle
	# phase, whose connections all come from 127.0.0.1; lift it, and fall back
	# to a config without the key for builds that do not know it.
	local limits
	for limits in "{idle_timeout: 300s, max_connections_per_ip: 0}" "{idle_timeout: 300s}"; do
		# One listener serves HTTP/1.1 and h2c with prior knowledge alike.
		cat >"$d/rampart.yaml" <<CONF
# Generated by bench/lib.sh.
listeners:
  - name: bench
    address: "127.0.0.1:$PROXY_PORT"
    protocol: http$tls
    limits: $limits
admin:
  address: "$RAMPART_ADMIN"
upstreams:
  backend:
    targets:
      - {address: "$BACKEND_ADDR", weight: 1}
    keepalive: {max_idle_per_target: $PROXY_KEEPALIVE, idle_timeout: 60s}$upstream
routes:
  - name: all
    match:
      path: {prefix: /}
    upstream: backend$route
observability:
  access_log: {path: "off"}
CONF
		"$RAMPART" validate -c "$d/rampart.yaml" >"$d/validate.log" 2>&1 && break
	done
	if ! "$RAMPART" validate -c "$d/rampart.yaml" >"$d/validate.log" 2>&1; then
		log "rampart does not accept the $1 config: $(head -3 "$d/validate.log")"
		return 1
	fi
	GOMAXPROCS=${PROXY_PROCS:-1} "${GW_PIN[@]}" "$RAMPART" run -c "$d/rampart.yaml" >"$d/rampart.log" 2>&1 &
	PROXY_PID=$!
}

# start_rampart-b runs the other build of an A/B ($RAMPART_B) with the same
# config as start_rampart.
start_rampart-b() { # MODE
	local save=$RAMPART rc=0
	RAMPART=$RAMPART_B
	start_rampart "$@" || rc=$?
	RAMPART=$save
	return $rc
}

# make_cert writes a self-signed P-256 certificate for 127.0.0.1 and localhost
# to $CERT and $KEY.
make_cert() {
	CERT=$TMP/cert.pem KEY=$TMP/key.pem
	[[ -s $CERT ]] && return 0
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		-keyout "$KEY" -out "$CERT" >"$TMP/openssl.log" 2>&1 ||
		die "openssl could not make a certificate: $(cat "$TMP/openssl.log")"
}

# start_rampart-nethttp: rampart with HTTP/1.1 served by net/http behind the
# framing guard instead of its own server (RAMPART_HTTP1_SERVER=net/http), to
# measure what the fast path changes.
start_rampart-nethttp() { # MODE
	RAMPART_HTTP1_SERVER=net/http start_rampart "$@"
}

# start_rampart-b: a second rampart binary, RAMPART_B=PATH, measured in the same
# run as the first (e.g. TARGETS="rampart rampart-b nginx" to compare two builds).
start_rampart-b() { # MODE
	[[ -n ${RAMPART_B:-} ]] || { log "rampart-b needs RAMPART_B=PATH"; return 1; }
	local RAMPART=$RAMPART_B
	start_rampart "$@"
}
