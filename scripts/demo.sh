#!/usr/bin/env bash
# The multicluster demo (examples/multicluster): a parent gateway and two child gateways
# in other clusters, a sample app behind each child and an OTLP receiver, all on this
# machine. Requests go through the parent (two while child-a is stopped, to show the
# failover) and each request's trace prints as a waterfall across the clusters.
#   scripts/demo.sh           keeps running; your own requests' traces print too; Ctrl-C stops everything
#   scripts/demo.sh --once    exits after printing; non-zero if a request or trace was not as expected
# Arguments go to `traverse demo` (e.g. --examples DIR, a changed copy of the example).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-prereqs.sh
cargo build --release --locked -p traverse
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
exec "$target_dir/release/traverse" demo "$@"
