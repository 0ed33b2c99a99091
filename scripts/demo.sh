#!/usr/bin/env bash
# The demo in one command: builds the relay, the hang CLI and the web app, then starts
#   - moq-relay on port 8080 (UDP: QUIC/WebTransport, TCP: the web app + certificate fingerprint),
#   - `hang publish --test-pattern` as anon/pattern.hang (H.264 + Opus, burnt-in clock),
# and prints the URL to open. Ctrl-C stops everything.
#
#   scripts/demo.sh            # then open http://localhost:8080
#   PORT=9000 scripts/demo.sh  # another port (UDP and TCP)
set -euo pipefail
cd "$(dirname "$0")/.."
port="${PORT:-8080}"

step() { printf '\n==> %s\n' "$*"; }

step "web app (npm ci, esbuild)"
scripts/js-setup.sh
(cd js && npm run --silent build)

step "relay and hang CLI (cargo build)"
cargo build --locked -p moq-relay -p hang-cli
target="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug"

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

step "starting the relay on :$port"
"$target/moq-relay" dev/demo.toml --listen "[::]:$port" --web-http-listen "[::]:$port" &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$port/health" >/dev/null || { echo "relay did not start" >&2; exit 1; }

step "publishing the test pattern as anon/pattern.hang"
"$target/hang" publish --url "http://localhost:$port/anon" --name pattern.hang --test-pattern &
pids+=($!)

cat <<MSG

  Demo running. Open  http://localhost:$port
    watch:   http://localhost:$port/?path=pattern.hang
    publish: http://localhost:$port/publish
    room:    http://localhost:$port/room
  Ctrl-C to stop.

MSG
wait -n "${pids[@]}"
