//! Shared by the hang CLI's integration tests: the workspace's test scaffolding
//! ([`test_support`]: child processes killed and reaped on drop, their logs printed when a test
//! panics; our relay on ports it reports) and what is particular to `hang`: its command line
//! against a relay, and the relay's `/announced` list.
#![allow(dead_code)] // each test binary uses a different subset

pub mod netns;

use std::path::PathBuf;
use std::process::Command;

pub use test_support::relay::{RelayAddrs, RelayOptions};
pub use test_support::Run;

/// Our `moq-relay`, from the same target directory (`cargo test --workspace` builds it).
pub fn relay_bin() -> PathBuf {
    test_support::relay::relay_bin(env!("CARGO_BIN_EXE_hang"))
}

/// Start our relay (anonymous access) on ports it chooses, as child "relay".
pub fn start_relay(run: &mut Run) -> RelayAddrs {
    run.start_relay(
        "relay",
        &relay_bin(),
        &RelayOptions::new().args(["--auth-public", ""]),
    )
}

/// Start our relay (anonymous access) as child `name` with QUIC and HTTP on one port number:
/// `port`, or a free one. Its `http://` URL ([`RelayAddrs::http_url`]) then stays valid when
/// the relay is restarted on the same port with a new certificate (clients fetch it again).
pub fn start_relay_on(run: &mut Run, name: &str, port: Option<u16>) -> RelayAddrs {
    let options = RelayOptions::new().args(["--auth-public", ""]);
    let options = match port {
        Some(port) => options.on_port(port),
        None => options.shared_port(),
    };
    run.start_relay(name, &relay_bin(), &options)
}

/// `hang SUBCOMMAND --url URL --name NAME` for broadcast `name` under the relay's `/anon`, with
/// the relay's certificate pinned.
pub fn hang(relay: &RelayAddrs, subcommand: &str, name: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hang"));
    cmd.args([subcommand, "--url", &relay.url("/anon"), "--name", name])
        .args(relay.tls_args());
    cmd
}

/// The broadcasts the relay lists on `/announced`, one path per line.
pub fn announced(relay: &RelayAddrs) -> Vec<String> {
    let response =
        test_support::http::get_blocking(relay.http, "/announced").expect("GET /announced");
    assert_eq!(response.status, 200, "GET /announced: {}", response.body);
    response.body.lines().map(str::to_string).collect()
}

/// Wait until the relay lists `path` (e.g. `anon/x.hang`) on `/announced`.
pub fn wait_announced(run: &Run, relay: &RelayAddrs, path: &str) {
    run.wait_until(
        &format!("{path} announced"),
        std::time::Duration::from_secs(20),
        || announced(relay).iter().any(|p| p == path).then_some(()),
    );
}
