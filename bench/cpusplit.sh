#!/usr/bin/env bash
# bench/cpusplit.sh — where the CPU goes per request, by process.
#
#   bash bench/cpusplit.sh [tandem|nginx] [body bytes] [seconds]
#
# Starts two benchbackends (legacy, new) and the proxy on 127.0.0.1, drives
# it with wrk (-t2 -c32, POST of the given size, 100% mirrored), and prints
# CPU microseconds per request for the proxy, both backends together, wrk,
# and the whole machine, from /proc/PID/stat and /proc/stat around the run.
# On a machine where all of them share the CPUs, throughput is
# cores ÷ (machine µs per request): this shows which part a proxy can change.
set -euo pipefail
TARGET=${1:-tandem}; SIZE=${2:-1024}; DUR=${3:-8}
cd "$(dirname "$0")/.."
T=$(mktemp -d /tmp/tandem-cpusplit.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
go build -o "$T/tandem" ./cmd/tandem
go build -o "$T/benchbackend" ./internal/tools/benchbackend
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
LP=$(port); NP=$(port); PP=$(port); AP=$(port)
"$T/benchbackend" -listen 127.0.0.1:$LP >/dev/null 2>&1 & B1=$!; PIDS+=($B1)
"$T/benchbackend" -listen 127.0.0.1:$NP >/dev/null 2>&1 & B2=$!; PIDS+=($B2)
case $TARGET in
tandem)
	cat >"$T/t.yaml" <<Y
listen: 127.0.0.1:$PP
admin: {listen: 127.0.0.1:$AP}
data_dir: $T/data
limits: {shadow_concurrency: 256}
backends:
  legacy: {url: "http://127.0.0.1:$LP", timeout: 30s}
  new: {url: "http://127.0.0.1:$NP", timeout: 30s}
routes: [{name: bench, match: {path_prefix: /}, legacy: legacy, new: new, mirror: 100}]
Y
	TANDEM_ADMIN_TOKEN=cpusplit "$T/tandem" serve -config "$T/t.yaml" >"$T/tandem.log" 2>&1 & P=$!; PIDS+=($P)
	PROCS=($P) ;;
nginx)
	NGINX=$(command -v nginx || echo /usr/sbin/nginx)
	mkdir -p "$T/ng/logs" "$T/ng/tmp"
	cat >"$T/ng/nginx.conf" <<N
worker_processes auto; user root; daemon off; pid $T/ng/nginx.pid;
error_log $T/ng/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; client_body_temp_path $T/ng/tmp/body; proxy_temp_path $T/ng/tmp/proxy;
  client_max_body_size 0; client_body_buffer_size $(( SIZE / 1024 + 64 ))k;
  keepalive_requests 1000000; keepalive_timeout 60s;
  upstream legacy { server 127.0.0.1:$LP; keepalive 64; }
  upstream new    { server 127.0.0.1:$NP; keepalive 256; }
  server {
    listen 127.0.0.1:$PP;
    location / { mirror /mirror; mirror_request_body on; proxy_http_version 1.1;
                 proxy_set_header Connection ""; proxy_pass http://legacy; }
    location = /mirror { internal; proxy_http_version 1.1; proxy_set_header Connection "";
                 proxy_pass http://new\$request_uri; }
  }
}
N
	"$NGINX" -p "$T/ng" -e "$T/ng/logs/error.log" -c "$T/ng/nginx.conf" & P=$!; PIDS+=($P)
	sleep 1
	PROCS=($P $(pgrep -P $P | tr '\n' ' ')) ;;
*) echo "usage: $0 [tandem|nginx] [bytes] [seconds]" >&2; exit 2 ;;
esac
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PP) 2>/dev/null && break; sleep 0.1; done
cat >"$T/post.lua" <<L
wrk.method = "POST"
wrk.body = string.rep("x", $SIZE)
wrk.headers["Content-Type"] = "application/octet-stream"
L
wrk -t2 -c32 -d1s -s "$T/post.lua" http://127.0.0.1:$PP/upload >/dev/null   # warm-up
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat; }
p0=$(ticks "${PROCS[@]}"); b0=$(ticks $B1 $B2); read -r s0 i0 < <(busy)
wrk -t2 -c32 -d${DUR}s -s "$T/post.lua" http://127.0.0.1:$PP/upload >"$T/wrk.out" & W=$!
sleep 0.2; w0=$(ticks $W); sleep $((DUR - 1)); w1=$(ticks $W)
wait $W
p1=$(ticks "${PROCS[@]}"); b1=$(ticks $B1 $B2); read -r s1 i1 < <(busy)
REQ=$(awk '/requests in/{print $1}' "$T/wrk.out")
HZ=$(getconf CLK_TCK)
python3 - "$TARGET" "$SIZE" "$DUR" "$REQ" "$HZ" $p0 $p1 $b0 $b1 $w0 $w1 $s0 $s1 $i0 $i1 <<'P'
import sys
t, size, dur, req, hz = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
p0, p1, b0, b1, w0, w1, s0, s1, i0, i1 = map(int, sys.argv[6:])
us = lambda ticks, n=req: round(ticks / hz * 1e6 / n)
wrk_req = req * (dur - 1.2) / dur  # wrk sampled over part of the run
print(f"{t} {size} B: {req/dur:.0f} req/s; CPU µs per request: proxy {us(p1-p0)}, "
      f"backends {us(b1-b0)}, wrk ~{round((w1-w0)/hz*1e6/wrk_req)}, machine {us(s1-s0)}; "
      f"idle {100*(i1-i0)/(s1-s0+i1-i0):.0f}%")
P
