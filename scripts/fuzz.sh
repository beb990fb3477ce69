#!/usr/bin/env bash
# A bounded fuzz pass: every target in fuzz/ runs for FUZZ_SECONDS (default 15) under
# libFuzzer, seeded from the committed corpus in fuzz/corpus/. A crash fails the pass and
# leaves the input under fuzz/artifacts/<target>/: add it to the corpus with the fix, so
# that the replay test (crates/traverse-fuzz, run by every `cargo test`) keeps it fixed.
#
#   scripts/fuzz.sh                   every target, 15 s each
#   FUZZ_SECONDS=300 scripts/fuzz.sh rule manifest
#
# cargo fuzz needs a nightly toolchain; without one this says so and exits 0 (the corpus
# replay test still runs on stable).
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-15}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(rule trace_context config manifest)

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: skipped, no nightly toolchain here (cargo fuzz needs one); the corpus replay test ran instead"
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install --locked --quiet cargo-fuzz
fi

# Beside the main build, so a clean clone reuses a cache the same way CI does.
target_dir="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
for target in "${targets[@]}"; do
  # New inputs go to a scratch directory; the committed corpus is only read.
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  echo "fuzz: $target for ${FUZZ_SECONDS}s" >&2
  log="$scratch.log"
  status=0
  cargo +nightly fuzz run --sanitizer none --target-dir "$target_dir" "$target" \
    "$scratch" "fuzz/corpus/$target" -- \
    -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  grep -E '^Done [0-9]+ runs|^stat::(new_units_added|peak_rss_mb)|^SUMMARY|panicked' "$log" |
    sed "s/^/fuzz: $target: /" || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$log" >&2
    echo "fuzz: $target failed; the input is under fuzz/artifacts/$target/" >&2
    exit 1
  fi
  rm -f "$log"
  rm -rf "$scratch"
done
echo "fuzz: ${#targets[@]} targets, ${FUZZ_SECONDS}s each, no failure"
