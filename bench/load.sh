#!/usr/bin/env bash
# Side-by-side load test on loopback: the same nginx upstream reached directly, through
# nginx as a reverse proxy, through a bare Pingora proxy (crates/traverse-proxy/examples/
# bare_pingora.rs: one upstream, nothing else, the same Pingora settings and allocator as
# Traverse) and through Traverse in several configurations — one after the other, in one run:
#   metrics off     `metrics: {prometheus: {enabled: false}}`: nothing recorded (the baseline)
#   default         metrics on, Prometheus at /metrics (the out-of-the-box configuration)
#   access log      default + a JSON access log written to a file
#   traced          default + 100 % sampling, OTLP/HTTP to a rotel collector
#   sampled 1 %     default + 1 % sampling, to the same collector
#   collector down  traced, but nothing listens where it exports (connections refused)
#   collector 503   traced, to an nginx that answers every export 503 (retried, then dropped)
#   typical chain   default + a route with headers, rateLimit (average far above the load,
#                   so none is refused) and compress (the 2-byte answer stays under its
#                   threshold: its decision is measured, not the encoding)
# Absolute numbers move between machines and runs; compare the ratios.
#
#   bench/load.sh                      defaults: 5 s per run, 64 connections, 1 proxy thread
#   DURATION=10 CONNECTIONS=128 THREADS=2 bench/load.sh
#   ROUNDS=5 bench/load.sh             medians of 5 rounds: steadier ratios on a noisy machine
#   BEFORE=path/to/traverse bench/load.sh  adds 'traced' and 'sampled 1 %' rows run by another
#                                      build of Traverse (e.g. the previous commit), side by side
#   THREADS=4 bench/load.sh            on a machine with 16 or more cores every process is pinned
#                                      (taskset): upstream 0-3, proxies 4-7, wrk 11-15; on fewer
#                                      cores everything shares them (a smoke pass, not a figure)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}       # worker threads of each proxy (nginx workers, Traverse threads)
ROUNDS=${ROUNDS:-1}         # load the Traverse variants this many times, in rotating order; medians

# shellcheck source=bench/common.sh
source bench/common.sh

upstream_port=$(free_port); nginx_port=$(free_port); bare_port=$(free_port)
cargo build --release --locked -p traverse-proxy --example bare_pingora >&2

nginx_conf upstream 1 "server { listen 127.0.0.1:$upstream_port; location / { return 200 'ok'; } }"
nginx_conf proxy "$THREADS" "upstream app { server 127.0.0.1:$upstream_port; keepalive 128; }
    server { listen 127.0.0.1:$nginx_port; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ''; } }"

# The traced variant exports to a real collector that discards what it receives.
start_blackhole_collector

# Traverse variants: name, label, configuration added to the common one. The first is the
# baseline the others are compared with.
variants=(off default access traced sampled chain down refusing)
declare -A label extra port admin
label[direct]="upstream direct";     label[nginx]="nginx proxy";  label[bare]="bare Pingora"
label[off]="traverse metrics off";   extra[off]="metrics: {prometheus: {enabled: false}}"
label[default]="traverse default";   extra[default]=""
label[access]="traverse + access log"
extra[access]="logs: {access: {enabled: true, format: json, filePath: $work/access/access.log}}"
label[traced]="traverse traced"
extra[traced]="tracing: {sampleRate: 1.0, otlp: {http: {endpoint: \"http://127.0.0.1:$otlp_http_port/v1/traces\"}}}"
label[sampled]="traverse sampled 1 %"
extra[sampled]="tracing: {sampleRate: 0.01, otlp: {http: {endpoint: \"http://127.0.0.1:$otlp_http_port/v1/traces\"}}}"
label[chain]="traverse typical chain";  extra[chain]=""
# Export to a collector that is down, or that refuses every export with a retryable 503:
# the queue stays full and spans are dropped; requests should not notice.
down_port=$(free_port) refusing_port=$(free_port)
nginx_conf refusing 1 "server { listen 127.0.0.1:$refusing_port; location / { return 503; } }"
label[down]="traverse collector down"
extra[down]="tracing: {sampleRate: 1.0, otlp: {http: {endpoint: \"http://127.0.0.1:$down_port/v1/traces\"}}}"
label[refusing]="traverse collector 503"
extra[refusing]="tracing: {sampleRate: 1.0, otlp: {http: {endpoint: \"http://127.0.0.1:$refusing_port/v1/traces\"}}}"
declare -A route_middlewares middlewares
route_middlewares[chain]="{name: headers}, {name: limit}, {name: compress}"
middlewares[chain]="apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: headers}
spec:
  headers:
    customRequestHeaders: {X-Gateway: traverse}
    customResponseHeaders: {X-Served-By: traverse}
    frameDeny: true
    contentTypeNosniff: true
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: limit}
spec: {rateLimit: {average: 100000000, burst: 100000000}}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: compress}
spec: {compress: {}}"
declare -A bin
if [[ -n ${BEFORE:-} ]]; then
    variants+=(traced_before sampled_before)
    for v in traced sampled; do
        label[${v}_before]="${label[$v]} (BEFORE)"; extra[${v}_before]=${extra[$v]}; bin[${v}_before]=$BEFORE
    done
fi

start_traverse() { # $1 = variant
    local v=$1 dir="$work/$1"
    port[$v]=$(free_port); admin[$v]=$(free_port)
    traverse_config "$dir" "${port[$v]}" "${admin[$v]}" "$THREADS" "${extra[$v]}" \
        "${route_middlewares[$v]:-}" "${middlewares[$v]:-}"
    RUST_LOG=warn pinned proxy "${bin[$v]:-$traverse}" run --config "$dir/traverse.yaml" 2>"$dir/stderr" &
    pids+=($!)
}
for v in "${variants[@]}"; do start_traverse "$v"; done
# The bare Pingora proxy, with Traverse's Pingora settings (threads, work stealing, h2c, pool).
pinned proxy "$target_dir/release/examples/bare_pingora" "127.0.0.1:$bare_port" "127.0.0.1:$upstream_port" \
    --threads "$THREADS" --pool 256 2>"$work/bare.stderr" &
pids+=($!)

wait_port "$upstream_port"; wait_port "$nginx_port"; curl_ok "$nginx_port"; wait_port "$bare_port"; curl_ok "$bare_port"
for v in "${variants[@]}"; do wait_port "${port[$v]}"; curl_ok "${port[$v]}"; done

if (( $(nproc) >= 16 )); then placement="pinned: upstream ${cores[upstream]}, proxy ${cores[proxy]}, wrk ${cores[load]}"
else placement="$(nproc) cores shared by everything"; fi
echo "wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s, proxies with $THREADS worker thread(s), $placement"
declare -A rps p99 err reqs # per target: space-separated values, one per round
add() { # $1 = target, $2 = port: one load, appended to the target's values
    local r p e n
    read -r r p e n _ < <(load "$2")
    rps[$1]+=" $r"; p99[$1]+=" $p"; err[$1]=$(( ${err[$1]:-0} + e )); reqs[$1]=$(( ${reqs[$1]:-0} + n ))
}

add direct "$upstream_port"
add nginx "$nginx_port"
port[bare]=$bare_port
rotation=(bare "${variants[@]}")
for ((round = 0; round < ROUNDS; round++)); do # each round starts one row later
    for ((i = 0; i < ${#rotation[@]}; i++)); do
        v=${rotation[(i + round) % ${#rotation[@]}]}
        add "$v" "${port[$v]}"
        sleep 2 # let queued access log records and span batches leave before the next load
    done
done

checks=()
for v in "${variants[@]}"; do
    if [[ $v != off ]]; then # every variant but the baseline records metrics: scrape once
        counted=$(admin_get "${admin[$v]}" /metrics | awk '/^traverse_entrypoint_requests_total\{/ && /entrypoint="web"/ {n += $NF} END {printf "%d", n}')
        checks+=("${label[$v]}: traverse_entrypoint_requests_total $counted vs wrk ${reqs[$v]} requests ($(( counted - reqs[$v] )) more)")
    fi
    if [[ $v == access ]]; then
        lines=$(wc -l <"$work/access/access.log")
        stats=$(admin_get "${admin[$v]}" /api/telemetry | python3 -c 'import json,sys; a=json.load(sys.stdin)["accessLog"]; print("logged %d, dropped %d, write errors %d" % (a["logged"], a["dropped"], a["writeErrors"]))')
        checks+=("${label[$v]}: $lines access log lines vs wrk ${reqs[$v]} requests ($(( lines - reqs[$v] )) more); $stats")
    fi
    if [[ $v == traced* || $v == sampled* || $v == down || $v == refusing ]]; then
        checks+=("${label[$v]}: spans $(admin_get "${admin[$v]}" /api/telemetry | python3 -c 'import json,sys; s=json.load(sys.stdin)["traces"]["spans"]; print("ended %d, exported %d, dropped %d, failed %d, rejected %d" % (s["ended"], s["exported"], s["dropped"], s["failed"], s["rejected"]))') for ${reqs[$v]} requests")
    fi
done

if (( ROUNDS > 1 )); then echo "bare Pingora and Traverse rows: median of $ROUNDS rounds"; fi
printf '%-30s %12s %10s %8s %14s %10s\n' target "req/s" "p99 ms" "non-2xx" "vs metrics off" "vs bare"
base=$(median "${rps[off]}") bare=$(median "${rps[bare]}")
for t in direct nginx bare "${variants[@]}"; do
    r=$(median "${rps[$t]}") ratio="" vs_bare=""
    if [[ $t != direct && $t != nginx && $t != bare ]]; then
        ratio=$(python3 -c "print(f'{$r / $base:.2f}')"); vs_bare=$(python3 -c "print(f'{$r / $bare:.2f}')")
    fi
    printf '%-30s %12.0f %10.2f %8s %14s %10s\n' "${label[$t]}" "$r" "$(median "${p99[$t]}")" "${err[$t]}" "$ratio" "$vs_bare"
done
python3 -c "print(f'traverse default / bare Pingora: {$(median "${rps[default]}") / $bare:.2f}; bare Pingora / nginx: {$bare / $(median "${rps[nginx]}"):.2f}; traverse default / nginx: {$(median "${rps[default]}") / $(median "${rps[nginx]}"):.2f}')"
python3 -c "print(f'typical chain / default: {$(median "${rps[chain]}") / $(median "${rps[default]}"):.2f}')"
python3 -c "d = $(median "${rps[default]}"); print(f'traced 100 % / default: {$(median "${rps[traced]}") / d:.2f}; sampled 1 % / default: {$(median "${rps[sampled]}") / d:.2f}')"
python3 -c "t = $(median "${rps[traced]}"); print(f'collector down / traced: {$(median "${rps[down]}") / t:.2f}; collector 503 / traced: {$(median "${rps[refusing]}") / t:.2f}')"
if [[ -n ${BEFORE:-} ]]; then
    python3 -c "d = $(median "${rps[default]}"); print(f'BEFORE: traced 100 % / default: {$(median "${rps[traced_before]}") / d:.2f}; sampled 1 % / default: {$(median "${rps[sampled_before]}") / d:.2f}')"
fi
echo "all variants but 'metrics off' record metrics (Prometheus on); 'traced' also traces 100 %, 'sampled' 1 %"
printf '%s\n' "${checks[@]}"
echo "('more' is expected up to $ROUNDS x $CONNECTIONS + 1: responses wrk stopped waiting for, and the warm-up request)"
