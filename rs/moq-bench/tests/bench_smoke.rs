//! `moq-bench` against our relay: 10 subscribers of the `sd` preset for 3 s; the JSON summary
//! must show the full 30 Mbps delivered, no loss, latencies, and the relay's CPU and RSS.
//!
//! The relay binary comes from the same target directory: `cargo build -p moq-relay` first
//! (`cargo test --workspace` builds it).

use std::io::Read;
use std::net::{TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills and reaps its child on drop, so a failing assertion leaves no relay behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free for both UDP (QUIC) and TCP (the relay's HTTP listener) right now.
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

#[test]
fn sd_preset_through_our_relay() {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_moq-bench"));
    let relay_bin = bench.with_file_name("moq-relay");
    assert!(
        relay_bin.exists(),
        "{} is missing: build it with `cargo build -p moq-relay` (cargo test --workspace does)",
        relay_bin.display()
    );

    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let relay = Killed(
        Command::new(&relay_bin)
            .args([
                "--listen",
                &addr,
                "--tls-generate",
                "localhost",
                "--auth-public",
                "",
                "--web-http-listen",
                &addr,
            ])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moq-relay"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "relay did not start");
        std::thread::sleep(Duration::from_millis(20));
    }

    let child = Command::new(&bench)
        .args([
            "--url",
            &format!("http://{addr}/bench"),
            "--preset",
            "sd",
            "--subscribers",
            "10",
            "--duration",
            "3",
            "--relay-pid",
            &relay.0.id().to_string(),
            "--json",
            "--log-level",
            "error",
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start moq-bench");
    let mut bench_child = Killed(child);
    // The output is a few lines: the pipes cannot fill up while we poll.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = bench_child.0.try_wait().expect("wait for moq-bench") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "moq-bench did not finish in 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    bench_child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    bench_child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "moq-bench failed: {stderr}");

    let json: serde_json::Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {stdout}\n{stderr}"));
    let num = |k: &str| {
        json[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k} missing or not a number in {json}"))
    };

    let expected = 10.0 * 3.0;
    let delivered = num("delivered_mbps");
    assert!(
        (delivered - expected).abs() <= expected * 0.5,
        "delivered {delivered} Mbps, expected about {expected}: {json}"
    );
    assert!(num("loss_pct") < 1.0, "loss: {json}");
    assert!(num("latency_p50_ms") > 0.0, "{json}");
    assert!(num("latency_p99_ms") > 0.0, "{json}");
    assert!(num("relay_cpu_seconds") > 0.0, "{json}");
    assert!(num("relay_rss_mb") > 0.0, "{json}");
    drop(relay);
}
