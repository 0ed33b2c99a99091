//! `moq-clock` survives a relay restart: publisher and subscriber through our `moq-relay` on a
//! fixed port; the relay is killed (SIGKILL) and, once both clients have noticed, started again
//! on the same port. The subscriber must print again within 3 s, every second once and in order.
//!
//! The relay binary comes from the same target directory (`cargo build -p moq-relay`).

use std::process::Command;
use std::time::{Duration, Instant};

use test_support::relay::{relay_bin, RelayOptions};
use test_support::Run;

const CLOCK: &str = env!("CARGO_BIN_EXE_moq-clock");

/// How long the subscriber may take to print again once the relay is back.
const RESUME_WITHIN: Duration = Duration::from_secs(3);

/// Our relay (anonymous access) as child `name`, with QUIC and HTTP on one port number (`port`,
/// or a free one): its `http://` URL stays valid across a restart with a new certificate.
fn start_relay(run: &mut Run, name: &str, port: Option<u16>) -> u16 {
    let options = RelayOptions::new().args(["--auth-public", ""]);
    let options = match port {
        Some(port) => options.on_port(port),
        None => options.shared_port(),
    };
    run.start_relay(name, &relay_bin(CLOCK), &options)
        .quic
        .port()
}

/// Wait until `done`, returning when it held; panics with the logs after `within`.
fn wait_until(run: &Run, what: &str, within: Duration, mut done: impl FnMut() -> bool) -> Instant {
    run.wait_until(what, within, || done().then(Instant::now))
}

#[test]
fn the_clock_goes_on_through_a_restarted_relay() {
    let mut run = Run::new("clock-restart");
    let port = start_relay(&mut run, "relay", None);
    let url = format!("http://127.0.0.1:{port}/anon");
    let clock = |command: &str| {
        let mut cmd = Command::new(CLOCK);
        cmd.args(["--url", &url, "--broadcast", "restart", command]);
        cmd
    };
    run.spawn("publish", &mut clock("publish"));
    let out = run.path("out.txt");
    let file = std::fs::File::create(&out).unwrap();
    run.spawn("subscribe", clock("subscribe").stdout(file));
    let lines = || std::fs::read_to_string(&out).unwrap_or_default();

    wait_until(
        &run,
        "lines before the restart",
        Duration::from_secs(15),
        || lines().lines().count() >= 2,
    );
    let relay = run.child("relay");
    relay.kill().unwrap();
    relay.wait().unwrap();
    let killed = Instant::now();
    let noticed = wait_until(&run, "clients notice", Duration::from_secs(10), || {
        ["publish", "subscribe"]
            .iter()
            .all(|name| run.log(name).contains("disconnected; reconnecting"))
    });
    start_relay(&mut run, "relay2", Some(port));
    let back = Instant::now();
    let before = lines().lines().count();
    let resumed = wait_until(&run, "a line after the restart", RESUME_WITHIN, || {
        lines().lines().count() > before
    });
    eprintln!(
        "clients noticed {:?} after the kill; printing resumed {:?} after the relay was back",
        noticed - killed,
        resumed - back
    );
    for name in ["publish", "subscribe"] {
        assert!(run.log(name).contains("reconnected"), "{}", run.logs());
    }

    // Every line once, in order: a new session starts again at the current minute's first
    // second, which was printed already.
    let text = lines();
    let printed: Vec<&str> = text.lines().collect();
    assert!(
        printed.windows(2).all(|w| w[0] < w[1]),
        "lines out of order or repeated: {printed:?}"
    );
}
