#!/usr/bin/env bash
# Installs what a fresh Debian machine with only Rust, cc, Python 3 and git lacks for
# building and testing Traverse. Idempotent: installs only what is missing.
#   scripts/install-prereqs.sh          build prerequisites (cmake), the test collector and
#                                       the metrics parser of the tests
#   scripts/install-prereqs.sh bench    plus the load-test peers (nginx, wrk)
#
# The end-to-end tests check exported telemetry against a real OTLP collector, rotel,
# whose `rotel-agent` binary ships in the `rotel` Python package. It is installed into a
# virtualenv outside the clone and linked at $TRAVERSE_TOOLS/bin/rotel-agent, where the
# tests look for it (default TRAVERSE_TOOLS: ~/.cache/traverse/tools).
# The same virtualenv holds `prometheus_client`, whose parsers the tests use to read the
# gateway's /metrics; its python is reached through $TRAVERSE_TOOLS/bin/traverse-python, a
# wrapper script (a symlink would not do: python finds its virtualenv from the path it
# was started by, so a link outside the virtualenv starts the bare interpreter).
# It also holds kmock, a Kubernetes API-server emulator for the tests of the Kubernetes
# provider: $TRAVERSE_TOOLS/bin/kmock-server is a wrapper that runs the virtualenv's python,
# which the tests start as `kmock-server tests/kmock/server.py PORT` (the script stays in
# the clone, so a wrapper installed from another clone runs this clone's script).
# And it holds helm-python-sdk, the Helm Go library with Python bindings: the chart tests
# lint and render charts/traverse with it through traverse-python (no helm binary needed).
# And grpcio: the gRPC tests run a real gRPC server and client through traverse-python.
set -euo pipefail

tools="${TRAVERSE_TOOLS:-$HOME/.cache/traverse/tools}"
venv="$tools/rotel-venv"
rotel_agent="$tools/bin/rotel-agent"
# Pinned: the tests parse the collector's debug output, whose format may change.
rotel_version="0.0.1a15"
python_wrapper="$tools/bin/traverse-python"
# Pinned: the tests rely on its parsers' strictness and on how they name samples.
prometheus_client_version="0.26.0"
# Validates generated manifests (the CRDs) against Kubernetes' schemas, offline.
kubernetes_validate="$tools/bin/kubernetes-validate"
kubernetes_validate_version="1.37.0"
kmock_server="$tools/bin/kmock-server"
# Pinned: tests/kmock/server.py builds on its emulator's internals (documented there).
kmock_version="0.8"
# Pinned: the chart tests lint and render with the Helm SDK version it embeds (v4).
helm_sdk_version="0.2.2"
# Pinned: the gRPC tests' server and client (generic handlers, no generated code).
grpcio_version="1.85.1"

packages=()
command -v cmake >/dev/null || packages+=(cmake)
if [[ "${1:-}" == "bench" ]]; then
    command -v nginx >/dev/null || packages+=(nginx-light)
    command -v wrk >/dev/null || packages+=(wrk)
fi
installed() { # the version of Python package $1 in the virtualenv, if any
    "$venv/bin/python" -c 'import sys, importlib.metadata as m; print(m.version(sys.argv[1]))' "$1" 2>/dev/null
}
need_rotel=false
[[ -x "$rotel_agent" && "$(installed rotel)" == "$rotel_version" ]] || need_rotel=true
need_prometheus=false
[[ -x "$python_wrapper" && "$(installed prometheus_client)" == "$prometheus_client_version" ]] \
    || need_prometheus=true
need_validate=false
[[ -x "$kubernetes_validate" && "$(installed kubernetes-validate)" == "$kubernetes_validate_version" ]] \
    || need_validate=true
need_kmock=false
[[ -x "$kmock_server" && "$(installed kmock)" == "$kmock_version" ]] || need_kmock=true
need_helm=false
[[ -x "$python_wrapper" && "$(installed helm-python-sdk)" == "$helm_sdk_version" ]] || need_helm=true
need_grpcio=false
[[ -x "$python_wrapper" && "$(installed grpcio)" == "$grpcio_version" ]] || need_grpcio=true
need_venv=false
"$venv/bin/python" -m pip --version >/dev/null 2>&1 || need_venv=true
# Debian's python3 creates virtualenvs only with python3-venv (which brings ensurepip).
if { $need_rotel || $need_prometheus || $need_validate || $need_kmock || $need_helm || $need_grpcio; } && $need_venv \
    && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    packages+=(python3-venv)
fi
if ((${#packages[@]})); then
    echo "installing: ${packages[*]}"
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
fi

if { $need_rotel || $need_prometheus || $need_validate || $need_kmock || $need_helm || $need_grpcio; } && $need_venv; then
    python3 -m venv --clear "$venv"
    # A cleared virtualenv holds none of the packages.
    need_rotel=true
    need_prometheus=true
    need_validate=true
    need_kmock=true
    need_helm=true
    need_grpcio=true
fi

if $need_rotel; then
    echo "installing: rotel $rotel_version (into $venv)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "rotel==$rotel_version"
    agent=$("$venv/bin/python" -c 'import rotel, os; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))')
    [[ -x "$agent" ]] || { echo "the rotel package has no rotel-agent at $agent" >&2; exit 1; }
    mkdir -p "$tools/bin"
    ln -sfn "$agent" "$rotel_agent"
    "$rotel_agent" --version >/dev/null
fi

if $need_prometheus; then
    echo "installing: prometheus_client $prometheus_client_version (into $venv)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "prometheus_client==$prometheus_client_version"
    mkdir -p "$tools/bin"
    # Written beside and then renamed, so that a concurrent reader never sees half of it.
    printf '#!/bin/sh\nexec %q "$@"\n' "$venv/bin/python" >"$python_wrapper.tmp"
    chmod +x "$python_wrapper.tmp"
    mv -f "$python_wrapper.tmp" "$python_wrapper"
    "$python_wrapper" -c 'import prometheus_client.openmetrics.parser'
fi

if $need_validate; then
    echo "installing: kubernetes-validate $kubernetes_validate_version (into $venv)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "kubernetes-validate==$kubernetes_validate_version"
    mkdir -p "$tools/bin"
    printf '#!/bin/sh\nexec %q "$@"\n' "$venv/bin/kubernetes-validate" >"$kubernetes_validate.tmp"
    chmod +x "$kubernetes_validate.tmp"
    mv -f "$kubernetes_validate.tmp" "$kubernetes_validate"
    "$kubernetes_validate" --version >/dev/null
fi

if $need_kmock; then
    echo "installing: kmock $kmock_version (into $venv)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "kmock==$kmock_version"
    mkdir -p "$tools/bin"
    printf '#!/bin/sh\nexec %q "$@"\n' "$venv/bin/python" >"$kmock_server.tmp"
    chmod +x "$kmock_server.tmp"
    mv -f "$kmock_server.tmp" "$kmock_server"
    "$kmock_server" -c 'import kmock'
fi

if $need_helm; then
    echo "installing: helm-python-sdk $helm_sdk_version (into $venv)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "helm-python-sdk==$helm_sdk_version"
    mkdir -p "$tools/bin"
    # The chart tests run it through the virtualenv's python (the traverse-python wrapper).
    if [[ ! -x "$python_wrapper" ]]; then
        printf '#!/bin/sh\nexec %q "$@"\n' "$venv/bin/python" >"$python_wrapper.tmp"
        chmod +x "$python_wrapper.tmp"
        mv -f "$python_wrapper.tmp" "$python_wrapper"
    fi
    "$python_wrapper" -c 'import helm_python'
fi

if $need_grpcio; then
    echo "installing: grpcio $grpcio_version (into $venv)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "grpcio==$grpcio_version"
    mkdir -p "$tools/bin"
    if [[ ! -x "$python_wrapper" ]]; then
        printf '#!/bin/sh\nexec %q "$@"\n' "$venv/bin/python" >"$python_wrapper.tmp"
        chmod +x "$python_wrapper.tmp"
        mv -f "$python_wrapper.tmp" "$python_wrapper"
    fi
    "$python_wrapper" -c 'import grpc'
fi
