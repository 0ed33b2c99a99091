#!/usr/bin/env bash
# The whole test suite, as run by CI (.ci/run) and by developers: installs what is missing,
# then formatting, lints, unit/integration/doc tests (incl. fuzz corpus replay) and interop.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
cargo --version
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "interop peers (reference relays, cached outside the repo)"
scripts/install-peers.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

if [ -x scripts/fuzz.sh ]; then
  step "short fuzz run"
  scripts/fuzz.sh
fi
