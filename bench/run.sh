#!/usr/bin/env bash
# bench/run.sh — end-to-end benchmark: direct backend vs nginx (mirror module)
# vs tandem, each serving from a "legacy" backend and mirroring 100% of the
# requests to a "new" backend, and internal/tools/mirrorfloor, the least work
# a mirroring proxy can do, as a floor. Writes BENCHMARKS.md at the repository
# root.
#
# Environment (all optional):
#   BENCH_DURATION   wrk duration of each measured run       (default 10s)
#   BENCH_ROUNDS     interleaved rounds; medians are reported  (default 3)
#   BENCH_WARMUP     unmeasured wrk run before each measured one (default 3s:
#                    at 1 MiB tandem's shadow pool takes a few seconds to reach
#                    its steady size; measured from a 1s warm-up, the first-touch
#                    page faults of that growth were ~7% of its CPU)
#   BENCH_THREADS    wrk -t                                    (default 2)
#   BENCH_CONNS      wrk -c                                    (default 32)
#   BENCH_SIZES      body sizes in bytes                       (default "1024 65536 1048576")
#   BENCH_SLOW_DELAY -delay of the slow mirror backend         (default 200ms)
#   BENCH_OUT        report path                               (default <repo>/BENCHMARKS.md)
#   BENCH_KEEP=1     keep the temp dir (configs, logs, raw wrk output)
#   BENCH_TANDEM_BIN use this tandem binary instead of building ./cmd/tandem
#
# Everything listens on 127.0.0.1. Every process started here is killed on
# exit. Every wait is bounded.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=${BENCH_DURATION:-10s}
ROUNDS=${BENCH_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-3s}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNS:-32}
SIZES=${BENCH_SIZES:-"1024 65536 1048576"}
SLOW_DELAY=${BENCH_SLOW_DELAY:-200ms}
OUT=${BENCH_OUT:-$ROOT/BENCHMARKS.md}
GO=${GO:-go}
SHADOW_CONCURRENCY=256

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

# duration string (e.g. 10s, 500ms, 1m) -> whole seconds, rounded up, min 1
dur_secs() {
	awk -v d="$1" 'BEGIN {
		if (d ~ /ms$/) { v = substr(d, 1, length(d)-2) / 1000 }
		else if (d ~ /s$/) { v = substr(d, 1, length(d)-1) }
		else if (d ~ /m$/) { v = substr(d, 1, length(d)-1) * 60 }
		else if (d ~ /h$/) { v = substr(d, 1, length(d)-1) * 3600 }
		else { v = d }
		s = int(v); if (s < v) s++; if (s < 1) s = 1; print s }'
}
DUR_S=$(dur_secs "$DURATION")
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer, got '$ROUNDS'"

START_TS=$(date +%s)

# ---------------------------------------------------------------- tools
APT_UPDATED=0
apt_install() { # pkg... ; returns non-zero if it could not be installed
	command -v apt-get >/dev/null 2>&1 || return 1
	if [[ $APT_UPDATED == 0 ]]; then
		DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq "$@" >/dev/null 2>&1 && return 0
		log "apt-get install $* failed; running apt-get update once"
		timeout 300 apt-get update -qq >/dev/null 2>&1 || true
		APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq "$@" >/dev/null 2>&1
}

if ! command -v wrk >/dev/null 2>&1; then
	log "installing wrk"
	apt_install wrk || die "wrk is not installed and apt-get could not install it (it is the load generator; nothing to measure without it)"
fi
HAVE_NGINX=1
NGINX_SKIP_REASON=""
NGINX=$(command -v nginx 2>/dev/null || true)
[[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
if [[ -z $NGINX ]]; then
	log "installing nginx"
	if apt_install nginx || apt_install nginx-light; then
		NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
	fi
fi
if [[ -z $NGINX || ! -x $NGINX ]]; then
	HAVE_NGINX=0
	NGINX_SKIP_REASON="nginx is not installed and apt-get could not install it"
	log "SKIPPING nginx: $NGINX_SKIP_REASON"
fi

# ---------------------------------------------------------------- temp dir, cleanup
T=$(mktemp -d /tmp/tandem-bench.XXXXXX)
PIDS=()     # every process started by this script
cleanup() {
	local rc=$? pid i
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for i in $(seq 1 50); do
		local alive=0
		for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
		[[ $alive == 0 ]] && break
		sleep 0.1
	done
	for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
	if [[ ${BENCH_KEEP:-0} == 1 ]]; then log "kept $T"; else rm -rf "$T"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

forget_pid() { # remove a stopped pid from PIDS
	local p new=()
	for p in "${PIDS[@]}"; do [[ $p != "$1" ]] && new+=("$p"); done
	PIDS=("${new[@]}")
}

stop_pid() { # pid...: TERM, wait up to 5s, KILL
	local pid i alive
	for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
	for i in $(seq 1 50); do
		alive=0
		for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
		[[ $alive == 0 ]] && break
		sleep 0.1
	done
	for pid in "$@"; do
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		forget_pid "$pid"
	done
}

# ---------------------------------------------------------------- helpers
USED_PORTS=" "
port_busy() {
	if command -v ss >/dev/null 2>&1; then
		[[ -n $(ss -Htln "sport = :$1" 2>/dev/null) ]] && return 0
	fi
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
	return 1
}
free_port() { # a free port below the ephemeral range
	local p i
	for i in $(seq 1 500); do
		p=$((20000 + RANDOM % 12000))
		[[ $USED_PORTS == *" $p "* ]] && continue
		port_busy "$p" && continue
		USED_PORTS+="$p "
		echo "$p"
		return 0
	done
	die "no free port found"
}

wait_port() { # port pid name logfile
	local i
	for i in $(seq 1 150); do
		kill -0 "$2" 2>/dev/null || { tail -20 "$4" >&2 || true; die "$3 exited during start-up (log above)"; }
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	tail -20 "$4" >&2 || true
	die "$3 did not listen on 127.0.0.1:$1 within 15s"
}

http_get() { # port path -> body on stdout (HTTP/1.0, no curl needed)
	timeout 5 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" "$2" >&3
		sed "1,/^\r\{0,1\}$/d" <&3' _ "$1" "$2"
}

get_count() { # port -> POSTs received by that benchbackend
	local c
	c=$(http_get "$1" /count 2>/dev/null | tr -dc '0-9') || true
	[[ -n $c ]] || die "cannot read /count from backend on port $1"
	echo "$c"
}

get_conns() { # port -> connections that benchbackend saw open with a POST
	local c
	c=$(http_get "$1" /conns 2>/dev/null | tr -dc '0-9') || true
	[[ -n $c ]] || die "cannot read /conns from backend on port $1"
	echo "$c"
}

# Wait until both backends' counters stop moving (in-flight mirrors drained):
# unchanged for 4 polls 250ms apart, at most 30s. Prints "legacy new".
settle_counts() {
	local a b pa=-1 pb=-1 stable=0 i
	for i in $(seq 1 120); do
		a=$(get_count "$LEGACY_PORT"); b=$(get_count "$1")
		if [[ $a == "$pa" && $b == "$pb" ]]; then
			stable=$((stable + 1))
			[[ $stable -ge 3 ]] && break
		else
			stable=0
		fi
		pa=$a; pb=$b
		sleep 0.25
	done
	echo "$a $b"
}

cpu_ticks() { # pid... -> utime+stime summed, clock ticks
	local pid sum=0 t
	for pid in "$@"; do
		t=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
		sum=$((sum + ${t:-0}))
	done
	echo "$sum"
}

hwm_kb() { # pid... -> VmHWM summed, kB
	local pid sum=0 v
	for pid in "$@"; do
		v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || v=0
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# ---------------------------------------------------------------- build
log "building tandem, benchbackend and mirrorfloor into $T"
if [[ -n ${BENCH_TANDEM_BIN:-} ]]; then
	cp "$BENCH_TANDEM_BIN" "$T/tandem" || die "cannot copy BENCH_TANDEM_BIN=$BENCH_TANDEM_BIN"
	log "using prebuilt tandem $BENCH_TANDEM_BIN"
else
	$GO build -o "$T/tandem" ./cmd/tandem || die "go build ./cmd/tandem failed"
fi
$GO build -o "$T/benchbackend" ./internal/tools/benchbackend || die "go build ./internal/tools/benchbackend failed"
$GO build -o "$T/mirrorfloor" ./internal/tools/mirrorfloor || die "go build ./internal/tools/mirrorfloor failed"

# ---------------------------------------------------------------- backends
start_backend() { # name delay -> sets PORT_<name>
	local name=$1 delay=$2 port
	port=$(free_port)
	"$T/benchbackend" -listen "127.0.0.1:$port" -delay "$delay" >"$T/backend-$name.log" 2>&1 &
	PIDS+=($!)
	wait_port "$port" "$!" "backend $name" "$T/backend-$name.log"
	printf -v "PORT_$name" '%s' "$port"
	printf -v "PID_$name" '%s' "$!"
	log "backend $name on 127.0.0.1:$port (delay $delay, pid $!)"
}
start_backend legacy 0s
start_backend new 0s
start_backend slow "$SLOW_DELAY"
LEGACY_PORT=$PORT_legacy

# ---------------------------------------------------------------- wrk scripts
size_label() {
	awk -v b="$1" 'BEGIN {
		if (b >= 1048576 && b % 1048576 == 0) printf "%d MiB", b/1048576
		else if (b >= 1024 && b % 1024 == 0) printf "%d KiB", b/1024
		else printf "%d B", b }'
}
for size in $SIZES; do
	[[ $size =~ ^[0-9]+$ ]] || die "BENCH_SIZES must be byte counts, got '$size'"
	cat >"$T/post-$size.lua" <<EOF
-- POST a ${size}-byte body; done() prints one machine-readable line.
wrk.method = "POST"
wrk.body = string.rep("x", ${size})
wrk.headers["Content-Type"] = "application/octet-stream"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%.0f p50_us=%.0f p99_us=%.0f connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
EOF
done
# Largest body decides nginx's in-memory body buffer (see nginx.conf below).
MAX_SIZE=0
for size in $SIZES; do [[ $size -gt $MAX_SIZE ]] && MAX_SIZE=$size; done
BODY_BUF_KB=$(( (MAX_SIZE + 1023) / 1024 + 1024 ))

# ---------------------------------------------------------------- proxies
PROXY_PIDS=()   # pids whose CPU/RSS are measured (nginx: master + workers)
PROXY_MAIN=""
PROXY_PORT=""
ADMIN_PORT=""

start_tandem() { # new_port tag
	local dir="$T/tandem-$2"
	mkdir -p "$dir"
	PROXY_PORT=$(free_port); ADMIN_PORT=$(free_port)
	cat >"$dir/tandem.yaml" <<EOF
listen: 127.0.0.1:$PROXY_PORT
admin:
  listen: 127.0.0.1:$ADMIN_PORT
data_dir: $dir/data
shutdown_timeout: 5s
limits: {shadow_concurrency: $SHADOW_CONCURRENCY}
backends:
  legacy:
    url: http://127.0.0.1:$LEGACY_PORT
    timeout: 30s
  new:
    url: http://127.0.0.1:$1
    timeout: 30s
routes:
  - name: bench
    match: {path_prefix: /}
    legacy: legacy
    new: new
    mirror: 100
EOF
	cp "$dir/tandem.yaml" "$T/last-tandem.yaml"
	TANDEM_ADMIN_TOKEN=bench-token "$T/tandem" serve -config "$dir/tandem.yaml" >"$dir/tandem.log" 2>&1 &
	PROXY_MAIN=$!
	PIDS+=("$PROXY_MAIN")
	wait_port "$PROXY_PORT" "$PROXY_MAIN" tandem "$dir/tandem.log"
	PROXY_PIDS=("$PROXY_MAIN")
}

start_nginx() { # new_port tag
	local dir="$T/nginx-$2" i w
	mkdir -p "$dir/logs" "$dir/tmp"
	PROXY_PORT=$(free_port)
	cat >"$dir/nginx.conf" <<EOF
# Generated by bench/run.sh. Runs in the foreground as root with its own
# prefix, pid and log paths; never touches the system nginx.
worker_processes auto;            # = nproc workers
user root;                        # temp dir is root-only (0700)
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;                 # tandem keeps no access log either
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path       $dir/tmp/proxy;
  fastcgi_temp_path     $dir/tmp/fastcgi;
  uwsgi_temp_path       $dir/tmp/uwsgi;
  scgi_temp_path        $dir/tmp/scgi;
  client_max_body_size 0;         # no limit (tandem: max_body 1GiB)
  client_body_buffer_size ${BODY_BUF_KB}k;  # > largest body: never spooled to disk
  keepalive_requests 1000000;     # wrk keeps its connections; so does tandem
  keepalive_timeout 60s;
  upstream legacy { server 127.0.0.1:$LEGACY_PORT; keepalive 64; }
  upstream new    { server 127.0.0.1:$1; keepalive 256; }
  server {
    listen 127.0.0.1:$PROXY_PORT;
    location / {
      mirror /mirror;
      mirror_request_body on;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://legacy;
    }
    location = /mirror {
      internal;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://new\$request_uri;
    }
  }
}
EOF
	cp "$dir/nginx.conf" "$T/last-nginx.conf"
	"$NGINX" -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" >"$dir/stderr.log" 2>&1 &
	PROXY_MAIN=$!
	PIDS+=("$PROXY_MAIN")
	wait_port "$PROXY_PORT" "$PROXY_MAIN" nginx "$dir/logs/error.log"
	# master + workers (workers are the master's children)
	local workers=""
	for i in $(seq 1 50); do
		workers=$(pgrep -P "$PROXY_MAIN" 2>/dev/null | tr '\n' ' ' || true)
		[[ -n $workers ]] && break
		sleep 0.1
	done
	PROXY_PIDS=("$PROXY_MAIN")
	for w in $workers; do PROXY_PIDS+=("$w"); PIDS+=("$w"); done
}

start_floor() { # new_port tag
	local dir="$T/floor-$2"
	mkdir -p "$dir"
	PROXY_PORT=$(free_port)
	"$T/mirrorfloor" -listen "127.0.0.1:$PROXY_PORT" -legacy "127.0.0.1:$LEGACY_PORT" -new "127.0.0.1:$1" >"$dir/floor.log" 2>&1 &
	PROXY_MAIN=$!
	PIDS+=("$PROXY_MAIN")
	wait_port "$PROXY_PORT" "$PROXY_MAIN" mirrorfloor "$dir/floor.log"
	PROXY_PIDS=("$PROXY_MAIN")
}

stop_proxy() {
	[[ -n $PROXY_MAIN ]] || return 0
	stop_pid "${PROXY_PIDS[@]}"
	PROXY_PIDS=(); PROXY_MAIN=""
}

# Shadows tandem did not send (queue_full, breaker_open, too_large,
# spool_full, error), from its /metrics; "?" if unreadable.
tandem_skipped() {
	local m
	m=$(http_get "$ADMIN_PORT" /metrics 2>/dev/null) || { echo "?"; return 0; }
	awk '/^tandem_shadow_total\{/ && !/outcome="(sent|sampling)"/ { s += $NF; n++ }
		END { if (n) printf "%d\n", s; else print "?" }' <<<"$m"
}

# ---------------------------------------------------------------- one run
RESULTS="$T/results.tsv"
printf 'round\tscenario\tsize\ttarget\trps\tp50_us\tp99_us\trequests\terrors\tcpu_s\tbackends_cpu_s\twrk_cpu_s\thwm_kb\tlegacy_recv\tmirrors_recv\tshadow_skipped\tbackend_conns\n' >"$RESULTS"

# Parse wrk output: the BENCH line from done(); if it is missing, fall back to
# wrk's human-readable text (latency in us/ms/s/m/h, Requests/sec).
parse_wrk() { # file -> "requests rps p50_us p99_us errors"
	awk -v dur="$DUR_S" '
	function to_us(s,   v) {
		v = s + 0
		if (s ~ /us$/) return v
		if (s ~ /ms$/) return v * 1000
		if (s ~ /[0-9]s$/) return v * 1000000
		if (s ~ /m$/) return v * 60000000
		if (s ~ /h$/) return v * 3600000000
		return v
	}
	/^BENCH / {
		for (i = 2; i <= NF; i++) { split($i, kv, "="); b[kv[1]] = kv[2] }
		got = 1
	}
	/^ *50% / { t50 = to_us($2) }
	/^ *99% / { t99 = to_us($2) }
	/requests in/ { treq = $1 }
	/^Requests\/sec:/ { trps = $2 }
	/Non-2xx or 3xx responses:/ { tstat = $NF }
	/Socket errors:/ { gsub(/,/, ""); tsock = $4 + $6 + $8 + $10 }
	END {
		if (got) {
			rps = (b["duration_us"] > 0) ? b["requests"] / (b["duration_us"] / 1e6) : 0
			err = b["connect"] + b["read"] + b["write"] + b["status"] + b["timeout"]
			printf "%d %.2f %.0f %.0f %d\n", b["requests"], rps, b["p50_us"], b["p99_us"], err
		} else if (treq != "") {
			printf "%d %.2f %.0f %.0f %d\n", treq, trps, t50, t99, tstat + tsock
		} else {
			print "0 0 0 0 -1"
		}
	}' "$1"
}

run_one() { # round scenario size target new_port
	local round=$1 scen=$2 size=$3 target=$4 newport=$5
	local tag="r$round-$scen-$size" url port wlog
	case $target in
	direct) port=$LEGACY_PORT; PROXY_PIDS=(); PROXY_MAIN="" ;;
	nginx)  start_nginx "$newport" "$tag"; port=$PROXY_PORT ;;
	tandem) start_tandem "$newport" "$tag"; port=$PROXY_PORT ;;
	floor)  start_floor "$newport" "$tag"; port=$PROXY_PORT ;;
	esac
	url="http://127.0.0.1:$port/upload"
	wlog="$T/wrk-$tag-$target.txt"

	# warm-up (not measured), then let every in-flight mirror land
	timeout $(( $(dur_secs "$WARMUP") + 30 )) wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" --timeout 10s \
		-s "$T/post-$size.lua" "$url" >/dev/null 2>&1 || log "warm-up wrk failed ($target $tag)"
	local before after c0 c1 bc0 bc1 bpids
	# the backends this run uses: legacy, plus the mirror (direct has none)
	bpids=("$PID_legacy")
	[[ $target != direct ]] && { [[ $newport == "$PORT_slow" ]] && bpids+=("$PID_slow") || bpids+=("$PID_new"); }
	before=$(settle_counts "$newport")
	local conns0 conns1
	conns0=$(( $(get_conns "$LEGACY_PORT") + $(get_conns "$newport") ))
	c0=$(cpu_ticks "${PROXY_PIDS[@]}"); bc0=$(cpu_ticks "${bpids[@]}")
	local skipped0=0
	[[ $target == tandem ]] && skipped0=$(tandem_skipped)

	# wrk runs in a subshell whose `times` gives wrk's own CPU (user, sys).
	local wrk_rc=0
	(
		timeout $(( DUR_S + 60 )) wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout 10s --latency \
			-s "$T/post-$size.lua" "$url" >"$wlog" 2>&1
		rc=$?
		times >"$wlog.times"
		exit $rc
	) || wrk_rc=$?
	[[ $wrk_rc == 0 ]] || log "wrk exited $wrk_rc ($target $tag), see $wlog"

	after=$(settle_counts "$newport")   # mirrors still in flight count too
	conns1=$(( $(get_conns "$LEGACY_PORT") + $(get_conns "$newport") ))
	c1=$(cpu_ticks "${PROXY_PIDS[@]}"); bc1=$(cpu_ticks "${bpids[@]}")
	local hwm=0 skipped=""
	[[ ${#PROXY_PIDS[@]} -gt 0 ]] && hwm=$(hwm_kb "${PROXY_PIDS[@]}")
	if [[ $target == tandem ]]; then
		skipped=$(tandem_skipped)
		[[ $skipped != "?" && $skipped0 != "?" ]] && skipped=$((skipped - skipped0)) || skipped="?"
	fi
	stop_proxy

	local reqs rps p50 p99 errs
	read -r reqs rps p50 p99 errs < <(parse_wrk "$wlog")
	local leg=$(( ${after% *} - ${before% *} ))
	local mir=$(( ${after#* } - ${before#* } ))
	local cpu="" hwmv="" mirv="" skv="" bcpu wcpu
	bcpu=$(awk -v a="$bc0" -v b="$bc1" -v hz="$CLK_TCK" 'BEGIN { printf "%.3f", (b - a) / hz }')
	# second line of `times`: the children's user and system time, as 1m2.345s
	wcpu=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); t += a[1] * 60 + a[2] } printf "%.3f", t }' "$wlog.times" 2>/dev/null || true)
	if [[ $target != direct ]]; then
		cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$CLK_TCK" 'BEGIN { printf "%.3f", (b - a) / hz }')
		hwmv=$hwm; mirv=$mir; skv=$skipped
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
		"$round" "$scen" "$size" "$target" "$rps" "$p50" "$p99" "$reqs" "$errs" "$cpu" "$bcpu" "$wcpu" "$hwmv" "$leg" "$mirv" "$skv" "$((conns1 - conns0))" >>"$RESULTS"
	log "$(printf '%-6s %-10s %8s B  %9s req/s  p50 %7.2f ms  p99 %8.2f ms  errors %s  legacy %s  mirrors %s  cpu %ss  rss %s kB' \
		"$target" "$scen" "$size" "$rps" "$(awk -v v="$p50" 'BEGIN{print v/1000}')" "$(awk -v v="$p99" 'BEGIN{print v/1000}')" \
		"$errs" "$leg" "${mirv:--}" "${cpu:--}" "${hwmv:--}")"
}

# ---------------------------------------------------------------- main loop
TARGETS="direct tandem floor"
[[ $HAVE_NGINX == 1 ]] && TARGETS="direct nginx tandem floor"
# The floor's mirror falls at most three pieces behind before it holds up the
# served requests, so a slow mirror would only measure that: it runs in the
# fast scenario.
SLOW_TARGETS=${TARGETS#direct }
SLOW_TARGETS=${SLOW_TARGETS% floor}
SLOW_SIZE=1024
NSIZES=$(wc -w <<<"$SIZES")
NRUNS=$(( ROUNDS * (NSIZES * $(wc -w <<<"$TARGETS") + $(wc -w <<<"$SLOW_TARGETS")) ))
log "$NRUNS measured runs of $DURATION (+$WARMUP warm-up each), $ROUNDS round(s), wrk -t$THREADS -c$CONNS"
[[ $HAVE_NGINX == 1 ]] || log "nginx is SKIPPED: $NGINX_SKIP_REASON"

for round in $(seq 1 "$ROUNDS"); do
	log "---- round $round/$ROUNDS"
	for size in $SIZES; do
		for target in $TARGETS; do
			run_one "$round" mirror "$size" "$target" "$PORT_new"
		done
	done
	for target in $SLOW_TARGETS; do
		run_one "$round" slowmirror "$SLOW_SIZE" "$target" "$PORT_slow"
	done
done

# ---------------------------------------------------------------- report
ELAPSED=$(( $(date +%s) - START_TS ))
MODEL=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
MEM=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
GOV=$($GO version)
WRKV=$(wrk -v 2>&1 | head -1 || true)
NGINXV="not installed (skipped)"
[[ $HAVE_NGINX == 1 ]] && NGINXV=$("$NGINX" -v 2>&1 | head -1)
GITREV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
GITDIRTY=$(git status --porcelain 2>/dev/null | head -1 || true)
[[ -n $GITDIRTY ]] && GITREV="$GITREV (with uncommitted changes)"

# Medians per (scenario, size, target) and ratios vs direct at the same size;
# the slow-mirror scenario is compared with direct at its body size (the
# legacy backend is the same one).
summary_table() { # [ceiling]
	awk -F'\t' -v mode="${1:-}" -v slowsize="$SLOW_SIZE" -v havenginx="$HAVE_NGINX" -v sizes="$SIZES" -v slowdelay="$SLOW_DELAY" '
	function median(key, m,   n, i, j, t, a) {
		n = split(vals[key, m], a, " ")
		if (n == 0 || vals[key, m] == "") return ""
		for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j+1] = a[j]; a[j+1] = t }
		return (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
	}
	function lbl(b) {
		if (b >= 1048576 && b % 1048576 == 0) return sprintf("%d MiB", b/1048576)
		if (b >= 1024 && b % 1024 == 0) return sprintf("%d KiB", b/1024)
		return b " B"
	}
	function ms(us) { return (us >= 100000) ? sprintf("%.0f", us/1000) : (us >= 10000) ? sprintf("%.1f", us/1000) : sprintf("%.2f", us/1000) }
	function ratio(a, b) { return (b > 0) ? sprintf("%.2f×", a / b) : "—" }
	# field f per `per` requests: per round, then the median
	function perreq(key, f, per,    n, i, ca, ra, cl) {
		n = split(vals[key, f], ca, " "); split(vals[key, "requests"], ra, " ")
		cl = ""
		for (i = 1; i <= n; i++) if (ra[i] > 0) cl = cl (cl == "" ? "" : " ") (ca[i] / ra[i] * per)
		vals[key, f "_" per] = cl
		return median(key, f "_" per)
	}
	function per10k(key, f) { return perreq(key, f, 10000) }
	# The throughput a proxy costing no CPU could reach: each request costs
	# wrk and two backends (each doing what it does for direct) instead of
	# one, on CPUs as busy as in the direct runs.
	function ceiling(   ns, sz, s, size, dkey, nkey, tkey, fkey, drps, w, b, busy, ceil, nrps, trps, frps, tcpu, ncpu, fcpu, budget) {
		print "| body | direct req/s | wrk CPU µs/req | backend CPU µs/req | ceiling req/s | ceiling ÷ nginx | floor ÷ nginx | tandem ÷ nginx | tandem ÷ floor | tandem ÷ ceiling | proxy CPU µs/req left for 1.5× nginx | floor CPU µs/req | tandem CPU µs/req | nginx CPU µs/req |"
		print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
		ns = split(sizes, sz, " ")
		for (s = 1; s <= ns; s++) {
			size = sz[s]; dkey = "mirror" SUBSEP size SUBSEP "direct"
			if (!(dkey in seen)) continue
			drps = median(dkey, "rps")
			w = perreq(dkey, "wrk_cpu_s", 1e6); b = perreq(dkey, "backends_cpu_s", 1e6)
			if (w == "" || drps <= 0) continue
			busy = drps * (w + b) / 1e6 # CPUs kept busy in the direct runs
			ceil = busy * 1e6 / (w + 2 * b)
			nkey = "mirror" SUBSEP size SUBSEP "nginx"; tkey = "mirror" SUBSEP size SUBSEP "tandem"
			fkey = "mirror" SUBSEP size SUBSEP "floor"
			nrps = (nkey in seen) ? median(nkey, "rps") : 0
			trps = (tkey in seen) ? median(tkey, "rps") : 0
			frps = (fkey in seen) ? median(fkey, "rps") : 0
			tcpu = (tkey in seen) ? sprintf("%.0f", perreq(tkey, "cpu_s", 1e6)) : "—"
			ncpu = (nkey in seen) ? sprintf("%.0f", perreq(nkey, "cpu_s", 1e6)) : "—"
			fcpu = (fkey in seen) ? sprintf("%.0f", perreq(fkey, "cpu_s", 1e6)) : "—"
			budget = "—"
			if (nrps > 0) {
				budget = busy * 1e6 / (1.5 * nrps) - w - 2 * b
				budget = (budget > 0) ? sprintf("%.0f", budget) : sprintf("none (%.0f)", budget)
			}
			printf "| %s | %.0f | %.1f | %.1f | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", lbl(size), drps, w, b, ceil, ratio(ceil, nrps), ratio(frps, nrps), ratio(trps, nrps), ratio(trps, frps), ratio(trps, ceil), budget, fcpu, tcpu, ncpu
		}
	}
	NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	{
		key = $col["scenario"] SUBSEP $col["size"] SUBSEP $col["target"]
		split("rps p50_us p99_us cpu_s backends_cpu_s wrk_cpu_s hwm_kb requests legacy_recv mirrors_recv errors shadow_skipped backend_conns", ms_, " ")
		for (k in ms_) {
			v = $col[ms_[k]]
			if (v == "" || v == "?") continue
			vals[key, ms_[k]] = (vals[key, ms_[k]] == "" ? "" : vals[key, ms_[k]] " ") v
			sum[key, ms_[k]] += v
		}
		seen[key] = 1
	}
	END {
		if (mode == "ceiling") { ceiling(); exit }
		print "| scenario | body | target | req/s (median) | × direct | p50 ms | × direct | p99 ms | × direct | CPU s / 10k req | backends CPU s / 10k req | backend connections opened / 1k req | peak RSS MiB | mirrors received / requests sent | wrk errors |"
		print "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
		ns = split(sizes, sz, " ")
		nt = split("direct nginx tandem floor", tg, " ")
		for (s = 1; s <= ns + 1; s++) {
			if (s <= ns) { scen = "mirror"; size = sz[s]; sname = "mirror 100%" }
			else { scen = "slowmirror"; size = slowsize; sname = "mirror 100%, mirror backend +" slowdelay }
			dkey = "mirror" SUBSEP size SUBSEP "direct"
			drps = median(dkey, "rps"); d50 = median(dkey, "p50_us"); d99 = median(dkey, "p99_us")
			for (t = 1; t <= nt; t++) {
				target = tg[t]
				if (scen == "slowmirror" && target == "direct") continue
				key = scen SUBSEP size SUBSEP target
				if (!(key in seen)) {
					if (target == "nginx" && havenginx != 1)
						printf "| %s | %s | nginx | skipped: not installed | | | | | | | | | | | |\n", sname, lbl(size)
					continue
				}
				rps = median(key, "rps"); p50 = median(key, "p50_us"); p99 = median(key, "p99_us")
				bcpu10k = per10k(key, "backends_cpu_s")
				conns1k = perreq(key, "backend_conns", 1000)
				if (target == "direct") {
					printf "| %s | %s | **direct** | %.0f | 1.00× | %s | 1.00× | %s | 1.00× | — | %.3f | %.1f | — | — | %d |\n", "baseline (no proxy)", lbl(size), rps, ms(p50), ms(p99), bcpu10k, conns1k, sum[key, "errors"]
					continue
				}
				cpu10k = per10k(key, "cpu_s")
				hwm = median(key, "hwm_kb")
				leg = sum[key, "legacy_recv"]; mir = sum[key, "mirrors_recv"]
				mr = (leg > 0) ? sprintf("%.2f%% (%d / %d)", 100 * mir / leg, mir, leg) : "—"
				printf "| %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %.3f | %.3f | %.1f | %.1f | %s | %d |\n", sname, lbl(size), target, rps, ratio(rps, drps), ms(p50), ratio(p50, d50), ms(p99), ratio(p99, d99), cpu10k, bcpu10k, conns1k, hwm / 1024, mr, sum[key, "errors"]
			}
		}
	}' "$RESULTS"
}

raw_table() {
	awk -F'\t' '
	NR == 1 { print "| round | scenario | body B | target | req/s | p50 µs | p99 µs | requests | errors | CPU s | backends CPU s | wrk CPU s | peak RSS kB | legacy received | mirrors received | tandem shadows skipped | backend connections opened |"
	          print "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"; next }
	{ row = "|"; for (i = 1; i <= NF; i++) row = row " " ($i == "" ? "—" : $i) " |"; print row }' "$RESULTS"
}

# Automatic observations: places where tandem is behind nginx, and incomplete mirroring.
observations() {
	awk -F'\t' -v slowdelay="$SLOW_DELAY" '
	NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	function lbl(b) {
		if (b >= 1048576 && b % 1048576 == 0) return sprintf("%d MiB", b/1048576)
		if (b >= 1024 && b % 1024 == 0) return sprintf("%d KiB", b/1024)
		return b " B"
	}
	{
		key = ($col["scenario"] == "mirror" ? "mirror" : "slow mirror (" slowdelay ")") ", " lbl($col["size"])
		t = $col["target"]
		rps[key, t] += $col["rps"]; n[key, t]++
		if (t != "direct") {
			leg[key, t] += $col["legacy_recv"]; mir[key, t] += $col["mirrors_recv"]
			done_[key, t] += $col["requests"]; sk[key, t] += $col["shadow_skipped"]
		}
		keys[key] = 1
	}
	END {
		any = 0
		for (k in keys) {
			if (n[k, "nginx"] && n[k, "tandem"]) {
				a = rps[k, "tandem"] / n[k, "tandem"]; b = rps[k, "nginx"] / n[k, "nginx"]
				if (a < b) { printf "- %s: tandem mean throughput %.1f req/s is below nginx %.1f req/s (%.3f×).\n", k, a, b, a / b; any = 1 }
			}
			split("nginx tandem", ts, " ")
			for (i = 1; i <= 2; i++) {
				t = ts[i]
				if (n[k, t] && leg[k, t] > 0 && mir[k, t] < leg[k, t]) {
					printf "- %s: %s mirrored %d of the %d requests that reached legacy (%.2f%%)", k, t, mir[k, t], leg[k, t], 100 * mir[k, t] / leg[k, t]
					if (t == "tandem") printf "; tandem counted %d shadows as skipped (queue_full, breaker_open, ...)", sk[k, t]
					if (mir[k, t] >= done_[k, t]) printf "; at least as many mirrors arrived as wrk completed requests (%d), so the missing ones most likely belong to requests still in flight when wrk stopped and closed its connections", done_[k, t]
					printf ".\n"; any = 1
				}
			}
		}
		if (!any) print "- none: tandem kept up with nginx everywhere and every request was mirrored."
	}' "$RESULTS" | sort
}

WRK_CMD="wrk -t$THREADS -c$CONNS -d$DURATION --timeout 10s --latency -s post-<size>.lua http://127.0.0.1:<port>/upload"

{
	cat <<EOF
# Benchmarks

Generated by \`make bench\` (\`bench/run.sh\`) on $(date -u '+%Y-%m-%d %H:%M UTC') at commit $GITREV.
Do not edit by hand: re-run the benchmark instead.

tandem, nginx (mirror module) and no proxy at all ("direct") are driven with the
same wrk load. Both proxies serve every request from the \`legacy\` backend and
mirror 100% of them to the \`new\` backend. So does "floor",
\`internal/tools/mirrorfloor\`: the least work a mirroring proxy can do. It
reads each request as it arrives, writes every piece to legacy and hands it
to a goroutine that writes it to new, copies legacy's answer back, and does
HTTP framing and nothing else (no header rewriting, timeouts, comparison or
records), over tandem's own socket layer (\`internal/rawconn\`) with two
backend connections per client connection. It is not a proxy anyone should
run; it shows what this machine leaves to any mirroring proxy written in Go.
The backends are
\`internal/tools/benchbackend\` (fasthttp; it streams the body into SHA-256 and
answers \`{"sha256":..,"size":..}\`).

## Machine

| | |
|---|---|
| CPUs (nproc) | $(nproc) |
| CPU model | ${MODEL:-unknown} |
| memory | $MEM |
| kernel | $(uname -sr) |
| Go | $GOV |
| nginx | $NGINXV |
| wrk | $WRKV |

wrk, the proxy under test and both backends share these $(nproc) CPUs (and, on a
shared machine, with whatever else runs), so absolute numbers are pessimistic
and noisy; the ratios between targets measured in the same round are the
meaningful part.

## Commands

\`\`\`sh
make bench                                    # go test -run='^\$\$' -bench=. -benchmem ./... then bash bench/run.sh
BENCH_DURATION=$DURATION BENCH_ROUNDS=$ROUNDS bash bench/run.sh   # this report
\`\`\`

Each measured run (after a ${WARMUP} unmeasured warm-up against the same target):

\`\`\`sh
$WRK_CMD
\`\`\`

post-<size>.lua sets \`wrk.method = "POST"\`, \`wrk.body = string.rep("x", <size>)\`,
\`Content-Type: application/octet-stream\`, and prints the summary from \`done()\`
(requests, duration, latency percentiles, errors) so nothing depends on parsing
wrk's human-readable units (the text output is parsed as a fallback, us/ms/s/m/h).

Order: $ROUNDS round(s); in each round, for each body size ($(for s in $SIZES; do printf '%s, ' "$(size_label "$s")"; done | sed 's/, $//')),
direct → nginx → tandem → floor; then the slow-mirror scenario (mirror backend started
with \`-delay $SLOW_DELAY\`, $(size_label "$SLOW_SIZE") bodies) nginx → tandem (the floor's
mirror falls at most three pieces behind before it holds up the served
requests, so it has no slow-mirror run). Each proxy
is started fresh for each run, so peak RSS belongs to that run (plus its warm-up).

## Results (medians over $ROUNDS round(s), $DURATION each)

EOF
	summary_table
	cat <<EOF

- **× direct**: the proxy's median divided by direct's median at the same body
  size (the slow-mirror rows use direct at $(size_label "$SLOW_SIZE"): the legacy backend is the same).
- **CPU s / 10k req**: (utime+stime) of the proxy process(es) from \`/proc/PID/stat\`,
  sampled after the warm-up and after the run plus mirror drain, divided by
  the completed requests × 10,000 (clock tick $CLK_TCK Hz). nginx = master + workers.
- **backends CPU s / 10k req**: the same for the backends the run used (legacy,
  plus the mirror backend behind a proxy). All processes share the CPUs, so
  throughput ≈ cores ÷ (proxy + backends + wrk CPU per request): this column
  shows how much of the budget the proxy leaves, and what it makes the
  backends spend.
- **backend connections opened / 1k req**: connections whose first request
  was a POST, counted by the backends (\`GET /conns\`), per 1,000 completed
  requests. A proxy that keeps its upstream connections alive opens about 0;
  one new connection per mirrored request shows as about 1,000. nginx's
  \`mirror\` module makes its subrequests \`header_only\` (it never reads the
  mirror's response body), so \`upstream { keepalive }\` cannot keep those
  connections: every mirrored request opens a new one, whatever the config.
  This is part of what the backends' CPU column shows.
- **peak RSS**: \`VmHWM\` from \`/proc/PID/status\`; nginx = master + all workers summed.
- **mirrors received / requests sent**: POSTs counted by the new backend's
  \`/count\` over POSTs counted by the legacy backend during the measured run,
  both read after the counters stopped moving (every in-flight mirror landed;
  at most 30 s). Summed over rounds.
- **wrk errors**: connect + read + write + timeout + non-2xx, summed over rounds.
- **slow-mirror rows**: the mirror backend answers after $SLOW_DELAY. nginx
  sends the legacy response at once, but does not read the next request on
  that keep-alive connection until the mirror subrequest has finished, so a
  slow shadow throttles the served traffic to about connections / delay
  requests per second ($CONNS / $SLOW_DELAY here). tandem caps in-flight shadows at
  \`limits.shadow_concurrency\` ($SHADOW_CONCURRENCY) and skips the rest (\`queue_full\`),
  so it mirrors at most about $SHADOW_CONCURRENCY / delay requests per second and
  serves the others at full speed, as DESIGN.md requires.

### What a proxy that cost nothing could reach

All processes share the CPUs, so with 100% mirrored every request costs wrk
plus two backends, even through a proxy that used no CPU at all. From the
direct runs (medians of wrk's and the backend's CPU per request, and of the
throughput, which shows how busy the machine kept its CPUs), the ceiling is
direct req/s × (wrk + backend) ÷ (wrk + 2 × backend). "Proxy CPU left for
1.5× nginx" is what a proxy may spend per request and still reach 1.5×
nginx's median throughput on those CPUs: CPUs busy ÷ (1.5 × nginx req/s) −
wrk − 2 × backend. A proxy's real backends cost at least that much (nginx's
new connection per mirror costs them more). wrk's CPU is bash's \`times\` for
the subshell that runs it. "floor ÷ nginx" is the measured counterpart: the
throughput of the floor proxy (above), which spends on each request only the
system calls and copies that mirroring needs.

EOF
	summary_table ceiling
	cat <<EOF

### Automatic observations

EOF
	observations
	cat <<EOF

## Configurations

tandem (ports are chosen free at run time):

\`\`\`yaml
$(sed -e "s#$T#<tmp>#g" "$T/last-tandem.yaml" 2>/dev/null || echo "(tandem did not run)")
\`\`\`

EOF
	if [[ $HAVE_NGINX == 1 ]]; then
		cat <<EOF
nginx (\`nginx -p <tmp> -e <tmp>/logs/error.log -c nginx.conf\`, foreground, as
root). \`worker_processes auto\` gives one worker per CPU ($(nproc) here), the same
parallelism Go gives tandem (GOMAXPROCS = $(nproc)). \`client_body_buffer_size\`
is ${BODY_BUF_KB}k, above the largest body, so nginx keeps bodies in memory
instead of spooling them to disk; \`mirror_request_body on\` makes nginx read
the whole body before proxying (tandem streams it).

\`\`\`nginx
$(sed -e "s#$T#<tmp>#g" "$T/last-nginx.conf")
\`\`\`
EOF
	else
		printf 'nginx: **skipped** — %s.\n' "$NGINX_SKIP_REASON"
	fi
	cat <<EOF

Backends: \`benchbackend -listen 127.0.0.1:<port> -delay 0s\` (legacy and new)
and \`-delay $SLOW_DELAY\` (slow new).

## Raw results (every run)

EOF
	raw_table
	cat <<EOF

bench/run.sh took ${ELAPSED}s for this report.
EOF
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"

log "wrote $OUT (${ELAPSED}s)"
summary_table >&2
