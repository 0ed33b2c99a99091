//! The relay binary's configuration: a TOML file, flags and `MOQ_*` variables, and `--help`.

mod common;

use std::process::Command;

use common::*;
use moq_lite::{Client, OriginProducer};

/// A value in the file holds unless a flag or variable sets it: the file's web listener and
/// public prefix hold, while the flags' QUIC and internal addresses and the variable's session
/// limit win over the file's.
#[tokio::test]
async fn file_values_hold_unless_a_flag_or_variable_is_given() {
    let toml = r#"
[server]
listen = "127.0.0.1:{spare}"
[server.tls]
generate = "localhost"
[auth]
public = "anon"
[web.http]
listen = "127.0.0.1:{web}"
[internal]
listen = "127.0.0.1:{spare}"
[limits]
max_sessions = 100
"#;
    let args = [
        "{dir}/relay.toml",
        "--listen",
        "127.0.0.1:{port}",
        "--internal-listen",
        "127.0.0.1:{internal}",
    ];
    // Starting proves the flags' internal address won (the harness waits for /health there) and
    // the file's web address held (the certificate fingerprint was fetched there).
    let relay = Relay::start(
        RelayArgs::exactly(&args)
            .file("relay.toml", toml)
            .env("MOQ_MAX_SESSIONS", "2"),
    )
    .await;
    assert_ne!(relay.web, relay.port);
    assert!(
        relay.log().contains(&format!(
            "listening for QUIC (WebTransport and raw) addr=127.0.0.1:{}",
            relay.port
        )),
        "{}",
        relay.log_tail(10)
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", relay.spare)).is_err(),
        "the file's internal address was bound too"
    );
    assert!(
        std::net::UdpSocket::bind(("127.0.0.1", relay.spare)).is_ok(),
        "the file's QUIC address was bound too"
    );

    // QUIC on the flag's port, with the file's public prefix: anon is open, the rest is not.
    let native = relay.client();
    let first = relay
        .try_connect(
            &native,
            Via::Quic,
            "/anon",
            Client::new().subscribe(OriginProducer::new()),
        )
        .await
        .unwrap();
    let refused = relay
        .try_connect(
            &native,
            Via::WebTransport,
            "/private",
            Client::new().subscribe(OriginProducer::new()),
        )
        .await;
    assert!(format!("{:#}", refused.unwrap_err()).contains("401"));
    // The refused connection's slot is free once it has closed.
    relay
        .wait_metrics("one connection", |m| {
            m.value("moq_relay_connections") == 1.0
        })
        .await;
    // MOQ_MAX_SESSIONS=2 beat the file's 100: a third connection is refused (QUIC
    // CONNECTION_REFUSED, before any handshake).
    let second = relay
        .try_connect(
            &native,
            Via::WebTransport,
            "/anon",
            Client::new().subscribe(OriginProducer::new()),
        )
        .await
        .unwrap();
    relay
        .wait_metrics("two sessions", |m| m.value("moq_relay_sessions") == 2.0)
        .await;
    let third = relay
        .try_connect(
            &native,
            Via::WebTransport,
            "/anon",
            Client::new().subscribe(OriginProducer::new()),
        )
        .await;
    let third = format!("{:#}", third.unwrap_err());
    assert!(
        third.contains("refused"),
        "a third session over the limit: {third}"
    );
    relay.wait_log("at the connection limit", 0).await;
    drop((first, second));
}

/// `--help` documents every flag and variable of the table in docs/relay.md.
#[test]
fn help_mentions_every_documented_flag_and_variable() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/relay.md"))
        .expect("docs/relay.md");
    let output = Command::new(env!("CARGO_BIN_EXE_moq-relay"))
        .arg("--help")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();

    let mut documented = Vec::new();
    for row in doc.lines().filter(|l| l.starts_with("| `--")) {
        let cells: Vec<&str> = row.split('|').collect();
        for cell in &cells[1..3] {
            for word in cell.split('`').skip(1).step_by(2) {
                let name = word.split(' ').next().unwrap();
                documented.push(name.to_string());
            }
        }
    }
    assert!(
        documented.len() >= 20,
        "parsed too few names from the docs table: {documented:?}"
    );
    let missing: Vec<&String> = documented
        .iter()
        .filter(|name| !help.contains(name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "--help does not mention {missing:?}\n{help}"
    );
}
