#!/usr/bin/env bash
# Instructions per request, Traverse against a bare Pingora proxy, counted by callgrind:
# repeatable on a noisy machine, where req/s is not. Each proxy runs under callgrind
# twice, serving N1 and then N2 requests over one kept-alive connection; the difference
# divided by N2 - N1 is the cost of one request, start-up and shutdown cancelled out.
#   bench/profile.sh                   N1=500 N2=2500, one proxy thread
#   N1=1000 N2=5000 bench/profile.sh
#   KEEP=1 bench/profile.sh            keep the callgrind files in the target directory's callgrind/
#   ROWS="bare default traced" bench/profile.sh    only these rows (bare must come first)
#   BEFORE=path/to/traverse bench/profile.sh       adds rows run by another build (e.g. the
#                                      previous commit): 'default' and 'traced' (BEFORE)
# Rows: bare Pingora (examples/bare_pingora.rs, the same allocator), Traverse with metrics
# off, Traverse default (metrics on), and Traverse traced at 100 % to a collector; the row
# "sampled" (1 % sampling) runs when ROWS names it.
set -euo pipefail
cd "$(dirname "$0")/.."
N1=${N1:-500}
N2=${N2:-2500}
DURATION=1 CONNECTIONS=1 THREADS=1
# shellcheck source=bench/common.sh
source bench/common.sh
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
cargo build --release --locked -p traverse-proxy --example bare_pingora >&2
bare="$target_dir/release/examples/bare_pingora"

upstream_port=$(free_port)
nginx_conf upstream 1 "server { listen 127.0.0.1:$upstream_port; location / { return 200 'ok'; } }"
wait_port "$upstream_port"
start_blackhole_collector

# Sends exactly $2 GET requests to port $1 over one kept-alive connection.
requests() {
    python3 - "$1" "$2" <<'PY'
import http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for _ in range(n):
    c.request("GET", "/")
    r = c.getresponse()
    if r.read() != b"ok" or r.status != 200:
        sys.exit(f"bad response {r.status}")
PY
}

# Total instructions of one run of row $1 serving $2 requests.
count() {
    local row=$1 n=$2 port out pid
    port=$(free_port); out="$work/$row.$n.callgrind"
    case $row in
        bare) cmd=("$bare" "127.0.0.1:$port" "127.0.0.1:$upstream_port" --threads 1) ;;
        *) traverse_config "$work/$row" "$port" "$(free_port)" 1 "${extra[$row]}"
           cmd=("${bin[$row]:-$traverse}" run --config "$work/$row/traverse.yaml") ;;
    esac
    RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out" "${cmd[@]}" 2>"$work/$row.$n.log" &
    pid=$!
    for _ in $(seq 600); do (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
    requests "$port" 20 # warm-up: connections, pools, lazy statics
    requests "$port" "$n"
    kill -INT "$pid"; wait "$pid" || true
    if [[ -n ${KEEP:-} ]]; then mkdir -p "$target_dir/callgrind"; cp "$out" "$target_dir/callgrind/$row.$n.callgrind"; fi
    awk '/^(summary|totals):/ {print $2; exit}' "$out"
}

declare -A extra label bin
read -r -a rows <<<"${ROWS:-bare off default traced}"
label[bare]="bare Pingora";       extra[bare]=""
label[off]="traverse metrics off"; extra[off]="metrics: {prometheus: {enabled: false}}"
label[default]="traverse default"; extra[default]=""
label[traced]="traverse traced";   extra[traced]="tracing: {sampleRate: 1.0, otlp: {http: {endpoint: \"http://127.0.0.1:$otlp_http_port/v1/traces\"}}}"
label[sampled]="traverse sampled 1 %"; extra[sampled]="tracing: {sampleRate: 0.01, otlp: {http: {endpoint: \"http://127.0.0.1:$otlp_http_port/v1/traces\"}}}"
if [[ -n ${BEFORE:-} ]]; then
    for row in default traced; do
        label[${row}_before]="${label[$row]} (BEFORE)"; extra[${row}_before]=${extra[$row]}; bin[${row}_before]=$BEFORE
        rows+=("${row}_before")
    done
fi

echo "callgrind, instructions per request (N2=$N2 minus N1=$N1 requests, one connection, one thread)"
printf '%-30s %14s %14s\n' row "instr/request" "vs bare"
declare -A per
for row in "${rows[@]}"; do
    a=$(count "$row" "$N1"); b=$(count "$row" "$N2")
    per[$row]=$(( (b - a) / (N2 - N1) ))
    printf '%-30s %14d %14s\n' "${label[$row]}" "${per[$row]}" \
        "$(python3 -c "print(f'{${per[$row]} / ${per[bare]}:.2f}')")"
done
