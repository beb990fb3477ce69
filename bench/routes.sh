#!/usr/bin/env bash
# Route scale: N IngressRoutes (two routes each: a Host + PathPrefix-or-Header rule and a
# Host + PathRegexp rule) loaded by the file provider, one Traverse per size. Reports the
# time to ready, a full rebuild (`traverse validate`), the time from one changed object
# to it serving (minus the debounce), the same for a Service one IngressRoute names, RSS
# once loaded and after RELOADS reloads, how many publishes a burst of BURST changes
# caused, and match throughput (wrk -t1 -c32).
#
#   bench/routes.sh                              N = 10, 1000, 10000; one shared regex
#   SIZES="10000 50000" MIX=distinct bench/routes.sh    a distinct regex per host
#   TRAVERSE_BIN=path/to/traverse bench/routes.sh      measure a given build
#   PROVIDER=kubernetes bench/routes.sh          the Kubernetes provider on the emulator
#                                                (bench/routes_k8s.py)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z ${TRAVERSE_BIN:-} ]]; then
    cargo build --release --locked -p traverse >&2
    target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    TRAVERSE_BIN="$target_dir/release/traverse"
fi
export TRAVERSE_BIN

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

UPSTREAM_PORT=$(free_port)
export UPSTREAM_PORT
mkdir -p "$work/upstream"
cat > "$work/upstream/nginx.conf" <<CONF
worker_processes 1;
pid $work/upstream/nginx.pid;
error_log $work/upstream/error.log warn;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:$UPSTREAM_PORT; location / { return 200 'ok'; } } }
CONF
nginx -p "$work/upstream" -c "$work/upstream/nginx.conf" -g 'daemon off;' &
pids+=($!)
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$UPSTREAM_PORT") 2>/dev/null && break; sleep 0.1; done

if [[ ${PROVIDER:-file} == kubernetes ]]; then
    python3 bench/routes_k8s.py
else
    python3 bench/routes.py
fi
