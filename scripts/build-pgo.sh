#!/usr/bin/env bash
# Build moq-relay with profile-guided optimisation (PGO): the release build (fat LTO, one codegen
# unit) plus a profile of the relay's own hot paths, taken while moq-bench loads it on loopback.
#
#   scripts/build-pgo.sh              # ~10-15 min on 2 cores; prints the binary's path at the end
#   OUT=/opt/moq scripts/build-pgo.sh # copy the binary there as well
#   scripts/build-pgo.sh --reference 0.10.25   # the public reference relay from crates.io, built
#                                     # and trained the same way (lite-02 loads only: what it speaks),
#                                     # for a like-for-like comparison (bench-relays.sh ref-0.10.25-pgo)
#
# Steps: build an instrumented relay (target/pgo/gen), run the training loads below against it
# (WebTransport at lite-02 and lite-05, raw QUIC at lite-05; video, audio, chat and announce
# churn), merge the profile (target/pgo/moq-relay.profdata), build the relay again with it
# (target/pgo/use), then check the result carries a short load with no loss.
#
# Why: in docs/performance.md the PGO build delivers more per relay CPU-second than the plain
# release build (the branchy per-packet code in quinn and the session tasks gains most). Code the
# training never runs is laid out as cold, so the loads cover every protocol path a deployment uses.
# Needs rustup's llvm-tools (installed here when missing) for `llvm-profdata`.
set -euo pipefail
cd "$(dirname "$0")/.."

host="$(rustc -vV | sed -n 's/^host: //p')"
sysroot="$(rustc --print sysroot)"
profdata="$sysroot/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata" ]; then
  echo "build-pgo: installing rustup's llvm-tools (for llvm-profdata)" >&2
  rustup component add llvm-tools
fi

reference=""
if [ "${1:-}" = --reference ]; then
  reference="${2:?--reference VERSION, e.g. 0.10.25}"
fi

pgo="$PWD/target/pgo"
[ -n "$reference" ] && pgo="$PWD/target/pgo/ref-$reference"
raw="$pgo/raw"
rm -rf "$raw"
mkdir -p "$raw"

# `--target` keeps RUSTFLAGS off build scripts and proc macros (they would write profiles too).
echo "build-pgo: 1/4 instrumented build" >&2
# build_relay DIR RUSTFLAGS: our relay, or the reference from crates.io; prints the binary's path.
build_relay() {
  if [ -n "$reference" ]; then
    CARGO_TARGET_DIR="$1/target" RUSTFLAGS="$2" \
      cargo install "moq-relay@$reference" --locked --root "$1" --target "$host" >&2
    echo "$1/bin/moq-relay"
  else
    CARGO_TARGET_DIR="$1" RUSTFLAGS="$2" cargo build --release --locked -p moq-relay --target "$host" >&2
    echo "$1/$host/release/moq-relay"
  fi
}
gen="$(build_relay "$pgo/gen" "-Cprofile-generate=$raw")"
cargo build --release --locked -p moq-bench
bench="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release/moq-bench"

relay_pid=""
stop_relay() {
  if [ -n "$relay_pid" ]; then
    # SIGINT: both relays end through their normal shutdown on it, which is when an
    # instrumented binary writes its profile.
    kill -INT "$relay_pid" 2>/dev/null || true
    wait "$relay_pid" 2>/dev/null || true
    relay_pid=""
  fi
}
trap stop_relay EXIT

# load BIN URL_SCHEME VERSION PRESET SUBSCRIBERS SECONDS: one relay, one moq-bench run.
load() {
  local bin="$1" scheme="$2" version="$3" preset="$4" n="$5" secs="$6"
  local port=$((20000 + RANDOM % 20000))
  if [ -n "$reference" ]; then
    "$bin" --server-bind "127.0.0.1:$port" --tls-generate localhost --auth-public '' \
      --web-http-listen "127.0.0.1:$port" >/dev/null 2>&1 &
  else
    "$bin" --listen "127.0.0.1:$port" --tls-generate localhost --auth-public '' \
      --web-http-listen "127.0.0.1:$port" --log-level warn --shutdown-timeout 1s &
  fi
  relay_pid=$!
  local url
  case "$scheme" in
    webtransport) url="http://127.0.0.1:$port/anon" ;;
    quic) url="moql://127.0.0.1:$port/anon" ;;
  esac
  local extra=()
  [ "$scheme" = quic ] && extra=(--tls-disable-verify)
  # Wait for the relay's HTTP listener (it serves the certificate fingerprint).
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/certificate.sha256" >/dev/null 2>&1 && break
    sleep 0.1
  done
  local summary
  summary="$(RUST_LOG=error "$bench" --url "$url" --version "$version" --preset "$preset" \
    --subscribers "$n" --duration "$secs" --relay-pid "$relay_pid" --json "${extra[@]}" | tail -1)"
  stop_relay
  python3 - "$scheme $version $preset x$n" "$summary" <<'PY'
import json, sys
d = json.loads(sys.argv[2])
print(f"build-pgo:   {sys.argv[1]:34} {d['delivered_mbps']:8.1f} Mbps  loss {d['loss_pct']:.3f} %", file=sys.stderr)
# A lossy run stops the build: a profile of a relay falling behind trains the drop paths, not the
# fan-out, and a lossy check means the optimised binary is not fit to ship.
if d["loss_pct"] > 0.1:
    sys.exit(f"build-pgo: {sys.argv[1]}: {d['loss_pct']} % loss")
PY
}

echo "build-pgo: 2/4 training loads" >&2
if [ -n "$reference" ]; then
  # What the reference speaks (lite-02 here); the instrumented build loses frames at 300 SD viewers.
  load "$gen" webtransport moq-lite-02 sd 200 12
  load "$gen" webtransport moq-lite-02 chat 500 12
  load "$gen" webtransport moq-lite-02 audio 200 6
else
  load "$gen" webtransport moq-lite-02 sd 300 12
  load "$gen" webtransport moq-lite-02 chat 500 12
  load "$gen" webtransport moq-lite-05 sd 300 8
  load "$gen" webtransport moq-lite-05 chat 500 8
  load "$gen" webtransport moq-lite-05 audio 200 6
  load "$gen" webtransport moq-lite-05 churn 20 6
  load "$gen" quic moq-lite-05 sd 100 6
  load "$gen" quic moq-lite-05 chat 200 6
fi

echo "build-pgo: 3/4 merge, optimised build" >&2
"$profdata" merge -o "$pgo/moq-relay.profdata" "$raw"/*.profraw
out_bin="$(build_relay "$pgo/use" "-Cprofile-use=$pgo/moq-relay.profdata")"

echo "build-pgo: 4/4 check" >&2
load "$out_bin" webtransport moq-lite-02 sd 50 3

if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  cp "$out_bin" "$OUT/moq-relay"
  out_bin="$OUT/moq-relay"
fi
echo "$out_bin"
