//! Shared set-up for the relay's integration tests: the real `moq-relay` binary on the ports it
//! chose (`--port-file`), in-process moq-lite clients pinned to its certificate (WebTransport and raw QUIC), a scraper for
//! `/metrics`, a hand-driven lite-05 peer for byte-level tests, and a UDP proxy that can freeze a
//! client's path.
//!
//! Every relay runs in its own temporary directory (its stderr log, key files) that is removed
//! when the [`Relay`] is dropped; the process is killed and reaped then too, also when a test
//! panics, and the tail of its log is printed on failure.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path as FsPath, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moq_lite::{
    BroadcastConsumer, BroadcastProducer, Client, OriginProducer, Path, Session, Track,
    TrackConsumer, TrackInfo, TrackProducer,
};
use moq_native::web_transport_quinn;

/// Upper bound for any single wait in a test.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How long the relay gets to start (bind and answer `/health`).
const START_TIMEOUT: Duration = Duration::from_secs(10);

pub use test_support::ports::{free_port, PortFile};
pub use test_support::Scratch;

/// A TCP port that was free when asked (for listeners that only need TCP).
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub use test_support::process::clean_env;

/// The last `n` lines of a file.
pub fn tail(path: &FsPath, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A running `moq-relay` process. Dropping it kills and reaps the process and removes its files.
pub struct Relay {
    child: Option<Child>,
    /// QUIC (UDP) port.
    pub port: u16,
    /// The address clients dial the QUIC port on (127.0.0.1 unless the test bound another).
    pub host: std::net::IpAddr,
    /// Public HTTP listener.
    pub web: u16,
    /// A port the relay was not told to bind (for configuration values that must not win).
    pub spare: u16,
    /// Internal listener (`/metrics`, `/health`).
    pub internal: u16,
    /// moq over plain TCP (`--tcp-listen`; 0 when the relay was started with its own flags).
    pub tcp: u16,
    /// The HTTPS listener, when started with `--web-https-listen 127.0.0.1:0` (else 0).
    pub https: u16,
    /// SHA-256 of the relay's certificate, from `/certificate.sha256`.
    pub fingerprint: String,
    log: PathBuf,
    /// The relay's temporary directory (log, key files), removed after the process is reaped.
    scratch: Option<Scratch>,
}

/// What to start a relay with. Arguments, file contents and environment values may hold
/// placeholders filled in for each attempt: `{port}` (QUIC, UDP), `{web}` (HTTP), `{internal}`
/// (metrics) for a relay started [`RelayArgs::exactly`], `{spare}` (a port nothing binds) and
/// `{dir}` (the relay's directory).
pub struct RelayArgs {
    args: Vec<String>,
    files: Vec<(String, String)>,
    env: Vec<(String, String)>,
    /// Prepend `--listen`, `--tls-generate`, `--web-http-listen` and `--internal-listen`, all on
    /// port 0, and `--port-file`.
    defaults: bool,
    /// A command the relay runs under (it must exec the relay, keeping its pid), e.g. `unshare`.
    wrapper: Vec<String>,
}

impl RelayArgs {
    /// These flags after the defaults.
    pub fn new(args: &[&str]) -> Self {
        Self {
            args: args.iter().map(|a| a.to_string()).collect(),
            files: Vec::new(),
            env: Vec::new(),
            defaults: true,
            wrapper: Vec::new(),
        }
    }

    /// Run the relay as the last argument of `command` (which must exec it: the relay keeps the
    /// pid the test knows), e.g. in a mount namespace of its own. `{dir}` is the relay's directory.
    pub fn wrapped(mut self, command: &[&str]) -> Self {
        self.wrapper = command.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Exactly these flags: the configuration must bind `{port}`, `{web}` and `{internal}` itself.
    pub fn exactly(args: &[&str]) -> Self {
        Self {
            defaults: false,
            ..Self::new(args)
        }
    }

    /// Write a file into the relay's directory before it starts.
    pub fn file(mut self, name: &str, contents: &str) -> Self {
        self.files.push((name.to_string(), contents.to_string()));
        self
    }

    /// Set an environment variable for the relay.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }
}

impl Relay {
    /// Start an anonymous relay (`--auth-public ""`).
    pub async fn open() -> Self {
        Self::start(RelayArgs::new(&["--auth-public", ""])).await
    }

    /// Start the relay and wait until `/health` answers on the internal listener. With the
    /// default flags it binds port 0 everywhere and reports what it got (`--port-file`); a
    /// configuration of its own binds ports chosen free here, and the start is retried on new ones
    /// when another process took one first.
    pub async fn start(spec: RelayArgs) -> Self {
        let scratch = Scratch::new("relay");
        let dir = scratch.dir().to_str().unwrap().to_string();
        for attempt in 0..5 {
            let spare = free_port();
            let (port, web, internal) = if spec.defaults {
                (0, 0, 0) // learnt from the port file
            } else {
                (free_port(), free_tcp_port(), free_tcp_port())
            };
            let fill = |s: &str| {
                s.replace("{port}", &port.to_string())
                    .replace("{web}", &web.to_string())
                    .replace("{internal}", &internal.to_string())
                    .replace("{spare}", &spare.to_string())
                    .replace("{dir}", &dir)
            };
            for (name, contents) in &spec.files {
                let file = scratch.path(name);
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(file, fill(contents)).unwrap();
            }
            let log = scratch.path(&format!("relay-{attempt}.log"));
            let port_file = scratch.path(&format!("ports-{attempt}.json"));
            let mut cmd = match spec.wrapper.split_first() {
                Some((program, args)) => {
                    let mut cmd = Command::new(fill(program));
                    cmd.args(args.iter().map(|a| fill(a)))
                        .arg(env!("CARGO_BIN_EXE_moq-relay"));
                    cmd
                }
                None => Command::new(env!("CARGO_BIN_EXE_moq-relay")),
            };
            clean_env(&mut cmd);
            if spec.defaults {
                cmd.args(["--listen", "127.0.0.1:0", "--tls-generate", "localhost"])
                    .args(["--web-http-listen", "127.0.0.1:0"])
                    .args(["--internal-listen", "127.0.0.1:0"])
                    .args(["--tcp-listen", "127.0.0.1:0"])
                    .arg("--port-file")
                    .arg(&port_file);
            }
            cmd.args(spec.args.iter().map(|a| fill(a)))
                .envs(spec.env.iter().map(|(k, v)| (k, fill(v))))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap());
            let child = cmd.spawn().expect("cannot start moq-relay");
            let mut relay = Relay {
                child: Some(child),
                port,
                host: std::net::IpAddr::from([127, 0, 0, 1]),
                web,
                internal,
                tcp: 0,
                https: 0,
                spare,
                fingerprint: String::new(),
                log,
                scratch: None,
            };
            if spec.defaults {
                let child = relay.child.as_mut().expect("just started");
                let ports = PortFile::wait(&port_file, START_TIMEOUT, || {
                    child.try_wait().ok().flatten().is_some()
                })
                .unwrap_or_else(|err| panic!("moq-relay: {err}\n{}", relay.log_tail(20)));
                relay.port = ports.addr("quic").port();
                relay.web = ports.addr("http").port();
                relay.internal = ports.addr("internal").port();
                relay.tcp = ports.addr("tcp").port();
                relay.https = ports.get("https").map_or(0, |a| a.port());
            }
            match relay.wait_healthy().await {
                Ok(()) => {
                    let (status, body) = relay
                        .http_get("/certificate.sha256")
                        .await
                        .expect("GET /certificate.sha256");
                    assert_eq!(status, 200);
                    relay.fingerprint = body.trim().to_string();
                    assert_eq!(
                        relay.fingerprint.len(),
                        64,
                        "a hex SHA-256 fingerprint: {body:?}"
                    );
                    relay.scratch = Some(scratch);
                    return relay;
                }
                Err(exited) => {
                    let log = relay.log_tail(20);
                    let taken = log.contains("cannot bind") || log.contains("failed to bind");
                    if exited && taken && !spec.defaults {
                        continue; // Dropping `relay` reaps the process.
                    }
                    panic!("moq-relay did not start (exited: {exited}):\n{log}");
                }
            }
        }
        panic!("moq-relay could not bind free ports in 5 attempts");
    }

    /// Wait until the internal `/health` answers. `Err(true)` if the process exited first.
    async fn wait_healthy(&mut self) -> Result<(), bool> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if child.try_wait().ok().flatten().is_some() {
                    return Err(true);
                }
            }
            if let Ok((200, body)) = http_get(self.internal, "/health").await {
                if body.trim() == "ok" {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(false);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL the relay and reap it: no goodbye to its peers, and its ports are free again.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The relay's process ID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The tail of the relay's log.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log, n)
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many lines of the log contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    /// Wait until more than `before` lines of the log contain `needle` (log lines are written
    /// asynchronously to the event they report).
    pub async fn wait_log(&self, needle: &str, before: usize) {
        let deadline = Instant::now() + TIMEOUT;
        while self.log_count(needle) <= before {
            assert!(
                Instant::now() < deadline,
                "the relay never logged {needle:?}\n{}",
                self.log_tail(20)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait (at most `timeout`) for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// GET `path` on the public web listener: (status, body).
    pub async fn http_get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http_get(self.web, path).await
    }

    /// GET `path` on the public web listener: (status, lowercased head).
    pub async fn http_head(&self, path: &str) -> std::io::Result<(u16, String)> {
        http_get_with_head(self.web, path)
            .await
            .map(|(status, head, _)| (status, head))
    }

    /// Scrape `/metrics`.
    pub async fn metrics(&self) -> Metrics {
        let (status, body) = http_get(self.internal, "/metrics")
            .await
            .expect("GET /metrics");
        assert_eq!(status, 200, "GET /metrics: {body}");
        Metrics::parse(&body)
    }

    /// Wait until `check` holds for the scraped metrics, polling; panics with the last scrape after
    /// [`TIMEOUT`].
    pub async fn wait_metrics(&self, what: &str, check: impl Fn(&Metrics) -> bool) -> Metrics {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let metrics = self.metrics().await;
            if check(&metrics) {
                return metrics;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; metrics:\n{}",
                metrics.text
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A URL on the relay: `https://127.0.0.1:P{path}` for WebTransport, `moql://…` for raw QUIC,
    /// `ws://…` on the HTTP listener for WebSocket, `moql+tcp://…` for `--tcp-listen`.
    /// (An IP literal: `localhost` would race `[::1]`, where nothing listens.)
    pub fn url(&self, via: Via, path_and_query: &str) -> url::Url {
        let (scheme, port) = match via {
            Via::WebTransport => ("https", self.port),
            Via::Quic => ("moql", self.port),
            Via::WebSocket => ("ws", self.web),
            Via::Tcp => ("moql+tcp", self.tcp),
        };
        let addr = std::net::SocketAddr::new(self.host, port);
        format!("{scheme}://{addr}{path_and_query}")
            .parse()
            .unwrap()
    }

    /// A QUIC client endpoint pinned to this relay's certificate.
    pub fn client(&self) -> moq_native::QuicClient {
        self.client_with(&[])
    }

    /// A client endpoint offering only `protocols` (empty = defaults).
    pub fn client_with(&self, protocols: &[&str]) -> moq_native::QuicClient {
        let bind = match self.host {
            std::net::IpAddr::V4(_) => "127.0.0.1:0",
            std::net::IpAddr::V6(_) => "[::1]:0",
        };
        moq_native::QuicClient::new(moq_native::QuicClientConfig {
            bind: bind.parse().unwrap(),
            fingerprints: vec![self.fingerprint.clone()],
            protocols: protocols.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        })
        .unwrap()
    }

    /// Connect a moq-lite client to `path_and_query` (e.g. `/anon?jwt=…`).
    pub async fn connect(&self, via: Via, path_and_query: &str, client: Client) -> Session {
        self.try_connect(&self.client(), via, path_and_query, client)
            .await
            .unwrap_or_else(|err| {
                panic!(
                    "connect {path_and_query} over {via:?}: {err:#}\n{}",
                    self.log_tail(20)
                )
            })
    }

    /// Connect with a given endpoint; the error says why (e.g. an HTTP 401).
    pub async fn try_connect(
        &self,
        native: &moq_native::QuicClient,
        via: Via,
        path_and_query: &str,
        client: Client,
    ) -> anyhow::Result<Session> {
        let url = self.url(via, path_and_query);
        let connection = tokio::time::timeout(TIMEOUT, native.connect_any(url)).await??;
        let session = tokio::time::timeout(
            TIMEOUT,
            client
                .with_setup_path(connection.setup_path)
                .connect(connection.session),
        )
        .await??;
        Ok(session)
    }

    /// Connect over raw QUIC sending `setup_path` verbatim in the lite-05 SETUP (no URL parsing, so
    /// no normalisation of `..` or `%2e` on the way).
    pub async fn try_connect_setup_path(
        &self,
        setup_path: &str,
        client: Client,
    ) -> anyhow::Result<Session> {
        let native = self.client_with(&["moq-lite-05"]);
        let connection =
            tokio::time::timeout(TIMEOUT, native.connect(self.url(Via::Quic, "/"))).await??;
        let client = client.with_setup_path(Some(setup_path.to_string()));
        Ok(tokio::time::timeout(TIMEOUT, client.connect(connection.session)).await??)
    }

    /// Connect a publisher of `origin` at `path_and_query`.
    pub async fn publisher(
        &self,
        via: Via,
        path_and_query: &str,
        origin: &OriginProducer,
    ) -> Session {
        self.connect(via, path_and_query, Client::new().publish(origin.consume()))
            .await
    }

    /// Connect a subscriber mirroring the relay's broadcasts into a fresh origin.
    pub async fn subscriber(&self, via: Via, path_and_query: &str) -> (Session, OriginProducer) {
        let origin = OriginProducer::new();
        let session = self
            .connect(via, path_and_query, Client::new().subscribe(origin.clone()))
            .await;
        (session, origin)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                eprintln!(
                    "--- moq-relay log (last 40 lines) ---\n{}\n---",
                    tail(&self.log, 40)
                );
            }
        }
    }
}

/// Send a signal by name (`TERM`, `STOP`, `CONT`) with the system's `kill`.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// How a client reaches the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// WebTransport over HTTP/3 (`https://`).
    WebTransport,
    /// Raw QUIC (`moql://`), the path in the lite-05 SETUP.
    Quic,
    /// QMux over a WebSocket on the HTTP listener (`ws://`), the path in the URL.
    WebSocket,
    /// QMux over plain TCP (`moql+tcp://`, `--tcp-listen`), the path in the SETUP.
    Tcp,
}

impl Via {
    pub const BOTH: [Via; 2] = [Via::WebTransport, Via::Quic];
    /// Every transport a client can reach the relay over.
    pub const ALL: [Via; 4] = [Via::WebTransport, Via::Quic, Via::WebSocket, Via::Tcp];
}

/// A minimal HTTP/1.1 GET to 127.0.0.1:`port` (the relay's listeners speak plain HTTP/1.1).
pub async fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    http_get_with_head(port, path)
        .await
        .map(|(status, _, body)| (status, body))
}

/// [`http_get`], also returning the response headers (`name: value` lines, lowercased).
pub async fn http_get_with_head(port: u16, path: &str) -> std::io::Result<(u16, String, String)> {
    let url = format!("http://127.0.0.1:{port}{path}");
    let response = moq_native::http_get_response(&url, 16 << 20, TIMEOUT)
        .await
        .map_err(std::io::Error::other)?;
    let head: String = response
        .headers
        .iter()
        .map(|(name, value)| format!("{name}: {}\r\n", String::from_utf8_lossy(value.as_bytes())))
        .collect();
    let body = String::from_utf8_lossy(&response.body).into_owned();
    Ok((response.status, head.to_ascii_lowercase(), body))
}

/// A scrape of `/metrics`.
pub struct Metrics {
    /// The raw exposition text, for failure messages.
    pub text: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Metrics {
    fn parse(text: &str) -> Self {
        let mut samples = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
                None => (series, BTreeMap::new()),
            };
            samples.push((name.to_string(), labels, value));
        }
        Self {
            text: text.to_string(),
            samples,
        }
    }

    /// The value of `name` whose labels include all of `labels`; `None` if there is no such series.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.all(name)
            .find(|(l, _)| {
                labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, v)| v)
    }

    /// An unlabelled value; panics when absent.
    pub fn value(&self, name: &str) -> f64 {
        self.get(name, &[])
            .unwrap_or_else(|| panic!("no metric {name} in\n{}", self.text))
    }

    /// Every series of `name`.
    pub fn all<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = (&'a BTreeMap<String, String>, f64)> + 'a {
        self.samples
            .iter()
            .filter(move |(n, _, _)| n == name)
            .map(|(_, l, v)| (l, *v))
    }

    /// The IDs of the live sessions (from `moq_relay_session_queued_bytes`).
    pub fn sessions(&self) -> Vec<String> {
        self.all("moq_relay_session_queued_bytes")
            .filter_map(|(l, _)| l.get("session").cloned())
            .collect()
    }
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = s;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(if escaped == 'n' { '\n' } else { escaped });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').trim().to_string(), value);
        rest = &after[end..];
    }
    labels
}

pub fn path(s: &str) -> Path {
    Path::new(s).unwrap()
}

/// Wait (bounded) for a broadcast to be announced in `origin`.
pub async fn wait_broadcast(origin: &OriginProducer, name: &str) -> BroadcastConsumer {
    tokio::time::timeout(TIMEOUT, origin.consume().wait_for_broadcast(&path(name)))
        .await
        .unwrap_or_else(|_| panic!("{name} was never announced"))
        .unwrap()
}

/// Wait (bounded) until `origin` no longer has a broadcast at `name`.
pub async fn wait_unannounced(origin: &OriginProducer, name: &str) {
    let consumer = origin.consume();
    let mut watcher = consumer.with_prefix(&path(name)).unwrap();
    tokio::time::timeout(TIMEOUT, async {
        while consumer.consume_broadcast(&path(name)).is_some() {
            watcher.announced().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name} was never unannounced"));
}

/// The payload of frame `f` of group `g` on a track tagged `tag`: distinct for every frame.
pub fn payload(tag: &str, g: u64, f: usize, size: usize) -> Bytes {
    let mut text = format!("{tag}:{g}:{f}:").into_bytes();
    let fill = (g as usize * 31 + f * 7) as u8;
    text.resize(size.max(text.len()), fill);
    Bytes::from(text)
}

/// A consumer's next group, bounded by [`TIMEOUT`].
pub async fn next_group(consumer: &mut TrackConsumer) -> moq_lite::GroupConsumer {
    tokio::time::timeout(TIMEOUT, consumer.next_group())
        .await
        .expect("no group in time")
        .expect("track failed")
        .expect("track ended")
}

/// Read a whole group: its frames' payloads in order.
pub async fn read_group(mut group: moq_lite::GroupConsumer) -> Result<Vec<Bytes>, moq_lite::Error> {
    let mut frames = Vec::new();
    while let Some((_, payload)) = tokio::time::timeout(TIMEOUT, group.read_frame())
        .await
        .map_err(|_| moq_lite::Error::Timeout)??
    {
        frames.push(payload);
    }
    Ok(frames)
}

/// A broadcast with one published origin around it, for publisher sessions.
pub fn origin_with(name: &str) -> (OriginProducer, BroadcastProducer) {
    let origin = OriginProducer::new();
    let broadcast = BroadcastProducer::new();
    origin
        .publish_broadcast(&path(name), broadcast.consume())
        .unwrap();
    (origin, broadcast)
}

/// A "video" track in `broadcast` whose groups stay deliverable for a minute: on a starved machine
/// (CI under load) a viewer may fall seconds behind, and the relay would rightly drop groups older
/// than the default 5 s. For tests about fan-out completeness, not that policy.
pub fn patient_video_track(broadcast: &BroadcastProducer) -> TrackProducer {
    let info = TrackInfo {
        max_latency: Duration::from_secs(60),
        ..TrackInfo::default()
    };
    broadcast.create_track(Track::new("video"), info)
}

/// A hand-driven lite-05 peer over raw QUIC: the SETUP (with `setup_path`) is sent and the relay's
/// SETUP read, then tests speak bytes with it.
pub async fn raw_peer(relay: &Relay, setup_path: Option<&str>) -> web_transport_quinn::Session {
    use moq_lite::coding::{Encode, Setup, UniStreamType, Version};
    let native = relay.client_with(&["moq-lite-05"]);
    let connection = tokio::time::timeout(TIMEOUT, native.connect(relay.url(Via::Quic, "/")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(connection.protocol.as_deref(), Some("moq-lite-05"));
    let transport = connection.session;
    let mut bytes = UniStreamType::Setup.encode_to_vec(Version::Lite05);
    let setup = Setup {
        path: setup_path.map(str::to_string),
        ..Default::default()
    };
    bytes.extend(setup.encode_to_vec(Version::Lite05));
    let mut stream = transport.open_uni().await.unwrap();
    stream.write_all(&bytes).await.unwrap();
    stream.finish().unwrap();
    // The relay answers with its SETUP on a uni stream (spec §1.7).
    let recv = tokio::time::timeout(TIMEOUT, transport.accept_uni())
        .await
        .expect("no SETUP from the relay")
        .unwrap();
    let mut wire = Wire::new(recv);
    assert_eq!(
        wire.bytes(1).await,
        UniStreamType::Setup.encode_to_vec(Version::Lite05),
        "the SETUP stream type"
    );
    let setup: Setup = wire.next().await;
    assert!(
        setup.origin.is_some_and(|o| o > 0 && o < (1 << 53)),
        "the relay's origin ID: {setup:?}"
    );
    transport
}

/// Reads messages off a receive stream with the real codec.
pub struct Wire {
    pub recv: web_transport_quinn::RecvStream,
    buf: bytes::BytesMut,
}

impl Wire {
    pub fn new(recv: web_transport_quinn::RecvStream) -> Self {
        Self {
            recv,
            buf: bytes::BytesMut::new(),
        }
    }

    /// `n` raw bytes, waiting at most [`TIMEOUT`].
    pub async fn bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            let chunk = tokio::time::timeout(TIMEOUT, self.recv.read_chunk(65536, true))
                .await
                .expect("no bytes in time")
                .unwrap()
                .expect("stream ended early");
            self.buf.extend_from_slice(&chunk.bytes);
        }
        self.buf.split_to(n).to_vec()
    }

    /// The next message, waiting at most [`TIMEOUT`].
    pub async fn next<T: moq_lite::coding::Decode>(&mut self) -> T {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                let mut cursor = &self.buf[..];
                match T::decode(&mut cursor, moq_lite::Version::Lite05) {
                    Ok(msg) => {
                        let used = self.buf.len() - cursor.len();
                        let _ = self.buf.split_to(used);
                        return msg;
                    }
                    Err(moq_lite::coding::DecodeError::Short) => {}
                    Err(err) => panic!("cannot decode: {err}"),
                }
                let chunk = self
                    .recv
                    .read_chunk(65536, true)
                    .await
                    .unwrap()
                    .expect("stream ended early");
                self.buf.extend_from_slice(&chunk.bytes);
            }
        })
        .await
        .expect("no message in time")
    }
}

/// A UDP proxy in front of the relay whose path can be frozen: while frozen, every packet in either
/// direction is dropped, as for a client that stopped reading and acknowledging (a stalled
/// process, a dead link). Dropping it stops it.
pub struct Freezer {
    pub port: u16,
    frozen: Arc<AtomicBool>,
    tasks: tokio::task::JoinSet<()>,
}

impl Freezer {
    pub async fn start(upstream: u16) -> Self {
        let front = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let back = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
        back.connect(("127.0.0.1", upstream)).await.unwrap();
        let port = front.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicBool::new(false));
        let client: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
        let mut tasks = tokio::task::JoinSet::new();
        {
            let (front, back, frozen, client) =
                (front.clone(), back.clone(), frozen.clone(), client.clone());
            tasks.spawn(async move {
                let mut buf = vec![0u8; 65536];
                while let Ok((n, from)) = front.recv_from(&mut buf).await {
                    *client.lock().unwrap() = Some(from);
                    if !frozen.load(Ordering::Relaxed) {
                        let _ = back.send(&buf[..n]).await;
                    }
                }
            });
        }
        {
            let (front, back, frozen, client) =
                (front.clone(), back.clone(), frozen.clone(), client.clone());
            tasks.spawn(async move {
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = back.recv(&mut buf).await {
                    let to = *client.lock().unwrap();
                    if let (false, Some(to)) = (frozen.load(Ordering::Relaxed), to) {
                        let _ = front.send_to(&buf[..n], to).await;
                    }
                }
            });
        }
        Self {
            port,
            frozen,
            tasks,
        }
    }

    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::Relaxed);
    }

    pub fn thaw(&self) {
        self.frozen.store(false, Ordering::Relaxed);
    }

    /// A URL through the proxy (a UDP proxy: QUIC transports only).
    pub fn url(&self, via: Via, path_and_query: &str) -> url::Url {
        let scheme = match via {
            Via::WebTransport => "https",
            Via::Quic => "moql",
            Via::WebSocket | Via::Tcp => panic!("the freezer proxies UDP only"),
        };
        format!("{scheme}://127.0.0.1:{}{path_and_query}", self.port)
            .parse()
            .unwrap()
    }
}

impl Drop for Freezer {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// Open a bidi stream on a raw peer, write `bytes`, and return the code the relay resets the
/// stream with (panics if it answers or finishes instead).
pub async fn reset_code(transport: &web_transport_quinn::Session, bytes: &[u8]) -> u32 {
    let (mut send, mut recv) = transport.open_bi().await.unwrap();
    send.write_all(bytes).await.unwrap();
    reset_of(&mut recv).await
}

/// The code a receive stream is reset with (panics if it finishes or stays open past [`TIMEOUT`]).
pub async fn reset_of(recv: &mut web_transport_quinn::RecvStream) -> u32 {
    match tokio::time::timeout(TIMEOUT, recv.read_to_end(1 << 20))
        .await
        .expect("the relay neither answered nor reset")
    {
        Err(web_transport_quinn::ReadToEndError::ReadError(
            web_transport_quinn::ReadError::Reset(code),
        )) => code,
        other => panic!("expected a reset, got {other:?}"),
    }
}

/// The bytes of a lite-05 Subscribe stream: the stream type and a SUBSCRIBE.
pub fn subscribe_bytes(id: u64, broadcast: &str, track: &str) -> Vec<u8> {
    use moq_lite::coding::{BiStreamType, Encode, Subscribe, Version};
    let mut bytes = BiStreamType::Subscribe.encode_to_vec(Version::Lite05);
    let subscribe = Subscribe {
        id,
        broadcast: path(broadcast),
        track: track.to_string(),
        priority: 0,
        ordered: false,
        max_latency_ms: 0,
        start_group: None,
        end_group: None,
        start_frame: 0,
        end_frame: None,
    };
    bytes.extend(subscribe.encode_to_vec(Version::Lite05));
    bytes
}

/// Start a relay (anonymous access) with cluster id `id`, linked to `peers` by raw QUIC
/// (certificates not checked: loopback test relays have self-signed ones).
pub async fn relay_linked_to(id: u64, peers: &[&Relay]) -> Relay {
    relay_linked_with(id, peers, &[]).await
}

/// [`relay_linked_to`] with more flags.
pub async fn relay_linked_with(id: u64, peers: &[&Relay], extra: &[&str]) -> Relay {
    let id = id.to_string();
    let urls: Vec<String> = peers
        .iter()
        .map(|peer| peer.url(Via::Quic, "/").to_string())
        .collect();
    let mut args = vec![
        "--auth-public",
        "",
        "--cluster-id",
        &id,
        "--connect-tls-insecure",
    ];
    for url in &urls {
        args.extend(["--cluster-connect", url]);
    }
    args.extend(extra);
    Relay::start(RelayArgs::new(&args)).await
}
