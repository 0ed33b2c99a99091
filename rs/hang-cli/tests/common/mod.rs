//! Shared by the hang CLI's integration tests: child processes that are killed and reaped on
//! drop (their stderr kept in a scratch directory and printed if the test panics), free ports,
//! and our relay binary started on one.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Children and a scratch directory, cleaned up on drop.
pub struct Run {
    children: Vec<(String, Child)>,
    dir: PathBuf,
}

impl Run {
    /// A scratch directory unique to this test (`tag`) and process.
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("hang-cli-test-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            children: Vec::new(),
            dir,
        }
    }

    /// A file in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// What child `name` wrote on stderr so far.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(&format!("{name}.log"))).unwrap_or_default()
    }

    /// Every child's stderr.
    pub fn logs(&self) -> String {
        self.children
            .iter()
            .map(|(name, _)| format!("--- {name} ---\n{}", self.log(name)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Start `cmd` as child `name`, stderr to its log, without inherited MOQ_* settings or RUST_LOG.
    pub fn spawn(&mut self, name: &str, cmd: &mut Command) -> &mut Child {
        let log = std::fs::File::create(self.path(&format!("{name}.log"))).unwrap();
        for (key, _) in std::env::vars() {
            if key.starts_with("MOQ_") && key != "MOQ_PEERS_DIR" {
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
        &mut self.children.last_mut().unwrap().1
    }

    /// The child started as `name`.
    pub fn child(&mut self, name: &str) -> &mut Child {
        let found = self.children.iter_mut().find(|(n, _)| n == name);
        &mut found.unwrap_or_else(|| panic!("no child {name}")).1
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

/// A port free on both UDP and TCP (QUIC and the HTTP listener share the number).
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Our `moq-relay`, from the same target directory (`cargo test --workspace` builds it).
pub fn relay_bin() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_hang")).with_file_name("moq-relay");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p moq-relay` (cargo test --workspace does)",
        path.display()
    );
    path
}

/// Start our relay (anonymous access) on a free port as child "relay"; returns `http://127.0.0.1:PORT/anon`.
pub fn start_relay(run: &mut Run) -> String {
    start_relay_on(run, "relay", free_port())
}

/// Start our relay (anonymous access) on `port` (UDP and TCP) as child `name` and wait until it
/// listens; returns `http://127.0.0.1:PORT/anon`. A relay restarted on the same port gets the
/// same URL (with a new self-signed certificate, which `http://` clients fetch again).
pub fn start_relay_on(run: &mut Run, name: &str, port: u16) -> String {
    let addr = format!("127.0.0.1:{port}");
    let args = [
        "--listen",
        &addr,
        "--tls-generate",
        "localhost",
        "--auth-public",
        "",
        "--web-http-listen",
        &addr,
    ];
    run.spawn(name, Command::new(relay_bin()).args(args));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "relay did not start\n{}",
            run.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    format!("http://{addr}/anon")
}

/// The broadcasts the relay at `url` (`http://ADDR/...`, as [`start_relay`] returns) lists on
/// `/announced`, one path per line.
pub fn announced(url: &str) -> Vec<String> {
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = runtime
        .block_on(moq_native::http_get(
            &format!("http://{addr}/announced"),
            1 << 20,
            Duration::from_secs(5),
        ))
        .unwrap_or_else(|err| panic!("GET /announced: {err}"));
    String::from_utf8_lossy(&body)
        .lines()
        .map(str::to_string)
        .collect()
}
