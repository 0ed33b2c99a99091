//! `--port-file`: a relay told to bind port 0 everywhere reports the ports it got, so a test (or a
//! supervisor) never has to guess a free port and race another process for it.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path as FsPath;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use common::*;
use moq_lite::{Client, OriginProducer};

/// Kills and reaps the relay when the test ends, also on a panic.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Wait for the port file to appear (the relay renames it into place once every listener is
/// bound), failing early if the relay exits first.
async fn read_port_file(
    child: &mut Child,
    path: &FsPath,
    log: &FsPath,
) -> BTreeMap<String, SocketAddr> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return serde_json::from_str(&text)
                .unwrap_or_else(|err| panic!("the port file is not JSON ({err}): {text:?}"));
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "moq-relay exited ({status}) before writing the port file:\n{}",
                tail(log, 20)
            );
        }
        assert!(
            Instant::now() < deadline,
            "no port file after {TIMEOUT:?}:\n{}",
            tail(log, 20)
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn port_zero_everywhere_and_the_port_file_reports_what_was_bound() {
    let scratch = Scratch::new("port-file");
    let port_file = scratch.path("ports.json");
    let log = scratch.path("relay.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_moq-relay"));
    clean_env(&mut cmd);
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--tls-generate",
        "localhost",
        "--web-http-listen",
        "127.0.0.1:0",
        "--internal-listen",
        "127.0.0.1:0",
        "--auth-public",
        "",
    ])
    .env("MOQ_PORT_FILE", &port_file)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap());
    let mut relay = Reap(cmd.spawn().expect("start moq-relay"));

    let ports = read_port_file(&mut relay.0, &port_file, &log).await;
    assert_eq!(
        ports.keys().map(String::as_str).collect::<Vec<_>>(),
        ["http", "internal", "quic"],
        "{ports:?}"
    );
    for (name, addr) in &ports {
        assert_eq!(addr.ip().to_string(), "127.0.0.1", "{name}");
        assert_ne!(
            addr.port(),
            0,
            "{name}: the bound port, not the configured 0"
        );
    }
    assert!(
        !scratch.path("ports.json.tmp").exists(),
        "the temporary file was renamed into place"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    for (what, name) in [("QUIC", "quic"), ("HTTP", "http"), ("metrics", "internal")] {
        let line = format!("addr={}", ports[name]);
        assert!(
            text.lines()
                .any(|l| l.contains(&format!("listening for {what}")) && l.contains(&line)),
            "no info line for the {name} listener with {line}:\n{text}"
        );
    }

    // Each listener answers on the reported address.
    let (status, body) = http_get(ports["internal"].port(), "/health").await.unwrap();
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, fingerprint) = http_get(ports["http"].port(), "/certificate.sha256")
        .await
        .unwrap();
    assert_eq!(status, 200);
    let native = moq_native::QuicClient::new(moq_native::QuicClientConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        fingerprints: vec![fingerprint.trim().to_string()],
        ..Default::default()
    })
    .unwrap();
    for scheme in ["https", "moql"] {
        let url: url::Url = format!("{scheme}://{}/anon", ports["quic"])
            .parse()
            .unwrap();
        let connection = tokio::time::timeout(TIMEOUT, native.connect(url))
            .await
            .expect("connect in time")
            .expect("connect");
        let session = tokio::time::timeout(
            TIMEOUT,
            Client::new()
                .subscribe(OriginProducer::new())
                .with_setup_path(connection.setup_path)
                .connect(connection.session),
        )
        .await
        .expect("SETUP in time")
        .expect("SETUP");
        drop(session);
    }
}
