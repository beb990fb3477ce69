#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test
# (unit, table, and end-to-end tests that start the real binary).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-prereqs.sh
# Build the binary first: the end-to-end tests start it.
cargo build --workspace --locked
cargo test --workspace --locked "$@"
