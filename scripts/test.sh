#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test
# (unit, table, and end-to-end tests that start the real binary).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-prereqs.sh
# Build the binary first: the end-to-end tests start it.
cargo build --workspace --locked
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked "$@" 2>&1 | tee "$log"
# A short fuzz pass over the parsers (skipped, saying so, without a nightly toolchain).
scripts/fuzz.sh
# One closing line over every test binary (cargo prints one line per binary).
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
