#!/usr/bin/env bash
# Side-by-side load test on loopback: the same nginx upstream reached directly, through
# nginx as a reverse proxy, through Traverse, and through Traverse tracing every request
# (100 % sampling, OTLP/HTTP to a rotel collector) — one after the other, in one run.
# Absolute numbers move between machines and runs; compare the ratios.
#
#   bench/load.sh                      defaults: 5 s per run, 64 connections, 1 proxy thread
#   DURATION=10 CONNECTIONS=128 THREADS=2 bench/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}       # worker threads of each proxy (nginx workers, Traverse threads)

scripts/install-prereqs.sh bench
cargo build --release --locked -p traverse >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
traverse="$target_dir/release/traverse"

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

upstream_port=$(free_port); nginx_port=$(free_port); traverse_port=$(free_port); admin_port=$(free_port)
traced_port=$(free_port); traced_admin_port=$(free_port); otlp_http_port=$(free_port); otlp_grpc_port=$(free_port)

nginx_conf() { # $1 = name, $2 = workers, $3 = server block
    mkdir -p "$work/$1"
    cat > "$work/$1/nginx.conf" <<CONF
worker_processes $2;
pid $work/$1/nginx.pid;
error_log $work/$1/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    $3
}
CONF
    nginx -p "$work/$1" -c "$work/$1/nginx.conf" -g 'daemon off;' &
    pids+=($!)
}

nginx_conf upstream 1 "server { listen 127.0.0.1:$upstream_port; location / { return 200 'ok'; } }"
nginx_conf proxy "$THREADS" "upstream app { server 127.0.0.1:$upstream_port; keepalive 128; }
    server { listen 127.0.0.1:$nginx_port; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ''; } }"

mkdir -p "$work/traverse/manifests"
cat > "$work/traverse/traverse.yaml" <<CONF
entryPoints:
  web: {address: "127.0.0.1:$traverse_port"}
admin: {address: "127.0.0.1:$admin_port"}
providers: {file: {directory: manifests, watch: false}}
server: {threads: $THREADS}
CONF
cat > "$work/traverse/manifests/app.yaml" <<CONF
apiVersion: v1
kind: Service
metadata: {name: app}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: app, labels: {kubernetes.io/service-name: app}}
addressType: IPv4
ports: [{name: http, port: $upstream_port}]
endpoints: [{addresses: [127.0.0.1]}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: app}
spec:
  routes:
    - match: PathPrefix(\`/\`)
      services: [{name: app, port: http}]
CONF
RUST_LOG=warn "$traverse" run --config "$work/traverse/traverse.yaml" 2>"$work/traverse/stderr" &
pids+=($!)

# The same gateway, tracing everything into a real collector that discards what it receives.
"${TRAVERSE_TOOLS:-$HOME/.cache/traverse/tools}/bin/rotel-agent" start \
    --otlp-grpc-endpoint "127.0.0.1:$otlp_grpc_port" --otlp-http-endpoint "127.0.0.1:$otlp_http_port" \
    --exporter blackhole >"$work/rotel.log" 2>&1 &
pids+=($!)
mkdir -p "$work/traced"
cp -r "$work/traverse/manifests" "$work/traced/"
cat > "$work/traced/traverse.yaml" <<CONF
entryPoints:
  web: {address: "127.0.0.1:$traced_port"}
admin: {address: "127.0.0.1:$traced_admin_port"}
providers: {file: {directory: manifests, watch: false}}
server: {threads: $THREADS}
tracing:
  sampleRate: 1.0
  otlp: {http: {endpoint: "http://127.0.0.1:$otlp_http_port/v1/traces"}}
CONF
wait_port "$otlp_http_port"
RUST_LOG=warn "$traverse" run --config "$work/traced/traverse.yaml" 2>"$work/traced/stderr" &
pids+=($!)

wait_port "$upstream_port"; wait_port "$nginx_port"; wait_port "$traverse_port"; wait_port "$traced_port"
curl_ok() { python3 -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:$1/').read()==b'ok' else 1)"; }
curl_ok "$nginx_port"; curl_ok "$traverse_port"; curl_ok "$traced_port"

# Prints "requests_per_second p99_ms non_2xx".
load() {
    local out
    out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "http://127.0.0.1:$1/")
    local rps p99 errors
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" { v=$2; if (v ~ /us$/) { sub(/us$/,"",v); v/=1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) } else if (v ~ /s$/) { sub(/s$/,"",v); v*=1000 } print v }' <<<"$out")
    errors=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")
    echo "$rps $p99 ${errors:-0}"
}

echo "wrk -t2 -c$CONNECTIONS -d${DURATION}s, proxies with $THREADS worker thread(s), $(nproc) cores shared by everything"
read -r direct_rps direct_p99 direct_err < <(load "$upstream_port")
read -r nginx_rps nginx_p99 nginx_err < <(load "$nginx_port")
read -r traverse_rps traverse_p99 traverse_err < <(load "$traverse_port")
read -r traced_rps traced_p99 traced_err < <(load "$traced_port")
sleep 2 # let the last batches leave before reading the export counters
spans=$(python3 -c "import json,urllib.request; s=json.load(urllib.request.urlopen('http://127.0.0.1:$traced_admin_port/api/telemetry'))['traces']['spans']; print(f\"exported {s['exported']}, dropped {s['dropped']}, failed {s['failed']}\")")

printf '%-22s %12s %10s %8s\n' target "req/s" "p99 ms" "non-2xx"
printf '%-22s %12.0f %10.2f %8s\n' "upstream direct" "$direct_rps" "$direct_p99" "$direct_err"
printf '%-22s %12.0f %10.2f %8s\n' "nginx proxy" "$nginx_rps" "$nginx_p99" "$nginx_err"
printf '%-22s %12.0f %10.2f %8s\n' "traverse proxy" "$traverse_rps" "$traverse_p99" "$traverse_err"
printf '%-22s %12.0f %10.2f %8s\n' "traverse traced" "$traced_rps" "$traced_p99" "$traced_err"
python3 -c "print(f'traverse / nginx throughput ratio: {$traverse_rps / $nginx_rps:.2f}')"
python3 -c "print(f'traced / untraced traverse throughput ratio: {$traced_rps / $traverse_rps:.2f}')"
echo "spans: $spans"
