#!/usr/bin/env bash
# Installs what a fresh Debian machine with only Rust, cc, Python 3 and git lacks for
# building and testing Traverse. Idempotent: installs only what is missing.
#   scripts/install-prereqs.sh          build prerequisites (cmake)
#   scripts/install-prereqs.sh bench    plus the load-test peers (nginx, wrk)
set -euo pipefail

packages=()
command -v cmake >/dev/null || packages+=(cmake)
if [[ "${1:-}" == "bench" ]]; then
    command -v nginx >/dev/null || packages+=(nginx-light)
    command -v wrk >/dev/null || packages+=(wrk)
fi
if ((${#packages[@]})); then
    echo "installing: ${packages[*]}"
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
fi
