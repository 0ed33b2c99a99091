#!/usr/bin/env bash
# A short fuzz run of every target of every crate with a fuzz/ directory (moq-lite, moq-native;
# stable Rust, no sanitizer): FUZZ_SECONDS each (default 5). New inputs go to a temporary
# directory, so the committed corpus (replayed by `cargo test`) stays small; a crash leaves its
# input in rs/<crate>/fuzz/artifacts/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")/../rs"
seconds="${FUZZ_SECONDS:-5}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for crate in moq-lite moq-native; do
  for target in $(cd "$crate" && cargo fuzz list); do
    mkdir -p "$work/$target"
    printf '%-24s ' "$crate/$target"
    if ! (cd "$crate" && cargo fuzz run -s none "$target" "$work/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1) >"$work/$target.log" 2>&1; then
      tail -40 "$work/$target.log"
      echo "fuzz target $crate/$target failed"
      exit 1
    fi
    grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$target.log" | awk '{print $2 " runs, no crash"}'
  done
done
