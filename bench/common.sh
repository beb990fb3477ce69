# Shared by the load scripts (sourced, not run): the build, the work directory and its
# processes, and the pieces every side-by-side run uses. Each script sets DURATION,
# CONNECTIONS and THREADS before sourcing it.

scripts/install-prereqs.sh bench
cargo build --release --locked -p traverse >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
traverse="$target_dir/release/traverse"

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# On 16 or more cores each role runs on its own cores, as measured on a lent many-core
# machine; on fewer, everything shares them (a smoke pass: compare ratios only).
declare -A cores=([upstream]=0-3 [proxy]=4-7 [collector]=10 [load]=11-15)
if (( $(nproc) >= 16 )); then WRK_THREADS=${WRK_THREADS:-5}; else WRK_THREADS=${WRK_THREADS:-2}; fi
# Always called in the background (`&`) or in `$(…)`: it execs, so `$!` is the process
# itself (which cleanup kills) and not a subshell that would leave it running.
pinned() { # $1 = role, then the command
    local role=$1; shift
    if (( $(nproc) >= 16 )); then exec taskset -c "${cores[$role]}" "$@"; else exec "$@"; fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

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
    local role=proxy
    if [[ $1 == upstream ]]; then role=upstream; fi
    pinned "$role" nginx -p "$work/$1" -c "$work/$1/nginx.conf" -g 'daemon off;' &
    pids+=($!)
}

# A real collector that discards what it receives; sets otlp_http_port.
start_blackhole_collector() {
    otlp_http_port=$(free_port); local grpc_port; grpc_port=$(free_port)
    pinned collector "${TRAVERSE_TOOLS:-$HOME/.cache/traverse/tools}/bin/rotel-agent" start \
        --otlp-grpc-endpoint "127.0.0.1:$grpc_port" --otlp-http-endpoint "127.0.0.1:$otlp_http_port" \
        --exporter blackhole >"$work/rotel.log" 2>&1 &
    pids+=($!)
    wait_port "$otlp_http_port"
}

curl_ok() { python3 -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:$1/').read()==b'ok' else 1)"; }
admin_get() { python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$1$2').read().decode())"; }

# Prints "requests_per_second p99_ms non_2xx requests socket_errors".
load() {
    local out
    out=$(pinned load wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "http://127.0.0.1:$1/")
    local rps p99 errors requests socket
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" { v=$2; if (v ~ /us$/) { sub(/us$/,"",v); v/=1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) } else if (v ~ /s$/) { sub(/s$/,"",v); v*=1000 } print v }' <<<"$out")
    errors=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")
    requests=$(awk '/ requests in / {print $1}' <<<"$out")
    socket=$(awk '/Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' <<<"$out")
    echo "$rps $p99 ${errors:-0} $requests ${socket:-0}"
}
median() { tr ' ' '\n' <<<"$1" | sort -g | awk 'NF {v[n++] = $1} END {print n % 2 ? v[int(n/2)] : (v[n/2-1] + v[n/2]) / 2}'; }

# A Traverse configuration in directory $1: entrypoint `web` on port $2, admin on $3,
# $4 worker threads, extra configuration $5, and one route to the nginx upstream on
# $upstream_port.
traverse_config() {
    mkdir -p "$1/manifests"
    cat > "$1/traverse.yaml" <<CONF
entryPoints:
  web: {address: "127.0.0.1:$2"}
admin: {address: "127.0.0.1:$3"}
providers: {file: {directory: manifests, watch: false}}
server: {threads: $4}
$5
CONF
    cat > "$1/manifests/app.yaml" <<CONF
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
      middlewares: [${6:-}]
      services: [{name: app, port: http}]
CONF
    if [[ -n ${7:-} ]]; then printf '%s\n' "$7" >"$1/manifests/middlewares.yaml"; fi
}
