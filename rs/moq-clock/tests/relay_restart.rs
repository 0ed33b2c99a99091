//! `moq-clock` survives a relay restart: publisher and subscriber through our `moq-relay` on a
//! fixed port; the relay is killed (SIGKILL) and, once both clients have noticed, started again
//! on the same port. The subscriber must print again within 3 s, every second once and in order.
//!
//! The relay binary comes from the same target directory (`cargo build -p moq-relay`).

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const CLOCK: &str = env!("CARGO_BIN_EXE_moq-clock");

/// How long the subscriber may take to print again once the relay is back.
const RESUME_WITHIN: Duration = Duration::from_secs(3);

/// Children killed and reaped on drop, their stderr in a scratch directory.
struct Run {
    children: Vec<(String, Child)>,
    dir: PathBuf,
}

impl Run {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("moq-clock-restart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            children: Vec::new(),
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(&format!("{name}.log"))).unwrap_or_default()
    }

    fn logs(&self) -> String {
        self.children
            .iter()
            .map(|(name, _)| format!("--- {name} ---\n{}", self.log(name)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Start `cmd` as `name`, stderr to its log, without inherited MOQ_* settings or RUST_LOG.
    fn spawn(&mut self, name: &str, cmd: &mut Command) {
        let log = std::fs::File::create(self.path(&format!("{name}.log"))).unwrap();
        for (key, _) in std::env::vars() {
            if key.starts_with("MOQ_") {
                cmd.env_remove(key);
            }
        }
        let child = cmd
            .stderr(log)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        self.children.push((name.to_string(), child));
    }

    fn child(&mut self, name: &str) -> &mut Child {
        let found = self.children.iter_mut().find(|(n, _)| n == name);
        &mut found.unwrap_or_else(|| panic!("no child {name}")).1
    }

    /// Our relay (anonymous access) on `port`, as `name`, once it listens.
    fn start_relay(&mut self, name: &str, port: u16) {
        let relay = PathBuf::from(CLOCK).with_file_name("moq-relay");
        assert!(
            relay.exists(),
            "{} is missing: cargo build -p moq-relay",
            relay.display()
        );
        let addr = format!("127.0.0.1:{port}");
        self.spawn(
            name,
            Command::new(relay).args([
                "--listen",
                &addr,
                "--tls-generate",
                "localhost",
                "--auth-public",
                "",
                "--web-http-listen",
                &addr,
            ]),
        );
        self.wait_until("relay listens", Duration::from_secs(10), || {
            std::net::TcpStream::connect(&addr).is_ok()
        });
    }

    /// Poll until `done`, or panic with the logs after `within`.
    fn wait_until(&self, what: &str, within: Duration, mut done: impl FnMut() -> bool) -> Instant {
        let deadline = Instant::now() + within;
        while !done() {
            assert!(
                Instant::now() < deadline,
                "{what}: not within {within:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Instant::now()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port free on both UDP and TCP.
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

#[test]
fn the_clock_goes_on_through_a_restarted_relay() {
    let mut run = Run::new();
    let port = free_port();
    run.start_relay("relay", port);
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

    run.wait_until("lines before the restart", Duration::from_secs(15), || {
        lines().lines().count() >= 2
    });
    let relay = run.child("relay");
    relay.kill().unwrap();
    relay.wait().unwrap();
    let killed = Instant::now();
    let noticed = run.wait_until("clients notice", Duration::from_secs(10), || {
        ["publish", "subscribe"]
            .iter()
            .all(|name| run.log(name).contains("disconnected; reconnecting"))
    });
    run.start_relay("relay2", port);
    let back = Instant::now();
    let before = lines().lines().count();
    let resumed = run.wait_until("a line after the restart", RESUME_WITHIN, || {
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
