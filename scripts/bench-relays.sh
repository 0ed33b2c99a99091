#!/usr/bin/env bash
# Reproduce docs/performance.md: our relay against the public reference relays 0.10.25 and 0.17.10
# (`scripts/install-peers.sh --optimised` caches them as relay-opt-<version>), interleaved rounds, relay pinned to CPU 0 and moq-bench to
# CPU 1, release builds. Prints one line per run and writes JSON summaries to $OUT (default
# target/bench-relays/).
#
#   scripts/bench-relays.sh                  # all workloads, 3 rounds
#   ROUNDS=5 WORKLOADS="sd500" scripts/bench-relays.sh
#   RELAYS="ours ref-0.10.25" WORKLOADS=capacity CAPACITY_QUOTA=0.25 scripts/bench-relays.sh
#   RELAYS="ours ref-0.10.25 ref-0.10.25-lto" scripts/bench-relays.sh   # after PEERS_LTO=1 install-peers.sh --optimised
#   RELAYS="ours-pgo ours ref-0.10.25" scripts/bench-relays.sh          # after scripts/build-pgo.sh
#   RELAYS="ours-pgo ref-0.10.25-pgo" scripts/bench-relays.sh   # after build-pgo.sh and build-pgo.sh --reference 0.10.25
#   RELAY_CPUS=0,1 RELAYS="ours ours-w2" WORKLOADS=probe500 scripts/bench-relays.sh   # relays on both cores, 1 vs 2 workers
#   RELAYS="ours ref-0.10.25" WORKLOADS="sd150x2 chat500x2" ROUNDS=6 scripts/bench-relays.sh   # at once (even rounds)
#
# Workloads: sd500, chat1000, idle500 (one moq-bench process with every session), probe500
# (latency added by the relay: publisher and 5 probe subscribers at real-time priority beside 500
# ordinary SD subscribers), probechat1000 (the same beside 1000 chat subscribers), capacity (most SD subscribers at < 0.1 % loss with the relay held to
# CAPACITY_QUOTA of a core by a cgroup, so the load generator is never the limit).
# At once: sd150x2 (150 SD viewers each) and chat500x2 (500 chat sessions each) run the first two
# of RELAYS at the same time, both on CPU 0, each under its own load (`moq-bench compare
# --at-once`): the host's phases then cost both alike, and the round-by-round ratio holds where
# alternate runs scatter (docs/performance.md).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-3}"
workloads="${WORKLOADS:-sd500 chat1000 idle500 probe500 capacity}"
relays="${RELAYS:-ours ref-0.10.25 ref-0.17.10}"
# CPUs the relay may run on (taskset list); the load generator stays on CPU 1.
relay_cpus="${RELAY_CPUS:-0}"
peers="${MOQ_PEERS_DIR:-$HOME/.cache/moq-interop}"
# capacity's cgroups go when the script does, however it ends.
trap 'rmdir /sys/fs/cgroup/moq-bench-$$ /sys/fs/cgroup/cpu/moq-bench-$$ 2>/dev/null || true' EXIT
out="${OUT:-target/bench-relays}"
mkdir -p "$out"

cargo build --release --locked -p moq-relay -p moq-bench
target="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
bin="$target/release"
pgo_bin="$target/pgo/use/$(rustc -vV | sed -n 's/^host: //p')/release/moq-relay"
case " $relays " in
  *" ours-pgo "*) [ -x "$pgo_bin" ] || { echo "no $pgo_bin: run scripts/build-pgo.sh first" >&2; exit 1; } ;;
esac
case " $relays " in
  *" ref-0.10.25-pgo "*) [ -x "$target/pgo/ref-0.10.25/use/bin/moq-relay" ] ||
    { echo "no 0.10.25 PGO build: run scripts/build-pgo.sh --reference 0.10.25 first" >&2; exit 1; } ;;
esac

declare -A relay=(
  [ours]="$bin/moq-relay --listen 127.0.0.1:{port} --tls-generate localhost --auth-public '' --web-http-listen 127.0.0.1:{port} --internal-listen 127.0.0.1:{mport} --log-level warn"
  # Ours without transparent huge pages for its heap (mimalloc's arenas): less RSS, more CPU.
  # Ours with two server workers (--server-workers: two endpoints on the port, SO_REUSEPORT, a
  # thread and runtime each); only differs from "ours" when RELAY_CPUS gives it two cores.
  [ours-w2]="$bin/moq-relay --listen 127.0.0.1:{port} --tls-generate localhost --auth-public '' --web-http-listen 127.0.0.1:{port} --internal-listen 127.0.0.1:{mport} --log-level warn --server-workers 2"
  [ours-nothp]="env MIMALLOC_ALLOW_THP=0 $bin/moq-relay --listen 127.0.0.1:{port} --tls-generate localhost --auth-public '' --web-http-listen 127.0.0.1:{port} --internal-listen 127.0.0.1:{mport} --log-level warn"
  # Ours built with profile-guided optimisation (scripts/build-pgo.sh).
  [ours-pgo]="$pgo_bin --listen 127.0.0.1:{port} --tls-generate localhost --auth-public '' --web-http-listen 127.0.0.1:{port} --internal-listen 127.0.0.1:{mport} --log-level warn"
  [ref-0.10.25]="$peers/relay-opt-0.10.25/bin/moq-relay --server-bind 127.0.0.1:{port} --tls-generate localhost --auth-public '' --web-http-listen 127.0.0.1:{port}"
  # Optional (scripts/build-pgo.sh --reference 0.10.25): 0.10.25 with PGO, trained like ours.
  [ref-0.10.25-pgo]="$target/pgo/ref-0.10.25/use/bin/moq-relay --server-bind 127.0.0.1:{port} --tls-generate localhost --auth-public '' --web-http-listen 127.0.0.1:{port}"
  # Optional (PEERS_LTO=1 scripts/install-peers.sh --optimised): 0.10.25 built with our release profile.
  [ref-0.10.25-lto]="$peers/relay-lto-0.10.25/bin/moq-relay --server-bind 127.0.0.1:{port} --tls-generate localhost --auth-public '' --web-http-listen 127.0.0.1:{port}"
  [ref-0.17.10]="$peers/relay-opt-0.17.10/bin/moq-relay --listen 127.0.0.1:{port} --listen-tls-generate localhost --auth-public '**' --web-http-listen 127.0.0.1:{port}"
)

for r in $relays; do
  case "$r" in
    ref-0.10.25 | ref-0.17.10)
      [ -x "$peers/relay-opt-${r#ref-}/bin/moq-relay" ] ||
        { echo "no $peers/relay-opt-${r#ref-}/bin/moq-relay: run scripts/install-peers.sh --optimised" >&2; exit 1; } ;;
  esac
done

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
  local mport=$((port + 1)) metrics=()
  local cmd="${relay[$name]//\{port\}/$port}"
  cmd="${cmd//\{mport\}/$mport}"
  # Our relays expose their QUIC counters (datagrams per send, losses...) for the summary.
  case "$name" in ours*) metrics=(--relay-metrics "http://127.0.0.1:$mport/metrics") ;; esac
  bash -c "exec taskset -c $relay_cpus $cmd" >"$out/$name-$workload-$round.log" 2>&1 &
  local pid=$!
  sleep 1.5
  RUST_LOG=error taskset -c 1 "$bin/moq-bench" --url "http://127.0.0.1:$port/anon" --preset "$preset" \
    --preset-file "$presets" --subscribers "$n" --duration 10 --relay-pid "$pid" --version "$version" "${metrics[@]}" --memory-probe --json \
    2>/dev/null | tail -1 >"$out/$name-$workload-$round.json" || true
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  python3 - "$out/$name-$workload-$round.json" "$name" "$workload" "$round" <<'PY'
import json, sys
path, name, workload, rnd = sys.argv[1:]
try:
    d = json.load(open(path))
except Exception:
    # No JSON: the relay or moq-bench failed to start or crashed; say so and go on with the next run.
    print(f"{workload:9} {name:12} round {rnd}: no result"); sys.exit()
f = lambda k, p=2: "-" if d.get(k) is None else f"{d[k]:.{p}f}"
print(f"{workload:9} {name:12} round {rnd}: {f('delivered_mbps',1)} Mbps loss {f('loss_pct',3)}% "
      f"cpu {f('relay_cpu_pct',1)}% Gbps/core {f('delivered_gbps_per_relay_core')} msg/cpu-s {f('messages_per_relay_cpu_second',0)} "
      f"rss {f('relay_rss_mb',1)} MB ({f('relay_rss_per_subscriber_kb',0)} KB/sub) p50/p99 {f('latency_p50_ms',1)}/{f('latency_p99_ms',1)} ms "
      f"bench cpu {f('bench_cpu_pct',0)}% mem {f('machine_mem_latency_ns',0)} ns"
      + ("" if d.get("relay_udp_sends_per_s") is None else
         f" | relay {f('relay_udp_datagrams_sent_per_s',0)} dgram/s, {f('relay_datagrams_per_send')} per send, "
         f"{f('relay_packets_lost_per_s',0)} lost/s"))
PY
}

# at_once WORKLOAD: the first two of $relays at the same time, ROUNDS rounds (rounded up to an even
# number: rounds alternate which relay starts first), one compare JSON.
at_once() {
  local workload="$1" n preset names a b even=$((rounds + rounds % 2))
  case "$workload" in
    sd150x2) n=150 preset=sd ;;
    chat500x2) n=500 preset=chat ;;
    *) echo "unknown workload $workload" >&2; return 1 ;;
  esac
  read -r -a names <<<"$relays"
  [ "${#names[@]}" -ge 2 ] || { echo "$workload needs two relays in RELAYS" >&2; return 1; }
  # compare gives each relay a {port}; our metrics listener takes any free one.
  a="exec taskset -c $relay_cpus ${relay[${names[0]}]//\{mport\}/0}"
  b="exec taskset -c $relay_cpus ${relay[${names[1]}]//\{mport\}/0}"
  RUST_LOG=error taskset -c 1 "$bin/moq-bench" compare --at-once --a "$a" --b "$b" --rounds "$even" \
    --preset "$preset" --preset-file "$presets" --subscribers "$n" --duration 10 --version moq-lite-02 \
    --relay-log "$out/atonce-$workload" --json 2>"$out/atonce-$workload.log" >"$out/atonce-$workload.json" || true
  python3 - "$out/atonce-$workload.json" "$workload" "${names[0]}" "${names[1]}" <<'PY'
import json, sys
path, workload, a, b = sys.argv[1:]
try:
    m = json.load(open(path))["metrics"]
except Exception:
    # No JSON: a relay failed to start or moq-bench failed (its log says which); report it and go
    # on with the next workload instead of stopping the whole benchmark.
    print(f"{workload:9} {a} and {b} at once: no result (see {path[:-5]}.log)"); sys.exit()
f = lambda v, p=2: "-" if v is None else f"{v:.{p}f}"
for key, label in [("delivered_gbps_per_relay_core", "Gbps/core"), ("messages_per_relay_cpu_second", "msg/cpu-s"),
                   ("relay_cpu_pct", "cpu %"), ("loss_pct", "loss %"), ("relay_rss_mb", "rss MB")]:
    x = m[key]
    print(f"{workload:9} {label:10} {a}: {' '.join(f(v) for v in x['a'])} | {b}: {' '.join(f(v) for v in x['b'])}"
          f" | {a}/{b} by round: {' '.join(f(1 / r) if r else '-' for r in x['b_over_a_rounds'])}"
          f" (median {f(1 / x['b_over_a_rounds_median'] if x['b_over_a_rounds_median'] else None)})")
PY
}

# start_relay NAME [CGROUP]: start a relay pinned to CPU 0 (inside CGROUP when given); sets $pid, $port.
start_relay() {
  local name="$1" cgroup="${2:-}" log="$3"
  port=$((20000 + RANDOM % 20000))
  local cmd="${relay[$name]//\{port\}/$port}"
  cmd="${cmd//\{mport\}/$((port + 1))}"
  if [ -n "$cgroup" ]; then
    bash -c "echo \$\$ > '$cgroup/cgroup.procs' && exec taskset -c $relay_cpus $cmd" >"$log" 2>&1 &
  else
    bash -c "exec taskset -c $relay_cpus $cmd" >"$log" 2>&1 &
  fi
  pid=$!
  sleep 1.5
}

stop_relay() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# probe NAME WORKLOAD ROUND: latency added by the relay, probe500 at 500 × SD, probechat1000 at
# 1000 × chat. The load generator's own core is busy (~70-80 %), which would otherwise be most of
# the latency measured; here the publisher and 5 probe subscribers (joining after the others) run
# at real-time priority (chrt -f) on that core, so they read and write the moment the kernel has
# something for them.
probe() {
  local name="$1" workload="$2" round="$3" base="$out/$1-$2-$3" preset n
  case "$workload" in
    probe500) preset=sd n=500 ;;
    probechat1000) preset=chat n=1000 ;;
  esac
  start_relay "$name" "" "$base.log"
  local url="http://127.0.0.1:$port/anon" common=(--preset "$preset" --version moq-lite-02 --broadcast probe)
  RUST_LOG=error chrt -f 20 taskset -c 1 "$bin/moq-bench" --url "$url" --role publish "${common[@]}" \
    --duration 40 --json >/dev/null 2>&1 &
  local publisher=$!
  sleep 1
  RUST_LOG=error taskset -c 1 "$bin/moq-bench" --url "$url" --role subscribe "${common[@]}" --subscribers "$n" \
    --duration 25 --relay-pid "$pid" --json 2>/dev/null | tail -1 >"$base-load.json" &
  local load=$!
  sleep 8
  RUST_LOG=error chrt -f 20 taskset -c 1 "$bin/moq-bench" --url "$url" --role subscribe "${common[@]}" --subscribers 5 \
    --duration 10 --json 2>/dev/null | tail -1 >"$base.json" || true
  wait "$load" || true
  kill "$publisher" 2>/dev/null || true
  wait "$publisher" 2>/dev/null || true
  stop_relay
  python3 - "$base.json" "$base-load.json" "$name" "$round" "$workload" <<'PY'
import json, sys
probe, load, name, rnd, workload = sys.argv[1:]
try:
    p = json.load(open(probe)); l = json.load(open(load))
except Exception:
    # No JSON from the probes or the load: that run failed; say so and go on with the next one.
    print(f"{workload:9} {name:12} round {rnd}: no result"); sys.exit()
f = lambda d, k, n=1: "-" if d.get(k) is None else f"{d[k]:.{n}f}"
print(f"{workload:9} {name:12} round {rnd}: probe p50/p90/p99/max {f(p,'latency_p50_ms')}/{f(p,'latency_p90_ms')}/{f(p,'latency_p99_ms')}/{f(p,'latency_max_ms')} ms "
      f"loss {f(p,'loss_pct',3)}% | the others: loss {f(l,'loss_pct',3)}% relay cpu {f(l,'relay_cpu_pct')}%")
PY
}

# capacity NAME ROUND: raise the SD subscriber count in steps of CAPACITY_STEP until a run loses
# ≥ 0.1 % of its frames, with the relay in a cgroup limited to CAPACITY_QUOTA of one core.
capacity() {
  local name="$1" round="$2" quota="${CAPACITY_QUOTA:-0.25}" step="${CAPACITY_STEP:-25}"
  local n="${CAPACITY_START:-100}" best=0 cg
  cg="$(make_cgroup "$quota")"
  while :; do
    local base="$out/$name-capacity-$round-$n"
    start_relay "$name" "$cg" "$base.log"
    RUST_LOG=error taskset -c 1 "$bin/moq-bench" --url "http://127.0.0.1:$port/anon" --preset sd \
      --subscribers "$n" --duration 10 --relay-pid "$pid" --version moq-lite-02 --json 2>/dev/null | tail -1 >"$base.json" || true
    stop_relay
    local verdict
    verdict="$(python3 - "$base.json" <<'PY'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception:
    # No JSON: the run failed outright, which ends the search like a lossy run does.
    print("fail no-result"); sys.exit()
ok = d.get("loss_pct") is not None and d["loss_pct"] < 0.1 and d.get("delivered_mbps", 0) > 0
print(("pass" if ok else "fail"), f"loss {d.get('loss_pct', 0):.3f}% relay cpu {d.get('relay_cpu_pct') or 0:.1f}% "
      f"p50/p99 {d.get('latency_p50_ms') or 0:.0f}/{d.get('latency_p99_ms') or 0:.0f} ms bench cpu {d.get('bench_cpu_pct') or 0:.0f}%")
PY
)"
    echo "capacity  $name round $round: $n subscribers: $verdict"
    [ "${verdict%% *}" = pass ] || break
    best="$n"
    n=$((n + step))
  done
  rmdir "$cg" 2>/dev/null || true
  echo "capacity  $name round $round: max subscribers at < 0.1 % loss with $quota of a core: $best" | tee "$out/$name-capacity-$round.txt"
}

# make_cgroup QUOTA: a CPU cgroup (v2 or v1) limited to QUOTA of one core (10 ms period); prints its path.
make_cgroup() {
  local quota_us period_us=10000 dir
  quota_us="$(python3 -c "print(int($1 * 10000))")"
  if [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
    dir="/sys/fs/cgroup/moq-bench-$$"
    mkdir -p "$dir" && echo "$quota_us $period_us" >"$dir/cpu.max"
  else
    dir="/sys/fs/cgroup/cpu/moq-bench-$$"
    mkdir -p "$dir" && echo "$period_us" >"$dir/cpu.cfs_period_us" && echo "$quota_us" >"$dir/cpu.cfs_quota_us"
  fi
  echo "$dir"
}

for workload in $workloads; do
  case "$workload" in *x2) at_once "$workload"; continue ;; esac
  for round in $(seq 1 "$rounds"); do
    for name in $relays; do
      case "$workload" in
        probe500 | probechat1000) probe "$name" "$workload" "$round" ;;
        capacity) capacity "$name" "$round" ;;
        *) run "$name" "$workload" "$round" ;;
      esac
    done
  done
done

# Medians of everything in $out (docs/performance.md quotes these).
python3 scripts/bench-summary.py "$out"
