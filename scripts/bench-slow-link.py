#!/usr/bin/env python3
"""Latency under congestion: viewers behind links slower than the stream (issue 18, deliverable 3).

In a network namespace of its own (needs root, iproute2, ffmpeg): a relay, ffmpeg testsrc2
1280x720@30 libx264 CBR 3 Mbit/s (GoP 1 s) + Opus 64 kbit/s as fMP4 (100 ms fragments) piped into
`hang publish`, and one `hang subscribe` viewer per link rate, each reaching the relay at its own
address whose packets (relay -> viewer) are held to the rate by an HTB class with a drop-tail
queue of 200 ms at that rate, plus a healthy (unshaped) viewer. All viewers watch at once, for
--seconds. Per viewer it reports the end-to-end latency (the viewer's newest frame against the
publisher's catalog clock, sampled once a second from its stats line) p50/p95/max, and the video
and audio frames per second it wrote (ffprobe on its output). With --browser it also runs the
e2e slow-link page (`<hang-watch>` in Chromium) at each rate, one after the other.

  scripts/bench-slow-link.py --seconds 180 --relays ours,ref-0.17.10,ref-0.10.25 \\
      --json target/bench-slow-link/results.json --svg docs/slow-link-latency.svg

Relays: `ours` (target/release or target/debug moq-relay), `ref-0.17.10`, `ref-0.10.25`
(`scripts/install-peers.sh --optimised` puts them under ~/.cache/moq-interop as relay-opt-<version>).
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PEERS = Path(os.environ.get("MOQ_PEERS_DIR", Path.home() / ".cache" / "moq-interop"))


def bin_dir() -> Path:
    for profile in ("release", "debug"):
        d = REPO / "target" / profile
        if (d / "moq-relay").exists() and (d / "hang").exists():
            return d
    sys.exit("build first: cargo build --release -p moq-relay -p hang-cli")


def relay_command(name: str, port: int, internal: int, bins: Path) -> list[str]:
    addr = f"0.0.0.0:{port}"
    names = "localhost,127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5"
    if name == "ours":
        return [str(bins / "moq-relay"), "--listen", addr, "--web-http-listen", addr,
                "--internal-listen", f"127.0.0.1:{internal}", "--tls-generate", names,
                "--auth-public", "", "--log-level", "warn"]
    if name.startswith("ref-"):
        binary = PEERS / f"relay-opt-{name[4:]}/bin/moq-relay"
        if not binary.exists():
            sys.exit(f"{binary} is missing: run scripts/install-peers.sh --optimised")
    if name == "ref-0.10.25":
        return [str(binary), "--server-bind", addr,
                "--tls-generate", names, "--auth-public", "", "--web-http-listen", addr]
    if name == "ref-0.17.10":
        return [str(binary), "--listen", addr,
                "--listen-tls-generate", names, "--auth-public", "**", "--web-http-listen", addr]
    sys.exit(f"unknown relay {name}")


class Netns:
    """A namespace with lo up and 127.0.0.(2+i) shaped to rates[i]; deleted on close."""

    def __init__(self, rates: list[float]):
        self.name = f"moq-bench-slow-{os.getpid()}"
        self.run("ip", "netns", "add", self.name, outside=True)
        self.run("ip", "link", "set", "lo", "up", "mtu", "1500")  # lo's 64 KB segments would not fit the queues
        self.run("tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "99")
        self.run("tc", "class", "add", "dev", "lo", "parent", "1:", "classid", "1:99", "htb", "rate", "20gbit")
        self.hosts = []
        for i, rate in enumerate(rates):
            host = 2 + i
            addr = f"127.0.0.{host}"
            queue = int(rate * 1e6 * 0.2 / 8)  # 200 ms at the rate
            self.run("ip", "addr", "add", f"{addr}/8", "dev", "lo")
            self.run("tc", "class", "add", "dev", "lo", "parent", "1:", "classid", f"1:{host}0", "htb",
                     "rate", f"{rate}mbit", "ceil", f"{rate}mbit", "burst", "16k")
            self.run("tc", "qdisc", "add", "dev", "lo", "parent", f"1:{host}0", "bfifo", "limit", str(queue))
            self.run("tc", "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
                     "match", "ip", "src", f"{addr}/32", "flowid", f"1:{host}0")
            self.hosts.append(addr)
        healthy = f"127.0.0.{2 + len(rates)}"
        self.run("ip", "addr", "add", f"{healthy}/8", "dev", "lo")
        self.healthy = healthy

    def run(self, *args, outside=False):
        cmd = list(args) if outside else ["ip", "netns", "exec", self.name, *args]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    def popen(self, args, **kw):
        env = {**os.environ, "NO_COLOR": "1"}
        env.pop("RUST_LOG", None)
        return subprocess.Popen(["ip", "netns", "exec", self.name, *args], start_new_session=True, env=env, **kw)

    def close(self):
        out = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True).stdout
        for pid in out.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", self.name], check=False)


def free_port() -> int:
    import socket
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", port))
                    return port
                except OSError:
                    continue


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def fps(file: Path, select: str) -> float:
    """Packets per second of media time the output covers."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", select, "-show_entries",
                          "packet=pts_time", "-of", "csv=p=0", str(file)],
                         capture_output=True, text=True).stdout
    pts = sorted(float(x.strip().rstrip(",")) for x in out.split() if x.strip().rstrip(",").replace(".", "", 1).isdigit())
    if len(pts) < 2:
        return 0.0
    return round((len(pts) - 1) / (pts[-1] - pts[0]), 1)


def run_relay(name: str, rates: list[float], seconds: int, latency: int, bins: Path, work: Path) -> dict:
    ns = Netns(rates)
    procs = []
    try:
        port, internal = free_port(), free_port()
        log = open(work / f"{name}-relay.log", "w")
        procs.append(ns.popen(relay_command(name, port, internal, bins), stdout=log, stderr=log))
        time.sleep(1.0)  # the relay's listeners: the publisher retries below if it is not up yet
        prefix = "anon"
        ffmpeg = ("ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc2=size=1280x720:rate=30 "
                  "-f lavfi -i sine=frequency=440:sample_rate=48000 -c:v libx264 -preset ultrafast "
                  "-tune zerolatency -b:v 3M -minrate 3M -maxrate 3M -bufsize 500k -x264-params nal-hrd=cbr "
                  "-g 30 -pix_fmt yuv420p -c:a libopus -b:a 64k -f mp4 -frag_duration 100000 "
                  "-movflags cmaf+separate_moof+delay_moov+skip_trailer -")
        publish = f"{bins / 'hang'} publish --url http://127.0.0.1:{port}/{prefix} --name slow.hang"
        plog = open(work / f"{name}-publish.log", "w")
        procs.append(ns.popen(["bash", "-c", f"{ffmpeg} | {publish}"], stdout=plog, stderr=plog))
        time.sleep(2.0)
        viewers = []
        for label, host in [*zip([f"{r:g} Mbit/s" for r in rates], ns.hosts), ("healthy", ns.healthy)]:
            tag = label.split()[0]
            out = work / f"{name}-{tag}.mp4"
            vlog = work / f"{name}-{tag}.log"
            args = [str(bins / "hang"), "subscribe", "--url", f"http://{host}:{port}/{prefix}",
                    "--name", "slow.hang", "--latency", str(latency)]
            p = ns.popen(args, stdout=open(out, "wb"), stderr=open(vlog, "w"))
            procs.append(p)
            viewers.append((label, out, vlog, p))
        time.sleep(seconds)
        results = {}
        for label, out, vlog, p in viewers:
            os.killpg(p.pid, signal.SIGINT)
        time.sleep(2.5)
        for label, out, vlog, p in viewers:
            series = [int(m) for m in re.findall(r"latency_ms=(-?\d+)", vlog.read_text())]
            judged = series[5:]
            results[label] = {
                "latency_ms_per_second": series,
                "p50": percentile(judged, 50), "p95": percentile(judged, 95),
                "max": max(judged) if judged else None,
                "video_fps": fps(out, "v:0"),
                "audio_fps": fps(out, "a:0"),
            }
            print(f"{name:12} {label:10} latency p50 {results[label]['p50']} p95 {results[label]['p95']} "
                  f"max {results[label]['max']} ms, video {results[label]['video_fps']} fps, "
                  f"audio {results[label]['audio_fps']} fps", flush=True)
        return results
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        ns.close()


def browser_run(name: str, rate: float, seconds: int, bins: Path, work: Path) -> dict | None:
    if name != "ours":
        return None  # the e2e page drives our relay; the reference relays need their own flags
    out = work / f"browser-{name}-{rate:g}.json"
    env = {**os.environ, "MOQ_SLOW_LINK_SECONDS": str(seconds), "MOQ_SLOW_LINK_RATE": f"{rate:g}",
           "MOQ_SLOW_LINK_OUT": str(out), "MOQ_BIN_DIR": str(bins)}
    subprocess.run(["node", "--import", "tsx", "--test", "e2e/slow-link.test.ts"], cwd=REPO / "js", env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not out.exists():
        return None
    data = json.loads(out.read_text())
    print(f"{name:12} browser {rate:g} Mbit/s latency p50 {data['p50']} p95 {data['p95']} max {data['max']} ms, "
          f"video {data['video_fps']} fps, audio {data['audio_fps']} fps", flush=True)
    return data


def svg(results: dict, path: Path, seconds: int):
    """Latency over time per viewer and relay: one small chart per relay."""
    colors = ["#d62728", "#ff7f0e", "#2ca02c", "#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    relays = list(results)
    w, h, pad = 640, 240, 40
    def series(relay):
        out = [(f"CLI {label}", s["latency_ms_per_second"]) for label, s in results[relay]["cli"].items()]
        for label, s in (results[relay].get("browser") or {}).items():
            if s:
                out.append((f"browser {label}", s["latency_ms_per_second"]))
        return out

    top = max([v or 0 for r in relays for _, pts in series(r) for v in pts] + [1000])
    top = min(top, 5000)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h * len(relays)}" '
             f'font-family="sans-serif" font-size="11">']
    for i, relay in enumerate(relays):
        y0 = i * h
        parts.append(f'<text x="{pad}" y="{y0 + 14}" font-weight="bold">{relay}: viewer latency '
                     f'(ms, 1 s samples) over {seconds} s</text>')
        parts.append(f'<rect x="{pad}" y="{y0 + 20}" width="{w - 2 * pad}" height="{h - 50}" fill="none" stroke="#999"/>')
        for tick in range(0, int(top) + 1, 1000 if top > 2500 else 500):
            ty = y0 + 20 + (h - 50) * (1 - tick / top)
            parts.append(f'<text x="2" y="{ty + 4:.0f}">{tick}</text>')
            parts.append(f'<line x1="{pad}" x2="{w - pad}" y1="{ty:.0f}" y2="{ty:.0f}" stroke="#eee"/>')
        for j, (label, pts) in enumerate(series(relay)):
            coords = " ".join(
                f"{pad + (w - 2 * pad) * k / max(1, seconds):.1f},{y0 + 20 + (h - 50) * (1 - min(v, top) / top):.1f}"
                for k, v in enumerate(pts) if v is not None)
            if not coords:
                continue
            color = colors[j % len(colors)]
            dash = ' stroke-dasharray="4 2"' if label.startswith("browser") else ""
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.2"{dash} points="{coords}"/>')
            row, col = divmod(j, 4)
            parts.append(f'<text x="{pad + 10 + 140 * col}" y="{y0 + h - 18 + 12 * row}" fill="{color}">{label}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=180, help="how long the viewers watch (default 180)")
    ap.add_argument("--rates", default="4,2,1", help="link rates in Mbit/s (default 4,2,1)")
    ap.add_argument("--relays", default="ours,ref-0.17.10,ref-0.10.25")
    ap.add_argument("--latency", type=int, default=500, help="the viewers' --latency target in ms (default 500)")
    ap.add_argument("--browser", action="store_true", help="also the <hang-watch> page at each rate (our relay)")
    ap.add_argument("--json", type=Path, help="write every result here")
    ap.add_argument("--svg", type=Path, help="plot latency over time here")
    args = ap.parse_args()
    for tool in ("ip", "tc", "ffmpeg", "ffprobe"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing (apt-get install iproute2 ffmpeg)")
    rates = [float(r) for r in args.rates.split(",")]
    bins = bin_dir()
    work = Path(tempfile.mkdtemp(prefix="bench-slow-link-"))
    results = {}
    try:
        for relay in args.relays.split(","):
            results[relay] = {"cli": run_relay(relay, rates, args.seconds, args.latency, bins, work)}
            if args.browser:
                results[relay]["browser"] = {f"{r:g} Mbit/s": browser_run(relay, r, args.seconds, bins, work)
                                             for r in rates}
    finally:
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=1))
        if args.svg and results:
            svg(results, args.svg, args.seconds)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
