#!/usr/bin/env bash
# Runs the gateway on examples/standalone with its sample upstream.
# Then try:  curl -H 'Host: whoami.localhost' localhost:8080/   and   curl localhost:9000/api/routes
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-prereqs.sh
cargo build --release --locked -p traverse
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

python3 examples/standalone/upstream.py 9001 whoami &
upstream=$!
trap 'kill $upstream 2>/dev/null || true' EXIT
echo "gateway on http://127.0.0.1:8080 (admin on 127.0.0.1:9000)"
"$target_dir/release/traverse" run --config examples/standalone/traverse.yaml
