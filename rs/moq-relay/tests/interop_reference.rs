//! The public reference clients through OUR relay: the reference `moq-clock` 0.10 (it speaks
//! lite-01..03), the reference `moq` CLI 0.14 (lite-06 by default, lite-05 and lite-02 when asked) publishing ffmpeg
//! fMP4 and exporting it again, and a key and token made by the reference `moq-token` CLI.
//!
//! The peers are installed by `scripts/install-peers.sh` into `$MOQ_PEERS_DIR`
//! (default `~/.cache/moq-interop`); ffmpeg by `scripts/test.sh`. A missing peer fails the test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use test_support::relay::{RelayAddrs, RelayOptions};
use test_support::Run;

fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.exists())
    });
    found.unwrap_or_else(|| {
        panic!("{name} is missing: scripts/test.sh installs it (apt-get install ffmpeg)")
    })
}

/// Start our relay (anonymous everywhere unless `args` say otherwise) on ports it chooses, as
/// child "relay". The reference clients skip certificate verification: they use its `https://`
/// URLs without the fingerprint.
fn relay(procs: &mut Run, args: &[&str]) -> RelayAddrs {
    let options = RelayOptions::new().args(args.iter().copied());
    procs.start_relay(
        "relay",
        Path::new(env!("CARGO_BIN_EXE_moq-relay")),
        &options,
    )
}

/// Lines of a child's stdout, on a channel.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Wait for `n` clock lines (`YYYY-MM-DD HH:MM:SS`) and return them.
fn clock_lines(rx: &mpsc::Receiver<String>, n: usize, procs: &Run, who: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut got = Vec::new();
    while got.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if is_clock(&line) => got.push(line),
            Ok(_) => {}
            Err(_) => panic!("{who}: only {got:?} after 15 s\n{}", procs.logs()),
        }
    }
    got
}

fn is_clock(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() == 19
        && line.chars().enumerate().all(|(i, c)| match i {
            4 | 7 => c == '-',
            10 => c == ' ',
            13 | 16 => c == ':',
            _ => c.is_ascii_digit(),
        })
}

fn ref_clock(
    procs: &mut Run,
    name: &str,
    url: &str,
    broadcast: &str,
    version: Option<&str>,
    command: &str,
) -> mpsc::Receiver<String> {
    let mut cmd = Command::new(test_support::peers::binary("clock-0.10.21", "moq-clock"));
    cmd.args([
        "--url",
        url,
        "--broadcast",
        broadcast,
        "--tls-disable-verify",
    ]);
    if let Some(v) = version {
        cmd.args(["--client-version", v]);
    }
    cmd.arg(command).stdout(Stdio::piped());
    lines(procs.spawn(name, &mut cmd))
}

/// Reference clock publisher and subscribers through our relay, lite-03 and lite-02 mixed.
#[test]
fn reference_clocks_through_our_relay() {
    let mut procs = Run::new("clock");
    let relay = relay(&mut procs, &["--auth-public", ""]);
    let url = relay.url("/anon");
    let _publisher = ref_clock(
        &mut procs,
        "publisher-lite03",
        &url,
        "clock",
        Some("moq-lite-03"),
        "publish",
    );
    let lite03 = ref_clock(
        &mut procs,
        "subscriber-lite03",
        &url,
        "clock",
        Some("moq-lite-03"),
        "subscribe",
    );
    let lite02 = ref_clock(
        &mut procs,
        "subscriber-lite02",
        &url,
        "clock",
        Some("moq-lite-02"),
        "subscribe",
    );
    clock_lines(&lite03, 3, &procs, "lite-03 subscriber");
    clock_lines(&lite02, 3, &procs, "lite-02 subscriber");

    // And a lite-02 publisher, read over lite-03.
    let _publisher02 = ref_clock(
        &mut procs,
        "publisher-lite02",
        &url,
        "clock02",
        Some("moq-lite-02"),
        "publish",
    );
    let sub = ref_clock(
        &mut procs,
        "subscriber2-lite03",
        &url,
        "clock02",
        Some("moq-lite-03"),
        "subscribe",
    );
    clock_lines(&sub, 3, &procs, "lite-03 subscriber of a lite-02 publisher");
    let relay_log = procs.log("relay");
    assert!(
        relay_log.contains("moq-lite-02") && relay_log.contains("moq-lite-03"),
        "both versions negotiated\n{relay_log}"
    );
}

/// The reference `moq` CLI publishes live ffmpeg fMP4 through our relay, and exports it back out
/// (once over lite-05, once over lite-02): the result is a playable H.264 fMP4.
#[test]
fn reference_moq_cli_fmp4_through_our_relay() {
    let ffmpeg = tool("ffmpeg");
    let ffprobe = tool("ffprobe");
    let moq = test_support::peers::binary("cli-0.14.10", "moq");
    let mut procs = Run::new("cli");
    let relay = relay(&mut procs, &["--auth-public", ""]);
    let url = relay.url("/anon");

    let mut source = Command::new(ffmpeg);
    source
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
        ])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-g",
            "30",
            "-pix_fmt",
            "yuv420p",
        ])
        .args([
            "-f",
            "mp4",
            "-movflags",
            "cmaf+separate_moof+delay_moov+skip_trailer+frag_every_frame",
            "-",
        ])
        .stdout(Stdio::piped());
    let stdout = procs.spawn("ffmpeg", &mut source).stdout.take().unwrap();
    let mut publish = Command::new(&moq);
    publish
        .args([
            "--connect",
            &url,
            "--connect-tls-insecure",
            "import",
            "--broadcast",
            "bbb.hang",
            "fmp4",
        ])
        .stdin(Stdio::from(stdout))
        .stdout(Stdio::null());
    procs.spawn("moq-publish", &mut publish);

    for version in ["moq-lite-06", "moq-lite-05", "moq-lite-02"] {
        let out = procs.path(&format!("out-{version}.mp4"));
        let mut export = Command::new(&moq);
        export
            .args([
                "--connect",
                &url,
                "--connect-tls-insecure",
                "--connect-version",
                version,
            ])
            .args(["export", "--broadcast", "bbb.hang", "fmp4"])
            .stdout(std::fs::File::create(&out).unwrap());
        let name = format!("moq-export-{version}");
        procs.spawn(&name, &mut export);
        // Give it a few seconds of live video.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
            if size > 100_000 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{version}: only {size} bytes exported\n{}",
                procs.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let probe = Command::new(&ffprobe)
            .args([
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-count_packets",
                "-show_entries",
                "stream=codec_name,width,height,nb_read_packets",
                "-of",
                "csv=p=0",
            ])
            .arg(&out)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&probe.stdout).to_string();
        assert!(
            text.starts_with("h264,320,240,"),
            "{version}: ffprobe says {text:?} {}\n{}",
            String::from_utf8_lossy(&probe.stderr),
            procs.logs()
        );
        let packets: u64 = text
            .trim()
            .rsplit(',')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(packets >= 30, "{version}: only {packets} video packets");
        // The reference logs the version it negotiated with our relay (ALPN / WT protocol).
        assert!(
            procs
                .log(&name)
                .contains(&format!("connected version={version}")),
            "{version}: not negotiated\n{}",
            procs.log(&name)
        );
    }
    // Unpinned, the reference CLI and our relay settle on lite-06.
    assert!(
        procs
            .log("moq-publish")
            .contains("connected version=moq-lite-06"),
        "{}",
        procs.log("moq-publish")
    );
}

/// A key and a token made by the reference `moq-token` CLI are accepted by our relay, and the
/// token's permissions hold (a path outside `root` is refused).
#[test]
fn reference_token_is_accepted() {
    let token_cli = test_support::peers::binary("token-cli-0.5.48", "moq-token");
    let mut procs = Run::new("token");
    let key = procs.path("root.jwk");
    let public = procs.path("public.jwk");
    let status = Command::new(&token_cli)
        .args(["generate", "--algorithm", "ES256", "--out"])
        .arg(&key)
        .arg("--public")
        .arg(&public)
        .status()
        .unwrap();
    assert!(status.success(), "reference moq-token generate failed");
    let output = Command::new(&token_cli)
        .args(["sign", "--key"])
        .arg(&key)
        .args(["--root", "demo", "--publish", "", "--subscribe", ""])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "reference moq-token sign failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_string();

    let relay = relay(&mut procs, &["--auth-key", public.to_str().unwrap()]);
    let good = relay.url(&format!("/demo?jwt={token}"));
    let _publisher = ref_clock(&mut procs, "publisher", &good, "clock", None, "publish");
    let sub = ref_clock(
        &mut procs,
        "subscriber",
        &good,
        "clock",
        Some("moq-lite-02"),
        "subscribe",
    );
    clock_lines(&sub, 2, &procs, "subscriber with a reference token");

    // Outside the token's root, and without a token: refused with 401 (the reference client
    // keeps retrying, so we watch the relay's log and the client's silence).
    for (name, url, path) in [
        (
            "refused-root",
            relay.url(&format!("/other?jwt={token}")),
            "/other",
        ),
        ("refused-anon", relay.url("/demo"), "/demo"),
    ] {
        let mut cmd = Command::new(test_support::peers::binary("clock-0.10.21", "moq-clock"));
        cmd.args([
            "--url",
            &url,
            "--broadcast",
            "clock",
            "--tls-disable-verify",
            "subscribe",
        ])
        .stdout(Stdio::piped());
        let rx = lines(procs.spawn(name, &mut cmd));
        let want = format!("path=\"{path}\"");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = procs.log("relay");
            if log
                .lines()
                .any(|l| l.contains("refusing WebTransport session: 401") && l.contains(&want))
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{url} was not refused\n{}",
                procs.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            !rx.try_iter().any(|l| is_clock(&l)),
            "{url} printed the clock"
        );
    }
}

#[test]
fn clock_lines_are_recognised() {
    assert!(is_clock("2026-11-27 19:29:52"));
    assert!(!is_clock("2026-11-27 19:29:5"));
    assert!(!is_clock("INFO connecting"));
    let _ = Path::new("");
}
