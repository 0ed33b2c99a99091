#!/usr/bin/env bash
# Reproduce docs/performance.md: our relay against the public reference relays 0.10.25 and 0.17.10
# (scripts/install-peers.sh caches them), interleaved rounds, relay pinned to CPU 0 and moq-bench to
# CPU 1, release builds. Prints one line per run and writes JSON summaries to $OUT (default
# target/bench-relays/).
#
#   scripts/bench-relays.sh                  # all workloads, 3 rounds
#   ROUNDS=5 WORKLOADS="sd500" scripts/bench-relays.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-3}"
workloads="${WORKLOADS:-sd500 chat1000 idle500}"
peers="${MOQ_PEERS_DIR:-$HOME/.cache/moq-interop}"
out="${OUT:-target/bench-relays}"
mkdir -p "$out"

cargo build --release --locked -p moq-relay -p moq-bench
bin="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release"

declare -A relay=(
  [ours]="$bin/moq-relay --listen 127.0.0.1:{port} --tls-generate localhost --auth-public '' --web-http-listen 127.0.0.1:{port} --log-level warn"
  [ref-0.10.25]="$peers/relay-0.10.25/bin/moq-relay --server-bind 127.0.0.1:{port} --tls-generate localhost --auth-public '' --web-http-listen 127.0.0.1:{port}"
  [ref-0.17.10]="$peers/relay-0.17.10/bin/moq-relay --listen 127.0.0.1:{port} --listen-tls-generate localhost --auth-public '**' --web-http-listen 127.0.0.1:{port}"
)

presets="$out/presets.toml"
cat > "$presets" <<'TOML'
[[preset]]
name = "idle"
description = "one 100-byte message a second: connected viewers, next to no traffic (memory per viewer)"
fps = 1
frame_bytes = 100
frames_per_group = 1
TOML

# run NAME WORKLOAD ROUND: one relay, one load run.
run() {
  local name="$1" workload="$2" round="$3" n preset version=moq-lite-02
  case "$workload" in
    sd500) n=500 preset=sd ;;
    chat1000) n=1000 preset=chat ;;
    idle500) n=500 preset=idle ;;
    *) echo "unknown workload $workload" >&2; return 1 ;;
  esac
  # 0.17.10 speaks lite-05 too; at lite-02 and lite-05 alike it fell over at 500 SD viewers here.
  local port=$((20000 + RANDOM % 20000))
  local cmd="${relay[$name]//\{port\}/$port}"
  bash -c "exec taskset -c 0 $cmd" >"$out/$name-$workload-$round.log" 2>&1 &
  local pid=$!
  sleep 1.5
  RUST_LOG=error taskset -c 1 "$bin/moq-bench" --url "http://127.0.0.1:$port/anon" --preset "$preset" \
    --preset-file "$presets" --subscribers "$n" --duration 10 --relay-pid "$pid" --version "$version" --json \
    2>/dev/null | tail -1 >"$out/$name-$workload-$round.json" || true
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  python3 - "$out/$name-$workload-$round.json" "$name" "$workload" "$round" <<'PY'
import json, sys
path, name, workload, rnd = sys.argv[1:]
try:
    d = json.load(open(path))
except Exception:
    print(f"{workload:9} {name:12} round {rnd}: no result"); sys.exit()
f = lambda k, p=2: "-" if d.get(k) is None else f"{d[k]:.{p}f}"
print(f"{workload:9} {name:12} round {rnd}: {f('delivered_mbps',1)} Mbps loss {f('loss_pct',3)}% "
      f"cpu {f('relay_cpu_pct',1)}% Gbps/core {f('delivered_gbps_per_relay_core')} msg/cpu-s {f('messages_per_relay_cpu_second',0)} "
      f"rss {f('relay_rss_mb',1)} MB ({f('relay_rss_per_subscriber_kb',0)} KB/sub) p50/p99 {f('latency_p50_ms',1)}/{f('latency_p99_ms',1)} ms "
      f"bench cpu {f('bench_cpu_pct',0)}%")
PY
}

for workload in $workloads; do
  for round in $(seq 1 "$rounds"); do
    for name in ours ref-0.10.25 ref-0.17.10; do
      run "$name" "$workload" "$round"
    done
  done
done
