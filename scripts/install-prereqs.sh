#!/usr/bin/env bash
# Installs what a fresh Debian machine with only Rust, cc, Python 3 and git lacks for
# building and testing Traverse. Idempotent: installs only what is missing.
#   scripts/install-prereqs.sh          build prerequisites (cmake) and the test collector
#   scripts/install-prereqs.sh bench    plus the load-test peers (nginx, wrk)
#
# The end-to-end tests check exported telemetry against a real OTLP collector, rotel,
# whose `rotel-agent` binary ships in the `rotel` Python package. It is installed into a
# virtualenv outside the clone and linked at $TRAVERSE_TOOLS/bin/rotel-agent, where the
# tests look for it (default TRAVERSE_TOOLS: ~/.cache/traverse/tools).
set -euo pipefail

tools="${TRAVERSE_TOOLS:-$HOME/.cache/traverse/tools}"
venv="$tools/rotel-venv"
rotel_agent="$tools/bin/rotel-agent"
# Pinned: the tests parse the collector's debug output, whose format may change.
rotel_version="0.0.1a15"

packages=()
command -v cmake >/dev/null || packages+=(cmake)
if [[ "${1:-}" == "bench" ]]; then
    command -v nginx >/dev/null || packages+=(nginx-light)
    command -v wrk >/dev/null || packages+=(wrk)
fi
installed_rotel() {
    "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("rotel"))' 2>/dev/null
}
need_rotel=false
[[ -x "$rotel_agent" && "$(installed_rotel)" == "$rotel_version" ]] || need_rotel=true
# Debian's python3 creates virtualenvs only with python3-venv (which brings ensurepip).
if $need_rotel && ! "$venv/bin/python" -m pip --version >/dev/null 2>&1 \
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

if $need_rotel; then
    echo "installing: rotel $rotel_version (into $venv)"
    if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
        python3 -m venv --clear "$venv"
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "rotel==$rotel_version"
    agent=$("$venv/bin/python" -c 'import rotel, os; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))')
    [[ -x "$agent" ]] || { echo "the rotel package has no rotel-agent at $agent" >&2; exit 1; }
    mkdir -p "$tools/bin"
    ln -sfn "$agent" "$rotel_agent"
    "$rotel_agent" --version >/dev/null
fi
