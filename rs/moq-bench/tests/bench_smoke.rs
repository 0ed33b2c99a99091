//! `moq-bench` against our real relay, with small loads (a few subscribers, 2–3 s): the JSON
//! lines interface, a TOML preset file, announce churn, publisher and subscribers as separate
//! processes, and `compare` with the same relay on both sides.
//!
//! The relay binary comes from the same target directory: `cargo build -p moq-relay` first
//! (`cargo test --workspace` builds it).

use std::io::Read;
use std::net::{TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Kills and reaps its child on drop, so a failing assertion leaves no process behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free for both UDP (QUIC) and TCP (the relay's HTTP listener) right now, never handed
/// out twice by this process (the tests run in parallel).
fn free_port() -> u16 {
    static TAKEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
            if !taken.contains(&port) {
                taken.push(port);
                return port;
            }
        }
    }
}

fn bench_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_moq-bench"))
}

fn relay_bin() -> PathBuf {
    let relay = bench_bin().with_file_name("moq-relay");
    assert!(
        relay.exists(),
        "{} is missing: build it with `cargo build -p moq-relay` (cargo test --workspace does)",
        relay.display()
    );
    relay
}

/// The relay's arguments for a self-signed certificate on UDP `addr`, fingerprint on TCP `addr`.
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

/// Our relay on a free port, once it accepts TCP (its HTTP listener); and its address. A relay
/// that exits right away (its port was taken meanwhile) is retried on another port.
fn start_relay() -> (Killed, String) {
    start_relay_with(&[])
}

/// [`start_relay`] with more arguments.
fn start_relay_with(extra: &[&str]) -> (Killed, String) {
    for _ in 0..3 {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut relay = Killed(
            Command::new(relay_bin())
                .args(relay_args(&addr))
                .args(extra)
                .env_remove("RUST_LOG")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start moq-relay"),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&addr).is_err() && relay.0.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "relay did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        if relay.0.try_wait().unwrap().is_none() {
            return (relay, addr);
        }
    }
    panic!("the relay exited at start three times");
}

/// [`start_relay`] with its internal listener on: the relay, a bench URL on it, and its
/// `/metrics` URL.
fn start_relay_with_metrics() -> (Killed, String, String) {
    let internal = format!("127.0.0.1:{}", free_port());
    let (relay, addr) = start_relay_with(&["--internal-listen", &internal]);
    (
        relay,
        format!("http://{addr}/bench"),
        format!("http://{internal}/metrics"),
    )
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

/// A `compare` relay command: our relay on `{port}`, started with `exec {prefix}…` (`prefix` may
/// be empty, or e.g. `env VAR=value `).
fn relay_command(prefix: &str) -> String {
    let mut cmd = format!("exec {prefix}'{}'", relay_bin().display());
    for arg in relay_args("127.0.0.1:{port}") {
        cmd += &format!(" '{arg}'");
    }
    cmd
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

#[test]
fn sd_preset_json_lines() {
    let (relay, addr) = start_relay();
    let pid = relay.0.id().to_string();
    let url = format!("http://{addr}/bench");
    let (stdout, stderr) = bench(&[
        "--url",
        &url,
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
    // Loopback, light load: nothing may be lost.
    assert_eq!(num(&json, "loss_pct"), 0.0, "{json}");
    assert_eq!(num(&json, "frames_lost"), 0.0, "{json}");
    assert_eq!(num(&json, "groups_lost"), 0.0, "{json}");
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
    assert_eq!(json["version"], "moq-lite-05", "{json}");
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
    let (relay, url, metrics) = start_relay_with_metrics();
    let (stdout, stderr) = bench(&[
        "--url",
        &url,
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
    assert_eq!(num(&json, "relay_packets_lost_per_s"), 0.0, "{json}");
    assert!(stderr.contains("relay QUIC /s"), "{stderr}");

    drop(relay);
}

/// moq-bench closes its sessions on the way out and waits for the closes to leave, so the relay
/// has none left a moment later (not at its 10 s idle timeout: without the wait, tens of 150
/// sessions stayed on).
#[test]
fn sessions_end_on_the_relay_when_moq_bench_exits() {
    let (relay, url, metrics) = start_relay_with_metrics();
    bench(&[
        "--url",
        &url,
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
        let sessions = live_sessions(&metrics);
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

/// `moq_relay_sessions` from a relay's `/metrics` (`http://ADDR/metrics`).
fn live_sessions(metrics: &str) -> f64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = runtime
        .block_on(moq_native::http_get(
            metrics,
            16 << 20,
            Duration::from_secs(5),
        ))
        .unwrap_or_else(|err| panic!("GET {metrics}: {err}"));
    let body = String::from_utf8_lossy(&body);
    body.lines()
        .find_map(|line| line.strip_prefix("moq_relay_sessions "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no moq_relay_sessions in {body}"))
}

#[test]
fn preset_file_is_honoured() {
    let dir = std::env::temp_dir().join(format!("moq-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("presets.toml");
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

    let (relay, addr) = start_relay();
    let url = format!("http://{addr}/bench");
    let (stdout, stderr) = bench(&[
        "--url",
        &url,
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
    assert_eq!(num(&json, "loss_pct"), 0.0, "{json}");
    let _ = std::fs::remove_dir_all(&dir);
    drop(relay);
}

#[test]
fn churn_preset_counts_announcements() {
    let (relay, addr) = start_relay();
    let url = format!("http://{addr}/bench");
    let (stdout, stderr) = bench(&[
        "--url",
        &url,
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
    assert_eq!(num(&json, "loss_pct"), 0.0, "{json}");
    assert!(num(&json, "latency_p50_ms") > 0.0, "{json}");
    // Broadcasts live 2 s: those started in the first second ended while we watched.
    assert!(num(&json, "unannounces_received") > 0.0, "{json}");
    drop(relay);
}

#[test]
fn publisher_and_subscribers_in_separate_processes() {
    let (relay, addr) = start_relay();
    let url = format!("http://{addr}/bench");
    let publisher = spawn_bench(&[
        "--url",
        &url,
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
    let (stdout, stderr) = bench(&[
        "--url",
        &url,
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
    assert!(num(&json, "loss_pct") < 1.0, "{json}");
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
            assert_eq!(num(run, "loss_pct"), 0.0, "{run}");
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
    let logs = std::env::temp_dir().join(format!("moq-bench-at-once-{}", std::process::id()));
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
    let _ = std::fs::remove_dir_all(&logs);
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
        assert_eq!(num(&runs[0], "loss_pct"), 0.0, "{}", runs[0]);
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
