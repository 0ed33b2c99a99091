#!/usr/bin/env python3
"""What WebSocket viewers cost the relay, beside QUIC ones (docs/performance.md).

One release relay serves QUIC (WebTransport), HTTP (ws://) and HTTPS (wss://, the QUIC
certificate) on one port number. A publisher connects over WebTransport; N viewers watch over
WebTransport, ws:// or wss://, one transport per run, in rounds (A B C A B C …) so the host's
slow drifts hit every transport alike. Each run is a `moq-bench --json` summary; the table gives
the medians of delivered bytes per relay CPU-second, latency and relay RSS, and each transport's
ratio to WebTransport.

    cargo build --release -p moq-relay -p moq-bench
    scripts/bench-websocket.py [--viewers 40] [--preset sd] [--rounds 3] [--duration 10]
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1."""
    while True:
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue


def wait_http(url: str, timeout: float = 10.0) -> str:
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return response.read().decode().strip()
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=int, default=40)
    parser.add_argument("--preset", default="sd")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--json", help="write every run's summary here")
    args = parser.parse_args()

    relay_bin = os.path.join(RELEASE, "moq-relay")
    bench_bin = os.path.join(RELEASE, "moq-bench")
    for binary in (relay_bin, bench_bin):
        if not os.access(binary, os.X_OK):
            print(f"{binary} missing: cargo build --release -p moq-relay -p moq-bench", file=sys.stderr)
            return 2

    quic, https = free_port(), free_port()
    log = tempfile.NamedTemporaryFile(prefix="bench-websocket-relay-", suffix=".log", delete=False)
    relay = subprocess.Popen(
        [relay_bin, "--listen", f"127.0.0.1:{quic}", "--web-http-listen", f"127.0.0.1:{quic}",
         "--web-https-listen", f"127.0.0.1:{https}", "--tls-generate", "localhost,127.0.0.1",
         "--auth-public", "", "--log-level", "warn"],
        stdout=subprocess.DEVNULL, stderr=log)
    runs: list[dict] = []
    try:
        fingerprint = wait_http(f"http://127.0.0.1:{quic}/certificate.sha256")
        viewers = {
            "webtransport": f"http://127.0.0.1:{quic}/bench",
            "ws": f"ws://127.0.0.1:{quic}/bench",
            "wss": f"wss://127.0.0.1:{https}/bench",
        }
        for round_ in range(args.rounds):
            for transport, url in viewers.items():
                command = [bench_bin, "--url", url, "--publish-url", f"http://127.0.0.1:{quic}/bench",
                           "--preset", args.preset, "--subscribers", str(args.viewers),
                           "--duration", str(args.duration), "--relay-pid", str(relay.pid),
                           "--tls-fingerprint", fingerprint, "--json"]
                out = subprocess.run(command, capture_output=True, text=True, timeout=args.duration * 6 + 60)
                if out.returncode != 0:
                    print(out.stderr[-2000:], file=sys.stderr)
                    return 1
                summary = json.loads(out.stdout.strip().splitlines()[-1])
                summary["transport"] = transport
                summary["round"] = round_
                runs.append(summary)
                print(f"round {round_} {transport:>12}: {summary['delivered_mbps']:.0f} Mbit/s, "
                      f"{summary['delivered_bytes_per_relay_cpu_second'] / 1e6:.0f} MB per relay CPU-s, "
                      f"loss {summary['loss_pct']:.3f} %, p50 {summary['latency_p50_ms']:.1f} ms, "
                      f"RSS {summary['relay_rss_mb']:.1f} MB", file=sys.stderr)
    finally:
        relay.terminate()
        relay.wait(timeout=15)
        os.unlink(log.name)

    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f, indent=1)
    median = lambda t, k: statistics.median(r[k] for r in runs if r["transport"] == t)
    base = median("webtransport", "delivered_bytes_per_relay_cpu_second")
    print(f"\n{args.viewers} × {args.preset} viewers, medians of {args.rounds} runs each\n")
    print("| viewers over | MB delivered per relay CPU-s | vs WebTransport | p50 / p99 ms | loss % | relay RSS MB |")
    print("|---|---|---|---|---|---|")
    for transport in ("webtransport", "ws", "wss"):
        per_cpu = median(transport, "delivered_bytes_per_relay_cpu_second")
        print(f"| {transport} | {per_cpu / 1e6:.0f} | {per_cpu / base:.2f}× | "
              f"{median(transport, 'latency_p50_ms'):.1f} / {median(transport, 'latency_p99_ms'):.1f} | "
              f"{median(transport, 'loss_pct'):.3f} | {median(transport, 'relay_rss_mb'):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
