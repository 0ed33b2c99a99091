#!/usr/bin/env bash
# The whole test suite, as run by CI (.ci/run) and by developers: installs what is missing,
# then formatting, lints, unit/integration/doc tests (incl. fuzz corpus replay) and interop.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { ensure_dev_null; printf '\n==> %s\n' "$*"; }

# /dev/null must be the null device: on one CI machine it had become a regular file, so every
# `>/dev/null` appended to it and cargo's `rustc -` probe (stdin = /dev/null) read that garbage as
# code. Checked before every step, recreated when root.
ensure_dev_null() {
  [ -c /dev/null ] && return 0
  echo "warning: /dev/null is not a character device; recreating it" >&2
  if [ "$(id -u)" = 0 ]; then
    rm -f /dev/null && mknod -m 666 /dev/null c 1 3
  else
    echo "error: /dev/null is broken and this is not root; fix it with: sudo mknod -m 666 /dev/null c 1 3" >&2
    exit 1
  fi
}

# Incremental compilation caches roughly double the size of target/ and buy nothing on a clean
# checkout; the workspace's own crates rebuild in seconds without them.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# Free disk where target/ lives, at the start, the end, and on a failure (a full disk shows up as
# odd compiler or linker errors).
disk_report() {
  local dir; dir="$(cargo metadata --format-version 1 --no-deps 2>/dev/null | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
  [ -n "$dir" ] || dir=.
  mkdir -p "$dir"
  printf 'disk: %s free where %s is; target/ uses %s\n' \
    "$(df -h --output=avail "$dir" | tail -1 | tr -d ' ')" "$dir" "$(du -sh "$dir" 2>/dev/null | cut -f1)"
}

step "toolchain"
cargo --version
rustup component add rustfmt clippy >/dev/null 2>&1 || true
disk_report
trap 'rc=$?; [ "$rc" = 0 ] || disk_report >&2' EXIT

step "system packages"
if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
  echo "installing ffmpeg"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq ffmpeg >/dev/null
fi
ffmpeg -version | head -1
# The slow-link tests (hang-cli slow_link, js e2e slow-link) shape a link in a network namespace.
if ! command -v tc >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1; then
  echo "installing iproute2 (network namespaces and tc for the slow-link tests)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq iproute2 >/dev/null
fi
# The relay cluster failure test (rs/moq-relay/tests/relay_cluster_failures.rs) drops a link's
# UDP with nftables in a network namespace.
if ! command -v nft >/dev/null 2>&1; then
  echo "installing nftables (silent link failures in the relay cluster tests)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq nftables >/dev/null
fi

# The GStreamer plugin (rs/hang-gst) builds against Debian's GStreamer 1.22 and its tests run
# real pipelines: encoders (x264, Opus), parsers and decoders (libav), gst-inspect-1.0.
GST_PACKAGES="libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav"
# shellcheck disable=SC2086 # a word list
missing="$(for p in $GST_PACKAGES; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"; done)"
if [ -n "$missing" ]; then
  echo "installing GStreamer: $(echo $missing)"
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
gst-inspect-1.0 --version | sed -n 2p

step "TypeScript workspace (npm ci from the lock file, Chromium)"
scripts/js-setup.sh --browser
chromium --version

step "interop peers (reference relays, cached outside the repo)"
scripts/install-peers.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
log="$(mktemp)"
trap 'rc=$?; rm -f "$log"; [ "$rc" = 0 ] || disk_report >&2' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"

step "TypeScript: tsc, biome, unit tests"
(cd js && npx tsc -p . && npx biome check . && npm test) 2>&1 | tee -a "$log"

step "browser end-to-end (demo site on the real relay, headless Chromium)"
cargo build --locked -p moq-relay -p hang-cli -p hang-gst
MOQ_BIN_DIR="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug"
export MOQ_BIN_DIR
(cd js && npm run --silent build && npm run --silent test:e2e) 2>&1 | tee -a "$log"

step "deployment files (hadolint, kubernetes-validate; offline)"
scripts/validate-deploy.sh

if [ -x scripts/fuzz.sh ]; then
  step "short fuzz run"
  scripts/fuzz.sh
fi

disk_report

# One closing line for CI: the totals of every cargo test binary and node --test run above.
awk '/^test result:/ { p += $4; f += $6; i += $8 }
     /^# pass / { p += $3 } /^# fail / { f += $3 } /^# skipped / { i += $3 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
