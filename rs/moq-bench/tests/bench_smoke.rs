//! `moq-bench` against our real relay, with small loads (a few subscribers, 2–3 s): the JSON
//! lines interface, a TOML preset file, announce churn, publisher and subscribers as separate
//! processes, and `compare` with the same relay on both sides.
//!
//! The relay binary comes from the same target directory: `cargo build -p moq-relay` first
//! (`cargo test --workspace` builds it).

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use test_support::process::Killed;
use test_support::relay::{RelayAddrs, RelayOptions};
use test_support::Run;

fn bench_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_moq-bench"))
}

fn relay_bin() -> PathBuf {
    test_support::relay::relay_bin(env!("CARGO_BIN_EXE_moq-bench"))
}

/// The relay's arguments for a self-signed certificate on UDP `addr`, fingerprint on TCP `addr`
/// (for `compare`, which starts its relays itself).
fn relay_args(addr: &str) -> Vec<String> {
    [
        "--listen",
        addr,
        "--tls-generate",
        "localhost",
        "--auth-public",
        "",
        "--web-http-listen",
        addr,
    ]
    .map(String::from)
    .to_vec()
}

/// Our relay (anonymous access) on ports it chose and reported, with its internal listener
/// (`/metrics`); killed when dropped.
struct Relay {
    run: Run,
    addrs: RelayAddrs,
}

impl Relay {
    fn start() -> Self {
        let mut run = Run::new("bench-relay");
        let options = RelayOptions::new().internal().args(["--auth-public", ""]);
        let addrs = run.start_relay("relay", &relay_bin(), &options);
        Self { run, addrs }
    }

    /// moq-bench's flags to load this relay, then `args`: the URL and the pinned certificate.
    fn args(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec!["--url".to_string(), self.addrs.url("/bench")];
        all.extend(self.addrs.tls_args());
        all.extend(args.iter().map(|a| a.to_string()));
        all
    }

    /// [`bench`] against this relay.
    fn bench(&self, args: &[&str]) -> (String, String) {
        let all = self.args(args);
        bench(&all.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// [`spawn_bench`] against this relay.
    fn spawn_bench(&self, args: &[&str]) -> Killed {
        let all = self.args(args);
        spawn_bench(&all.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// The relay's `/metrics` URL.
    fn metrics(&self) -> String {
        format!("http://{}/metrics", self.addrs.internal())
    }

    fn pid(&mut self) -> String {
        self.run.child("relay").id().to_string()
    }
}

fn spawn_bench(args: &[&str]) -> Killed {
    Killed(
        Command::new(bench_bin())
            .args(args)
            .args(["--log-level", "error"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start moq-bench"),
    )
}

/// Wait (at most `timeout`) for a moq-bench started by [`spawn_bench`]; its status and output.
fn finish(mut child: Killed, timeout: Duration) -> (ExitStatus, String, String) {
    // Read the pipes on threads: the JSON lines could fill a pipe while we poll.
    let mut out = child.0.stdout.take().unwrap();
    let mut err = child.0.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait for moq-bench") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "moq-bench did not finish in {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    (status, out.join().unwrap(), err.join().unwrap())
}

/// Run moq-bench to completion; panics unless it succeeds. Returns (stdout, stderr).
fn bench(args: &[&str]) -> (String, String) {
    let (status, stdout, stderr) = finish(spawn_bench(args), Duration::from_secs(90));
    assert!(status.success(), "moq-bench {args:?} failed: {stderr}");
    (stdout, stderr)
}

/// A `compare` relay command: our relay started with `exec {prefix}…` (`prefix` may be empty,
/// or e.g. `env VAR=value `), on port 0 (`{port}` is 0 with `{port_file}`), reporting the ports
/// it got in `{port_file}`.
fn relay_command(prefix: &str) -> String {
    let mut cmd = format!("exec {prefix}'{}'", relay_bin().display());
    for arg in relay_args("127.0.0.1:{port}") {
        cmd += &format!(" '{arg}'");
    }
    cmd + " --port-file '{port_file}'"
}

/// The last stdout line as JSON.
fn last_json(stdout: &str, stderr: &str) -> Value {
    let last = stdout.trim().lines().last().unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| {
        panic!("the last stdout line is not one JSON object ({e}): {stdout}\n{stderr}")
    })
}

fn num(json: &Value, k: &str) -> f64 {
    json[k]
        .as_f64()
        .unwrap_or_else(|| panic!("{k} missing or not a number in {json}"))
}

/// Loss within what a loaded machine explains. Loss is what the relay (or moq-bench's own
/// subscribers) drop when a subscriber falls further behind than the track's max latency: on
/// loopback that happens only when the machine is starved, e.g. a 2-core machine running the
/// rest of the suite beside these loads, and then for a few groups of a run. These tests are
/// about the interface and the accounting, not the machine: up to 5 % lost passes, while a
/// broken delivery path loses far more (a run that delivers nothing counts as 100 %).
fn assert_little_loss(json: &Value) {
    let loss = num(json, "loss_pct");
    assert!((0.0..=5.0).contains(&loss), "loss {loss} %: {json}");
}

#[test]
fn sd_preset_json_lines() {
    let mut relay = Relay::start();
    let pid = relay.pid();
    let (stdout, stderr) = relay.bench(&[
        "--preset",
        "sd",
        "--subscribers",
        "10",
        "--duration",
        "3",
        "--relay-pid",
        &pid,
        "--json",
    ]);

    // One tick per second before the summary, each a JSON object with the per-second figures.
    let lines: Vec<&str> = stdout.trim().lines().collect();
    let ticks: Vec<Value> = lines[..lines.len() - 1]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!ticks.is_empty(), "no tick line: {stdout}");
    for tick in &ticks {
        assert_eq!(tick["type"], "tick", "{tick}");
        for k in [
            "elapsed_s",
            "delivered_mbps",
            "frames_received",
            "groups_received",
            "frames_missing",
            "groups_missing",
            "relay_cpu_pct",
            "relay_rss_mb",
        ] {
            num(tick, k);
        }
        assert!(tick.get("latency_p90_ms").is_some(), "{tick}");
    }
    assert!(num(&ticks[0], "frames_received") > 0.0, "{}", ticks[0]);

    let json = last_json(&stdout, &stderr);
    assert_eq!(json["type"], "summary", "{json}");
    let expected = 10.0 * 3.0;
    let delivered = num(&json, "delivered_mbps");
    assert!(
        (delivered - expected).abs() <= expected * 0.5,
        "delivered {delivered} Mbps, expected about {expected}: {json}"
    );
    assert_little_loss(&json);
    assert!(num(&json, "latency_p50_ms") > 0.0, "{json}");
    assert!(
        num(&json, "latency_p99_ms") >= num(&json, "latency_p50_ms"),
        "{json}"
    );
    assert!(num(&json, "relay_cpu_seconds") > 0.0, "{json}");
    assert!(num(&json, "relay_rss_mb") > 0.0, "{json}");
    assert!(
        num(&json, "delivered_bytes_per_relay_cpu_second") > 0.0,
        "{json}"
    );
    assert!(
        num(&json, "setup_p99_ms") >= num(&json, "setup_p50_ms"),
        "{json}"
    );
    assert!(json.get("relay_rss_per_subscriber_kb").is_some(), "{json}");
    // The newest version both our relay and moq-bench speak.
    assert_eq!(json["version"], "moq-lite-06", "{json}");
    assert!(
        json.get("machine_mem_latency_ns").is_none(),
        "the memory probe runs only when asked: {json}"
    );
    // The human table goes to stderr.
    assert!(stderr.contains("moq-bench summary"), "{stderr}");
    drop(relay);
}

/// `--relay-metrics`: our relay's QUIC counters over the measured period land in the summary,
/// consistent with what was delivered.
#[test]
fn relay_quic_counters_in_the_summary() {
    let relay = Relay::start();
    let metrics = relay.metrics();
    let (stdout, stderr) = relay.bench(&[
        "--preset",
        "sd",
        "--subscribers",
        "10",
        "--duration",
        "3",
        "--relay-metrics",
        &metrics,
        "--memory-probe",
        "--json",
    ]);
    let json = last_json(&stdout, &stderr);
    // --memory-probe: a dependent load over 8 MiB takes between a cache hit and a page walk.
    let mem = num(&json, "machine_mem_latency_ns");
    assert!((0.5..10_000.0).contains(&mem), "{json}");
    assert!(stderr.contains("per dependent memory load"), "{stderr}");
    // 10 × 3 Mbps of 12.5 KB frames: many full-size datagrams, a few per send.
    let datagrams = num(&json, "relay_udp_datagrams_sent_per_s");
    let sends = num(&json, "relay_udp_sends_per_s");
    assert!(datagrams > 1000.0, "{json}");
    assert!(sends > 0.0 && sends <= datagrams, "{json}");
    assert!(
        (num(&json, "relay_datagrams_per_send") - datagrams / sends).abs() < 1e-6,
        "{json}"
    );
    let per_datagram = num(&json, "relay_bytes_per_datagram");
    assert!((1000.0..=1452.0).contains(&per_datagram), "{json}");
    let sent_mbps = num(&json, "relay_udp_bytes_sent_per_s") * 8.0 / 1e6;
    let delivered = num(&json, "delivered_mbps");
    assert!(
        sent_mbps >= delivered * 0.9 && sent_mbps <= delivered * 1.5,
        "relay sent {sent_mbps} Mbps for {delivered} delivered: {json}"
    );
    assert!(num(&json, "relay_acks_received_per_s") > 0.0, "{json}");
    // Every 12.5 KB frame is ~9 STREAM frames; the publisher's data is acknowledged.
    assert!(
        num(&json, "relay_stream_frames_sent_per_s") >= datagrams * 0.9,
        "{json}"
    );
    assert!(num(&json, "relay_acks_sent_per_s") > 0.0, "{json}");
    // Reported even when the viewers sent no credit (it may be 0 in a short run).
    assert!(
        json["relay_credit_frames_received_per_s"].is_number(),
        "{json}"
    );
    // QUIC declares packets lost on loopback only when a socket buffer overflowed, which a
    // starved machine can cause for a moment: a bound, like the frame loss's, not zero.
    let lost = num(&json, "relay_packets_lost_per_s");
    assert!(
        lost <= datagrams * 0.05,
        "{lost} packets lost per second: {json}"
    );
    assert!(stderr.contains("relay QUIC /s"), "{stderr}");

    drop(relay);
}

/// moq-bench closes its sessions on the way out and waits for the closes to leave, so the relay
/// has none left a moment later (not at its 10 s idle timeout: without the wait, tens of 150
/// sessions stayed on).
#[test]
fn sessions_end_on_the_relay_when_moq_bench_exits() {
    let relay = Relay::start();
    relay.bench(&[
        "--preset",
        "chat",
        "--subscribers",
        "150",
        "--duration",
        "2",
        "--json",
    ]);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let sessions = live_sessions(&relay);
        if sessions == 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{sessions} sessions still on the relay 3 s after moq-bench exited"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(relay);
}

/// `moq_relay_sessions` from the relay's `/metrics`.
fn live_sessions(relay: &Relay) -> f64 {
    let response =
        test_support::http::get_blocking(relay.addrs.internal(), "/metrics").expect("GET /metrics");
    assert_eq!(response.status, 200, "GET /metrics: {}", response.body);
    response
        .body
        .lines()
        .find_map(|line| line.strip_prefix("moq_relay_sessions "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no moq_relay_sessions in {}", response.body))
}

#[test]
fn preset_file_is_honoured() {
    let dir = test_support::Scratch::new("bench-presets");
    let file = dir.path("presets.toml");
    std::fs::write(
        &file,
        "[[preset]]\nname = \"five\"\nfps = 20\nframe_bytes = 200\nframes_per_group = 5\n",
    )
    .unwrap();

    // Listed with the built-in ones.
    let (list, _) = bench(&["--list-presets", "--preset-file", file.to_str().unwrap()]);
    for name in ["sd", "hd", "audio", "chat", "churn", "five"] {
        assert!(list.contains(name), "{name} not listed: {list}");
    }

    let relay = Relay::start();
    let (stdout, stderr) = relay.bench(&[
        "--preset-file",
        file.to_str().unwrap(),
        "--preset",
        "five",
        "--subscribers",
        "2",
        "--duration",
        "2",
        "--json",
    ]);
    let json = last_json(&stdout, &stderr);
    assert_eq!(json["preset"], "five");
    let frames = num(&json, "frames_received");
    let groups = num(&json, "groups_received");
    assert!(frames >= 2.0 * 30.0, "about 2 × 40 frames expected: {json}");
    assert_eq!(num(&json, "delivered_bytes"), frames * 200.0, "{json}");
    // Five frames per group: per subscriber, groups = ceil(frames / 5) give or take the edges.
    assert!(
        groups >= frames / 5.0 && groups <= frames / 5.0 + 2.0 * 2.0,
        "{groups} groups for {frames} frames: {json}"
    );
    assert_little_loss(&json);
    drop(relay);
}

#[test]
fn churn_preset_counts_announcements() {
    let relay = Relay::start();
    let (stdout, stderr) = relay.bench(&[
        "--preset",
        "churn",
        "--subscribers",
        "3",
        "--duration",
        "3",
        "--json",
    ]);
    let json = last_json(&stdout, &stderr);
    let published = num(&json, "announces_published");
    assert!(published >= 20.0, "10/s for 3 s: {json}");
    assert_eq!(num(&json, "announces_received"), 3.0 * published, "{json}");
    assert_little_loss(&json);
    assert!(num(&json, "latency_p50_ms") > 0.0, "{json}");
    // Broadcasts live 2 s: those started in the first second ended while we watched.
    assert!(num(&json, "unannounces_received") > 0.0, "{json}");
    drop(relay);
}

#[test]
fn publisher_and_subscribers_in_separate_processes() {
    let relay = Relay::start();
    let publisher = relay.spawn_bench(&[
        "--role",
        "publish",
        "--broadcast",
        "split",
        "--preset",
        "chat",
        "--duration",
        "6",
        "--json",
    ]);
    let (stdout, stderr) = relay.bench(&[
        "--role",
        "subscribe",
        "--broadcast",
        "split",
        "--preset",
        "chat",
        "--subscribers",
        "3",
        "--duration",
        "2",
        "--json",
    ]);
    let json = last_json(&stdout, &stderr);
    assert_eq!(json["role"], "subscribe", "{json}");
    // chat: 10 one-frame groups per second, to each of 3 subscribers for 2 s.
    let frames = num(&json, "frames_received");
    assert!(
        frames >= 3.0 * 15.0,
        "frames delivered across processes: {json}"
    );
    assert_eq!(num(&json, "groups_received"), frames, "{json}");
    assert_little_loss(&json);
    assert!(num(&json, "latency_p50_ms") > 0.0, "{json}");

    let (status, pub_out, pub_err) = finish(publisher, Duration::from_secs(60));
    assert!(status.success(), "publisher failed: {pub_err}");
    let pub_json = last_json(&pub_out, &pub_err);
    assert_eq!(pub_json["role"], "publish", "{pub_json}");
    assert!(num(&pub_json, "frames_published") >= 50.0, "{pub_json}");
    drop(relay);
}

#[test]
fn compare_at_once_loads_both_relays_in_the_same_seconds() {
    let cmd = relay_command("");
    let (stdout, stderr) = bench(&[
        "compare",
        "--at-once",
        "--a",
        &cmd,
        "--b",
        &cmd,
        "--rounds",
        "2",
        "--preset",
        "sd",
        "--subscribers",
        "3",
        "--duration",
        "3",
        "--pause",
        "0",
        "--json",
    ]);
    let json = last_json(&stdout, &stderr);
    assert_eq!(json["type"], "compare", "{json}");
    assert_eq!(json["at_once"], true, "{json}");
    let (a, b) = (
        json["runs"]["a"].as_array().expect("runs"),
        json["runs"]["b"].as_array().expect("runs"),
    );
    assert_eq!((a.len(), b.len()), (2, 2), "{json}");
    for (round, (a, b)) in a.iter().zip(b).enumerate() {
        // A goes first in the first round, B in the second.
        assert_eq!((&a["label"], &b["label"]), (&json!("A"), &json!("B")));
        assert_eq!(a["at_once_first"], round == 0, "{a}");
        assert_eq!(b["at_once_first"], round == 1, "{b}");
        // Two relays (two PIDs, two ports), each delivering its own load in full...
        assert_ne!(a["relay_command"], b["relay_command"], "{json}");
        for run in [a, b] {
            assert_little_loss(run);
            assert_eq!(num(run, "subscribers"), 3.0, "{run}");
            assert!(num(run, "relay_cpu_seconds") > 0.0, "{run}");
            assert!(num(run, "frames_received") >= 3.0 * 60.0, "{run}");
        }
        // ...measured over the same seconds: the two 3-second windows overlap by at least half
        // their length, whatever the two set-ups took on a busy machine (one after the other,
        // they would not overlap at all).
        let from = num(a, "measured_from_unix_ms").max(num(b, "measured_from_unix_ms"));
        let to = num(a, "measured_to_unix_ms").min(num(b, "measured_to_unix_ms"));
        assert!(
            to - from > 1500.0,
            "windows overlap {} ms: {a} {b}",
            to - from
        );
    }
    assert!(stderr.contains("A and B at once"), "{stderr}");
    // The two loads' interleaved lines say whose they are.
    for label in [
        "[A] t=",
        "[B] t=",
        "moq-bench summary: A",
        "moq-bench summary: B",
    ] {
        assert!(stderr.contains(label), "no {label:?} in {stderr}");
    }
}

#[test]
fn compare_at_once_stops_the_first_relay_when_the_second_fails() {
    // A marker in relay A's environment, to find it among this machine's processes afterwards.
    let mark = format!("MOQ_BENCH_TEST_MARK={}-{}", std::process::id(), line!());
    let cmd = relay_command(&format!("env {mark} "));
    let scratch = test_support::Scratch::new("bench-at-once");
    let logs = scratch.path("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let (status, _, stderr) = finish(
        spawn_bench(&[
            "compare",
            "--at-once",
            "--relay-log",
            logs.to_str().expect("utf-8 temp dir"),
            "--a",
            &cmd,
            "--b",
            "exit 3",
            "--rounds",
            "2",
            "--preset",
            "sd",
            "--subscribers",
            "2",
            "--duration",
            "2",
        ]),
        Duration::from_secs(60),
    );
    assert!(
        !status.success(),
        "compare succeeded without relay B: {stderr}"
    );
    assert!(
        stderr.contains("exited before accepting sessions"),
        "no clear error: {stderr}"
    );
    // Relay A was started (first, in round 1: its log exists) and is gone with the comparison.
    let started_a = logs.join("1-a.log").exists();
    assert!(started_a, "relay A was never started: {stderr}");
    let survivors: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| {
            std::fs::read(e.path().join("environ"))
                .map(|env| env.split(|b| *b == 0).any(|var| var == mark.as_bytes()))
                .unwrap_or(false)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(survivors.is_empty(), "relay A left running: {survivors:?}");
}

#[test]
fn compare_our_relay_with_itself() {
    let cmd = relay_command("");
    let (stdout, stderr) = bench(&[
        "compare",
        "--a",
        &cmd,
        "--b",
        &cmd,
        "--rounds",
        "1",
        "--preset",
        "sd",
        "--subscribers",
        "3",
        "--duration",
        "2",
        "--pause",
        "0",
        "--json",
    ]);
    let json = last_json(&stdout, &stderr);
    assert_eq!(json["type"], "compare", "{json}");
    for side in ["a", "b"] {
        let runs = json["runs"][side].as_array().expect("runs");
        assert_eq!(runs.len(), 1, "{json}");
        assert_little_loss(&runs[0]);
        assert!(num(&runs[0], "relay_cpu_seconds") > 0.0, "{}", runs[0]);
    }
    let ratio = |metric: &str| {
        let m = &json["metrics"][metric];
        let r = num(m, "b_over_a");
        assert!(
            (num(m, "a_over_b") * r - 1.0).abs() < 1e-9,
            "{metric}: A/B is not 1/(B/A): {m}"
        );
        r
    };
    // The same relay under the same load: delivery is identical, memory close; CPU is counted
    // in 10 ms ticks over 2 s and shares 2 cores with other tests, so only roughly equal.
    let delivered = ratio("delivered_mbps");
    assert!(
        (0.9..=1.1).contains(&delivered),
        "delivered B/A {delivered}: {json}"
    );
    let rss = ratio("relay_rss_mb");
    assert!((0.5..=2.0).contains(&rss), "RSS B/A {rss}: {json}");
    let per_cpu = ratio("delivered_bytes_per_relay_cpu_second");
    assert!(
        (0.2..=5.0).contains(&per_cpu),
        "bytes per CPU-second B/A {per_cpu}: {json}"
    );
    let p50 = ratio("latency_p50_ms");
    assert!(p50 > 0.0, "{json}");
    // The table goes to stderr with --json.
    assert!(
        stderr.contains("delivered_bytes_per_relay_cpu_second"),
        "{stderr}"
    );
}

/// `--url ws://…`: the viewers watch over a WebSocket on the relay's HTTP listener while the
/// publisher uses WebTransport (`--publish-url`); everything arrives, and the relay counts the
/// viewers as WebSocket sessions.
#[test]
fn websocket_viewers() {
    let relay = Relay::start();
    let ws = format!("ws://{}/bench", relay.addrs.http);
    let publish = relay.addrs.url("/bench");
    let mut args = vec!["--url", ws.as_str(), "--publish-url", publish.as_str()];
    let tls = relay.addrs.tls_args();
    args.extend(tls.iter().map(String::as_str));
    args.extend([
        "--preset",
        "sd",
        "--subscribers",
        "5",
        "--duration",
        "3",
        "--json",
    ]);
    let (stdout, stderr) = bench(&args);
    let json = last_json(&stdout, &stderr);
    let expected = 5.0 * 3.0;
    let delivered = num(&json, "delivered_mbps");
    assert!(
        (delivered - expected).abs() <= expected * 0.5,
        "delivered {delivered} Mbps over WebSocket, expected about {expected}: {json}"
    );
    assert_little_loss(&json);
    let response = test_support::http::get_blocking(relay.addrs.internal(), "/metrics").unwrap();
    let metrics = response.body;
    let accepted = metrics
        .lines()
        .find(|l| {
            l.starts_with("moq_relay_transport_sessions_accepted_total{transport=\"websocket\"}")
        })
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok());
    assert_eq!(accepted, Some(5.0), "{metrics}");
}
