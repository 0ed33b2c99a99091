#!/usr/bin/env bash
# The whole test suite, as run by CI (.ci/run) and by developers: installs what is missing,
# then formatting, lints, unit/integration/doc tests (incl. fuzz corpus replay) and interop.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
cargo --version
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "system packages"
if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
  echo "installing ffmpeg"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq ffmpeg >/dev/null
fi
ffmpeg -version | head -1

step "interop peers (reference relays, cached outside the repo)"
scripts/install-peers.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"

if [ -x scripts/fuzz.sh ]; then
  step "short fuzz run"
  scripts/fuzz.sh
fi

# One closing line for CI: the totals of every cargo test binary above.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
