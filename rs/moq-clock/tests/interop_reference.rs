//! Interop: our `moq-clock` publisher and subscriber through the public reference relay
//! (`moq-relay` from crates.io), for every protocol generation it speaks.
//!
//! The relays are installed outside the repository by `scripts/install-peers.sh` into
//! `$MOQ_PEERS_DIR` (default `$HOME/.cache/moq-interop`) as `relay-<version>/bin/moq-relay`; a
//! missing binary fails the test (run the script). Every test starts its own relay on a free port,
//! our publisher, then our subscriber on a unique broadcast, and waits for live clock lines.
//!
//! Debugging: `MOQ_INTEROP_RUST_LOG=debug` sets `RUST_LOG` for every child (relay included);
//! `MOQ_INTEROP_KEEP_LOGS=1` keeps the children's logs (their paths are printed). On failure the
//! tail of each child's log is printed either way.

use std::{
    fs::File,
    io::{BufRead, BufReader, Read, Seek, SeekFrom},
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use test_support::ports::{free_port, listens};

/// Our binary under test.
const CLOCK: &str = env!("CARGO_BIN_EXE_moq-clock");

/// How long the subscriber gets to print live lines, from its start.
const LINES_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a relay gets to start listening.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines kept from each child's log for failure reports.
const LOG_TAIL_LINES: usize = 40;

/// A reference relay release and how to run it.
#[derive(Clone, Copy, Debug)]
enum Relay {
    /// 0.17.x: `--listen`, negotiates lite-05 by default, `--listen-version` pins one.
    V0_17,
    /// 0.10.x: `--server-bind`, lite-01/02 through the compat SETUP (ALPN `moql`); its
    /// moq-lite 0.15 also speaks lite-03/04, which it prefers unless `--server-version` pins one.
    V0_10,
}

impl Relay {
    fn version(self) -> &'static str {
        match self {
            Relay::V0_17 => "0.17.10",
            Relay::V0_10 => "0.10.25",
        }
    }

    /// The installed binary; panics with the fix when it is missing.
    fn binary(self) -> PathBuf {
        test_support::peers::binary(&format!("relay-{}", self.version()), "moq-relay")
    }

    /// Command-line arguments to serve QUIC + WebTransport on `port` (UDP) and the certificate
    /// fingerprint over HTTP on the same port number (TCP), anonymous access everywhere.
    fn args(self, port: u16, pinned: Option<&str>) -> Vec<String> {
        let addr = format!("127.0.0.1:{port}");
        let mut args: Vec<String> = match self {
            Relay::V0_17 => vec![
                "--listen",
                &addr,
                "--listen-tls-generate",
                "localhost",
                "--auth-public",
                "**",
            ],
            Relay::V0_10 => vec![
                "--server-bind",
                &addr,
                "--tls-generate",
                "localhost",
                "--auth-public",
                "",
            ],
        }
        .into_iter()
        .map(String::from)
        .collect();
        args.extend(["--web-http-listen".to_string(), addr]);
        if let Some(version) = pinned {
            let flag = match self {
                Relay::V0_17 => "--listen-version",
                Relay::V0_10 => "--server-version",
            };
            args.extend([flag.to_string(), version.to_string()]);
        }
        args
    }
}

/// How our clients reach the relay.
#[derive(Clone, Copy, Debug)]
enum Transport {
    /// `http://127.0.0.1:P/anon`: fetch the certificate fingerprint, then WebTransport.
    WebTransport,
    /// `moql://HOST:P/anon` with `--tls-disable-verify`: raw QUIC, the path in SETUP.
    /// HOST is `127.0.0.1`, or `localhost` for 0.10.x, which refuses raw QUIC without a TLS
    /// server name ("missing server name for raw QUIC connection") and IP literals send none.
    RawQuic(&'static str),
}

/// One interop case.
struct Case {
    name: &'static str,
    relay: Relay,
    /// `--listen-version` / `--server-version` for the relay.
    relay_version: Option<&'static str>,
    transport: Transport,
    /// `--client-protocol` for our clients (None = our defaults).
    client_protocol: Option<&'static str>,
    /// The version both our clients must report (`version=…` in their logs).
    expect_version: &'static str,
    /// Strings the relay's log must contain once both clients are connected.
    expect_relay_log: &'static [&'static str],
}

/// A child process that is killed and reaped on drop (panics included), its log file printed
/// (tail) on panic and deleted unless `MOQ_INTEROP_KEEP_LOGS` is set.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Spawn `program` with stderr (and stdout unless `pipe_stdout`) to a fresh log file.
    fn spawn(name: String, program: &std::ffi::OsStr, args: &[String], pipe_stdout: bool) -> Proc {
        let log =
            std::env::temp_dir().join(format!("moq-interop-{}-{name}.log", std::process::id()));
        let file =
            File::create(&log).unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stderr(file.try_clone().expect("clone log file handle"))
            .stdout(if pipe_stdout {
                Stdio::piped()
            } else {
                Stdio::from(file)
            })
            .current_dir(std::env::temp_dir())
            // Plain logs we can grep; no inherited configuration (the relays read MOQ_* too).
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            // An error a child returns from main is printed with its message, not buried under a
            // captured backtrace longer than the log tail we print (panics keep theirs).
            .env("RUST_LIB_BACKTRACE", "0");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("MOQ_") {
                cmd.env_remove(key);
            }
        }
        if let Some(level) = std::env::var_os("MOQ_INTEROP_RUST_LOG") {
            cmd.env("RUST_LOG", level);
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            let _ = std::fs::remove_file(&log);
            panic!("cannot start {name} ({}): {e}", program.to_string_lossy())
        });
        Proc { name, child, log }
    }

    /// The log so far, with any ANSI colour codes removed.
    fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        strip_ansi(&text)
    }

    /// Panic (with the log tail, via drop) if the process has exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited early ({status})", self.name);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "----- {} log tail ({}) -----",
                self.name,
                self.log.display()
            );
            eprintln!("{}", tail(&self.log, LOG_TAIL_LINES));
        }
        if std::env::var_os("MOQ_INTEROP_KEEP_LOGS").is_some() {
            eprintln!("{} log kept: {}", self.name, self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// The last `n` lines of a file (reading at most its last 64 KiB).
fn tail(path: &Path, n: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return "(no log)".into();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = strip_ansi(&String::from_utf8_lossy(&bytes));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Remove `ESC [ … letter` sequences.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Start the relay on a free port and wait until it has bound it (UDP and TCP).
/// A relay that exits before listening (the port got taken meanwhile) is retried on another port.
fn start_relay(case: &Case) -> (Proc, u16) {
    const ATTEMPTS: usize = 3;
    let binary = case.relay.binary();
    for attempt in 1..=ATTEMPTS {
        let port = free_port();
        let name = format!("relay-{}-{}-{port}", case.relay.version(), case.name);
        let mut relay = Proc::spawn(
            name,
            binary.as_os_str(),
            &case.relay.args(port, case.relay_version),
            false,
        );
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + LISTEN_TIMEOUT;
        loop {
            if let Ok(Some(status)) = relay.child.try_wait() {
                if attempt < ATTEMPTS {
                    eprintln!(
                        "[{}] relay exited before listening ({status}): {}",
                        case.name,
                        tail(&relay.log, 5)
                    );
                    break;
                }
                relay.assert_running();
            }
            // Bound by this relay: a connection alone could reach another test's server that
            // took the port first, while this relay is about to exit.
            if listens(relay.child.id(), port) {
                return (relay, port);
            }
            assert!(
                Instant::now() < deadline,
                "the relay did not listen on {addr} within {LISTEN_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    unreachable!("the last attempt returns or panics")
}

/// Arguments for one of our clients.
fn clock_args(case: &Case, port: u16, broadcast: &str, command: &str) -> Vec<String> {
    let mut args = Vec::new();
    match case.transport {
        Transport::WebTransport => {
            args.extend(["--url".into(), format!("http://127.0.0.1:{port}/anon")])
        }
        Transport::RawQuic(host) => {
            args.extend(["--url".into(), format!("moql://{host}:{port}/anon")]);
            args.push("--tls-disable-verify".into());
        }
    }
    if let Some(protocol) = case.client_protocol {
        args.extend(["--client-protocol".into(), protocol.into()]);
    }
    args.extend([
        "--broadcast".into(),
        broadcast.into(),
        "--log-level".into(),
        "info".into(),
    ]);
    args.push(command.into());
    args
}

/// `YYYY-MM-DD HH:MM:SS` → seconds since the Unix epoch (UTC), or None if the line is not one.
fn parse_clock_line(line: &str) -> Option<i64> {
    let b = line.as_bytes();
    let shape = b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return None;
    }
    let num = |range: std::ops::Range<usize>| line[range].parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// A clock line and when it arrived.
struct Line {
    text: String,
    at: Instant,
}

/// Run one case: relay, publisher, subscriber; assert live clock lines and the negotiated version.
fn run(case: Case) {
    let started = Instant::now();
    let (mut relay, port) = start_relay(&case);
    let broadcast = format!("interop-{}-{}-{port}", case.name, std::process::id());

    let mut publisher = Proc::spawn(
        format!("publisher-{}-{port}", case.name),
        CLOCK.as_ref(),
        &clock_args(&case, port, &broadcast, "publish"),
        false,
    );
    let mut subscriber = Proc::spawn(
        format!("subscriber-{}-{port}", case.name),
        CLOCK.as_ref(),
        &clock_args(&case, port, &broadcast, "subscribe"),
        true,
    );

    // Lines arrive on a channel so the wait is bounded; the reader ends when the child dies.
    let stdout = subscriber.child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    // Success: at least 3 clock lines, the last two one second apart in content, the last one
    // delivered live (≥ 0.5 s after the previous one, so not just the replay of the minute's
    // group that a joining subscriber gets first) and close to our own clock.
    let deadline = Instant::now() + LINES_TIMEOUT;
    let mut lines: Vec<Line> = Vec::new();
    let mut other: Vec<String> = Vec::new();
    loop {
        let now = Instant::now();
        assert!(
            now < deadline,
            "[{}] no live clock lines within {LINES_TIMEOUT:?}: got {:?}, other stdout {other:?}",
            case.name,
            lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>()
        );
        relay.assert_running();
        publisher.assert_running();
        subscriber.assert_running();
        let line = match rx.recv_timeout((deadline - now).min(Duration::from_millis(250))) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Its stdout closed: it is exiting. Say how it ended.
                let status = test_support::wait::until(
                    "the subscriber exits after closing its stdout",
                    Duration::from_secs(5),
                    || subscriber.child.try_wait().ok().flatten(),
                    String::new,
                );
                panic!("[{}] subscriber closed its stdout ({status})", case.name);
            }
        };
        if parse_clock_line(&line).is_none() {
            other.push(line);
            continue;
        }
        lines.push(Line {
            text: line,
            at: Instant::now(),
        });
        if let [.., prev, last] = &lines[..] {
            let (p, l) = (
                parse_clock_line(&prev.text).unwrap(),
                parse_clock_line(&last.text).unwrap(),
            );
            let wall = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            if lines.len() >= 3
                && l - p == 1
                && last.at - prev.at >= Duration::from_millis(500)
                && (l - wall).abs() <= 2
            {
                break;
            }
        }
    }

    // The negotiated version, as our clients report it …
    for client in [&publisher, &subscriber] {
        let log = client.log_text();
        let expected = format!("version={}", case.expect_version);
        assert!(
            log.lines()
                .any(|l| l.contains(&expected) && l.contains("moq_clock")),
            "[{}] {} did not log {expected:?}",
            case.name,
            client.name
        );
    }
    // … and as the relay logs it.
    let relay_log = relay.log_text();
    for expected in case.expect_relay_log {
        assert!(
            relay_log.contains(expected),
            "[{}] the relay log lacks {expected:?}",
            case.name
        );
    }

    // The subscriber prints clock lines only.
    assert!(
        other.is_empty(),
        "[{}] unexpected subscriber output: {other:?}",
        case.name
    );

    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    eprintln!(
        "[{}] ok in {:.1?} with moq-relay {} ({}): {} lines, last {:?}",
        case.name,
        started.elapsed(),
        case.relay.version(),
        case.expect_version,
        texts.len(),
        &texts[texts.len() - 3..]
    );
    // Children are killed and reaped by their guards (subscriber, publisher, then relay).
    drop(subscriber);
    drop(publisher);
    drop(relay);
}

#[test]
fn clock_line_parser() {
    assert_eq!(parse_clock_line("1970-01-01 00:00:00"), Some(0));
    assert_eq!(parse_clock_line("2026-11-27 18:36:00"), Some(1_795_804_560));
    assert_eq!(parse_clock_line("2024-02-29 00:00:01"), Some(1_709_164_801));
    assert_eq!(parse_clock_line("2024-02-29 00:00:1"), None);
    assert_eq!(parse_clock_line("2024-02-29T00:00:01"), None);
    assert_eq!(parse_clock_line(" 2024-02-29 00:00:01"), None);
}

/// (a) 0.17.10 defaults, WebTransport: negotiates lite-06, the newest both speak.
#[test]
fn relay_0_17_webtransport_lite06() {
    run(Case {
        name: "a-0.17-wt-lite06",
        relay: Relay::V0_17,
        relay_version: None,
        transport: Transport::WebTransport,
        client_protocol: None,
        expect_version: "moq-lite-06",
        expect_relay_log: &["negotiated version=moq-lite-06"],
    });
}

/// (b) 0.17.10 defaults, raw QUIC: lite-06 with the path (`/anon`) in the SETUP Path parameter.
#[test]
fn relay_0_17_raw_quic_lite06() {
    run(Case {
        name: "b-0.17-quic-lite06",
        relay: Relay::V0_17,
        relay_version: None,
        transport: Transport::RawQuic("127.0.0.1"),
        client_protocol: None,
        expect_version: "moq-lite-06",
        // root=anon: the relay took the path from our SETUP (raw QUIC has no URL).
        expect_relay_log: &["negotiated version=moq-lite-06", "root=anon"],
    });
}

/// (c) 0.17.10 pinned to lite-04, our clients offering only lite-04.
#[test]
fn relay_0_17_webtransport_lite04() {
    run(Case {
        name: "c-0.17-wt-lite04",
        relay: Relay::V0_17,
        relay_version: Some("moq-lite-04"),
        transport: Transport::WebTransport,
        client_protocol: Some("moq-lite-04"),
        expect_version: "moq-lite-04",
        expect_relay_log: &["negotiated version=moq-lite-04"],
    });
}

/// (d) 0.17.10 pinned to lite-03, our clients offering only lite-03.
#[test]
fn relay_0_17_webtransport_lite03() {
    run(Case {
        name: "d-0.17-wt-lite03",
        relay: Relay::V0_17,
        relay_version: Some("moq-lite-03"),
        transport: Transport::WebTransport,
        client_protocol: Some("moq-lite-03"),
        expect_version: "moq-lite-03",
        expect_relay_log: &["negotiated version=moq-lite-03"],
    });
}

/// (e) 0.10.25 pinned to lite-02, WebTransport, our default offer: the relay picks `moql` and the
/// compat SETUP settles lite-02.
#[test]
fn relay_0_10_webtransport_lite02() {
    run(Case {
        name: "e-0.10-wt-lite02",
        relay: Relay::V0_10,
        relay_version: Some("moq-lite-02"),
        transport: Transport::WebTransport,
        client_protocol: None,
        expect_version: "moq-lite-02",
        expect_relay_log: &["negotiated version=moq-lite-02"],
    });
}

/// (f) 0.10.25 pinned to lite-02, raw QUIC (ALPN `moql`, compat SETUP), our default offer.
#[test]
fn relay_0_10_raw_quic_lite02() {
    run(Case {
        name: "f-0.10-quic-lite02",
        relay: Relay::V0_10,
        relay_version: Some("moq-lite-02"),
        transport: Transport::RawQuic("localhost"),
        client_protocol: None,
        expect_version: "moq-lite-02",
        expect_relay_log: &["negotiated version=moq-lite-02"],
    });
}

/// (g) 0.10.25 unpinned, our clients offering only `moql`: the relay picks lite-02 from our
/// compat SETUP list (lite-02, lite-01).
#[test]
fn relay_0_10_webtransport_moql_only() {
    run(Case {
        name: "g-0.10-wt-moql",
        relay: Relay::V0_10,
        relay_version: None,
        transport: Transport::WebTransport,
        client_protocol: Some("moql"),
        expect_version: "moq-lite-02",
        expect_relay_log: &["negotiated version=moq-lite-02"],
    });
}

/// (h) 0.10.25 unpinned with our default offer: its moq-lite 0.15 also speaks lite-04, an
/// older implementation of it than 0.17's.
#[test]
fn relay_0_10_webtransport_default_lite04() {
    run(Case {
        name: "h-0.10-wt-lite04",
        relay: Relay::V0_10,
        relay_version: None,
        transport: Transport::WebTransport,
        client_protocol: None,
        expect_version: "moq-lite-04",
        expect_relay_log: &["negotiated version=moq-lite-04"],
    });
}

/// (i) 0.10.25 pinned to lite-01 (SUBSCRIBE_OK carries a priority).
#[test]
fn relay_0_10_webtransport_lite01() {
    run(Case {
        name: "i-0.10-wt-lite01",
        relay: Relay::V0_10,
        relay_version: Some("moq-lite-01"),
        transport: Transport::WebTransport,
        client_protocol: None,
        expect_version: "moq-lite-01",
        expect_relay_log: &["negotiated version=moq-lite-01"],
    });
}

/// (j) 0.17.10 pinned to lite-02: the compat SETUP against the current relay, WebTransport.
#[test]
fn relay_0_17_webtransport_lite02() {
    run(Case {
        name: "j-0.17-wt-lite02",
        relay: Relay::V0_17,
        relay_version: Some("moq-lite-02"),
        transport: Transport::WebTransport,
        client_protocol: None,
        expect_version: "moq-lite-02",
        expect_relay_log: &["negotiated version=moq-lite-02"],
    });
}

/// (k) 0.17.10 pinned to lite-02 over raw QUIC (ALPN `moql`).
#[test]
fn relay_0_17_raw_quic_lite02() {
    run(Case {
        name: "k-0.17-quic-lite02",
        relay: Relay::V0_17,
        relay_version: Some("moq-lite-02"),
        transport: Transport::RawQuic("127.0.0.1"),
        client_protocol: None,
        expect_version: "moq-lite-02",
        expect_relay_log: &["negotiated version=moq-lite-02"],
    });
}

/// (l) 0.17.10 pinned to lite-01.
#[test]
fn relay_0_17_webtransport_lite01() {
    run(Case {
        name: "l-0.17-wt-lite01",
        relay: Relay::V0_17,
        relay_version: Some("moq-lite-01"),
        transport: Transport::WebTransport,
        client_protocol: None,
        expect_version: "moq-lite-01",
        expect_relay_log: &["negotiated version=moq-lite-01"],
    });
}
