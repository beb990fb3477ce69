#!/usr/bin/env bash
# The cost of the uplink hop, side by side on loopback in one run: the same nginx upstream
# answering "ok", reached through one and through two proxies of each kind:
#   nginx                  wrk -> nginx proxy -> upstream
#   nginx -> nginx         wrk -> nginx proxy -> nginx proxy -> upstream
#   child direct           wrk -> a child's uplink entrypoint -> upstream (one Traverse hop)
#   parent -> child        wrk -> parent -> child -> upstream: the parent's route names the
#                          Uplink apps/whoami (`apps-whoami@multicluster`), the child serves it
#   parent -> child, traced  the same with both gateways tracing 100 % over OTLP/HTTP to a
#                          rotel collector that discards what it receives (TRACED=0: left out)
# Every Traverse gateway has the default configuration (metrics on, Prometheus at /metrics);
# each row has its own processes. Absolute numbers move between machines and runs; compare
# the ratios.
#
#   bench/uplink.sh                    defaults: 5 s per run, 64 connections, 1 proxy thread
#   THREADS=2 ROUNDS=5 bench/uplink.sh medians of 5 rounds, in rotating order
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}       # worker threads of each proxy (nginx workers, Traverse threads)
ROUNDS=${ROUNDS:-1}         # load every row but "upstream direct" this many times, rotating; medians
TRACED=${TRACED:-1}         # 0: leave out the traced row (and the collector)

# shellcheck source=bench/common.sh
source bench/common.sh

variants=(nginx nginx2 child parent)
if [[ $TRACED != 0 ]]; then variants+=(traced); fi
declare -A label port admin child_admin
label[direct]="upstream direct"
label[nginx]="nginx";                  label[nginx2]="nginx -> nginx"
label[child]="child direct";           label[parent]="parent -> child"
label[traced]="parent -> child, traced"

upstream_port=$(free_port); port[nginx]=$(free_port); port[nginx2]=$(free_port); nginx_back_port=$(free_port)

nginx_proxy() { # $1 = name, $2 = listen port, $3 = port proxied to (with keep-alive)
    nginx_conf "$1" "$THREADS" "upstream next { server 127.0.0.1:$3; keepalive 128; }
    server { listen 127.0.0.1:$2; location / { proxy_pass http://next; proxy_http_version 1.1; proxy_set_header Connection ''; } }"
}

nginx_conf upstream 1 "server { listen 127.0.0.1:$upstream_port; location / { return 200 'ok'; } }"
nginx_proxy nginx "${port[nginx]}" "$upstream_port"
nginx_proxy nginx-front "${port[nginx2]}" "$nginx_back_port"
nginx_proxy nginx-back "$nginx_back_port" "$upstream_port"

if [[ $TRACED != 0 ]]; then # a real collector that discards what it receives
    start_blackhole_collector
    tracing_conf() { # $1 = service name
        echo "tracing: {serviceName: $1, sampleRate: 1.0, otlp: {http: {endpoint: \"http://127.0.0.1:$otlp_http_port/v1/traces\"}}}"
    }
fi

start_child() { # $1 = directory, $2 = uplink port, $3 = admin port, $4 = extra configuration
    local dir="$work/$1"
    mkdir -p "$dir/manifests"
    cat > "$dir/traverse.yaml" <<CONF
role: child
cluster: {name: eu-west}
entryPoints:
  multicluster: {address: "127.0.0.1:$2", uplink: true}
admin: {address: "127.0.0.1:$3"}
providers: {file: {directory: manifests, watch: false}}
server: {threads: $THREADS}
$4
CONF
    cat > "$dir/manifests/app.yaml" <<CONF
apiVersion: v1
kind: Service
metadata: {name: app, namespace: apps}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: app, namespace: apps, labels: {kubernetes.io/service-name: app}}
addressType: IPv4
ports: [{name: http, port: $upstream_port}]
endpoints: [{addresses: [127.0.0.1]}]
---
apiVersion: traverse.dev/v1alpha1
kind: Uplink
metadata: {name: whoami, namespace: apps}
spec: {entryPoints: [multicluster]}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: whoami
  namespace: apps
  annotations: {traverse.dev/uplinks: whoami}
spec:
  entryPoints: [multicluster]
  routes:
    - match: PathPrefix(\`/\`)
      services: [{name: app, port: http}]
CONF
    RUST_LOG=warn "$traverse" run --config "$dir/traverse.yaml" 2>"$dir/stderr" &
    pids+=($!)
}

start_parent() { # $1 = variant: a parent on port[$1] and its own child; $2, $3 = extra configuration of parent, child
    local v=$1 dir="$work/$1" child_port
    child_port=$(free_port); child_admin[$v]=$(free_port)
    start_child "$v-child" "$child_port" "${child_admin[$v]}" "${3:-}"
    port[$v]=$(free_port); admin[$v]=$(free_port)
    mkdir -p "$dir/manifests"
    cat > "$dir/traverse.yaml" <<CONF
role: parent
cluster: {name: edge}
entryPoints:
  web: {address: "127.0.0.1:${port[$v]}"}
admin: {address: "127.0.0.1:${admin[$v]}"}
providers: {file: {directory: manifests, watch: false}}
server: {threads: $THREADS}
multicluster:
  children:
    child-a: {address: "127.0.0.1:$child_port"}
$2
CONF
    cat > "$dir/manifests/route.yaml" <<CONF
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: whoami, namespace: apps}
spec:
  entryPoints: [web]
  routes:
    - match: PathPrefix(\`/\`)
      services: [{name: apps-whoami@multicluster, kind: TraefikService}]
CONF
    RUST_LOG=warn "$traverse" run --config "$dir/traverse.yaml" 2>"$dir/stderr" &
    pids+=($!)
}

# child direct: wrk loads the child itself; its admin is the one to count on.
port[child]=$(free_port); child_admin[child]=$(free_port)
start_child child "${port[child]}" "${child_admin[child]}" ""
start_parent parent "" ""
if [[ $TRACED != 0 ]]; then start_parent traced "$(tracing_conf traverse-parent)" "$(tracing_conf traverse-child)"; fi

wait_available() { # $1 = parent variant: its child advertises the Uplink and takes requests
    for _ in $(seq 150); do
        if admin_get "${admin[$1]}" /api/multicluster 2>/dev/null \
            | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["children"][0]["available"] is True else 1)'; then
            return 0
        fi
        sleep 0.1
    done
    echo "${label[$1]}: the parent's child never became available" >&2; exit 1
}
wait_port "$upstream_port"
for v in "${variants[@]}"; do
    wait_port "${port[$v]}"
    if [[ $v == parent || $v == traced ]]; then wait_port "${admin[$v]}"; wait_available "$v"; fi
    curl_ok "${port[$v]}"
done


echo "wrk -t2 -c$CONNECTIONS -d${DURATION}s, proxies with $THREADS worker thread(s), $(nproc) cores shared by everything"
declare -A rps p99 err reqs sockerr # per target: space-separated values, one per round
add() { # $1 = target, $2 = port: one load, appended to the target's values
    local r p e n s
    read -r r p e n s < <(load "$2")
    rps[$1]+=" $r"; p99[$1]+=" $p"; err[$1]=$(( ${err[$1]:-0} + e )); reqs[$1]=$(( ${reqs[$1]:-0} + n ))
    sockerr[$1]=$(( ${sockerr[$1]:-0} + s ))
}

add direct "$upstream_port"
for ((round = 0; round < ROUNDS; round++)); do # each round starts one row later
    for ((i = 0; i < ${#variants[@]}; i++)); do
        v=${variants[(i + round) % ${#variants[@]}]}
        add "$v" "${port[$v]}"
        sleep 2 # let span batches leave before the next load
    done
done

checks=() failed=0
check() { # $1 = condition (0 or 1), $2 = text
    if (( $1 )); then checks+=("ok    $2"); else checks+=("FAIL  $2"); failed=1; fi
}
entrypoint_count() { # $1 = admin port, $2 = entrypoint
    admin_get "$1" /metrics | awk -v ep="entrypoint=\"$2\"" '/^traverse_entrypoint_requests_total\{/ && index($0, ep) {n += $NF} END {printf "%d", n}'
}
for t in direct "${variants[@]}"; do
    check $(( err[$t] == 0 && sockerr[$t] == 0 )) "${label[$t]}: ${reqs[$t]} requests, ${err[$t]} non-2xx, ${sockerr[$t]} socket errors"
done
for v in child parent traced; do
    [[ " ${variants[*]} " == *" $v "* ]] || continue
    counted=$(entrypoint_count "${child_admin[$v]}" multicluster)
    check $(( counted >= reqs[$v] )) "${label[$v]}: child traverse_entrypoint_requests_total $counted vs wrk ${reqs[$v]} requests ($(( counted - reqs[$v] )) more)"
    if [[ $v != child ]]; then
        counted=$(entrypoint_count "${admin[$v]}" web)
        check $(( counted >= reqs[$v] )) "${label[$v]}: parent traverse_entrypoint_requests_total $counted vs wrk ${reqs[$v]} requests ($(( counted - reqs[$v] )) more)"
    fi
    if [[ $v == traced ]]; then
        for side in parent child; do
            if [[ $side == parent ]]; then a=${admin[$v]}; else a=${child_admin[$v]}; fi
            checks+=("      ${label[$v]}: $side spans $(admin_get "$a" /api/telemetry | python3 -c 'import json,sys; s=json.load(sys.stdin)["traces"]["spans"]; print("exported %d, dropped %d, failed %d" % (s["exported"], s["dropped"], s["failed"]))')")
        done
    fi
done

if (( ROUNDS > 1 )); then echo "all rows but 'upstream direct': median of $ROUNDS rounds"; fi
printf '%-24s %12s %10s %8s\n' target "req/s" "p99 ms" "non-2xx"
for t in direct "${variants[@]}"; do
    printf '%-24s %12.0f %10.2f %8s\n' "${label[$t]}" "$(median "${rps[$t]}")" "$(median "${p99[$t]}")" "${err[$t]}"
done
ratio() { python3 -c "print(f'{$(median "${rps[$1]}") / $(median "${rps[$2]}"):.2f}')"; }
echo "throughput ratios:"
echo "  parent -> child / child direct:    $(ratio parent child)   (Traverse's second hop)"
echo "  nginx -> nginx / nginx:            $(ratio nginx2 nginx)   (nginx's second hop)"
echo "  parent -> child / nginx -> nginx:  $(ratio parent nginx2)"
echo "  child direct / nginx:              $(ratio child nginx)"
if [[ $TRACED != 0 ]]; then echo "  traced / parent -> child:          $(ratio traced parent)"; fi
printf '%s\n' "${checks[@]}"
echo "('more' is expected up to $ROUNDS x $CONNECTIONS + 1: responses wrk stopped waiting for, and the warm-up request)"
exit "$failed"
