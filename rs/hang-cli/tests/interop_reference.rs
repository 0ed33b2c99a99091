//! hang media interop with the public reference `moq` CLI (0.14.10, from crates.io) through our
//! relay: it exports OUR published broadcast to fMP4 that ffprobe accepts, and our `hang subscribe`
//! exports ITS published broadcast. Installed by scripts/install-peers.sh.

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn reference_moq() -> PathBuf {
    let dir = std::env::var_os("MOQ_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/moq-interop")
        });
    let path = dir.join("cli-0.14.10/bin/moq");
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-peers.sh",
        path.display()
    );
    path
}

fn relay_bin() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_hang")).with_file_name("moq-relay");
    assert!(
        path.exists(),
        "{} is missing: cargo build -p moq-relay (cargo test --workspace does)",
        path.display()
    );
    path
}

struct Run {
    children: Vec<(String, Child)>,
    dir: PathBuf,
}

impl Run {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("hang-interop-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            children: Vec::new(),
            dir,
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    fn spawn(&mut self, name: &str, cmd: &mut Command) -> &mut Child {
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
    fn logs(&self) -> String {
        self.children
            .iter()
            .map(|(name, _)| {
                format!(
                    "--- {name} ---\n{}",
                    std::fs::read_to_string(self.path(&format!("{name}.log"))).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
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

fn start_relay(run: &mut Run) -> String {
    let port = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            break port;
        }
    };
    let addr = format!("127.0.0.1:{port}");
    run.spawn(
        "relay",
        Command::new(relay_bin()).args([
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "relay did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    format!("http://127.0.0.1:{port}/anon")
}

/// A live ffmpeg fMP4 source (H.264 + AAC) on a pipe.
fn live_source(run: &mut Run) -> std::process::ChildStdout {
    let mut ffmpeg = Command::new("ffmpeg");
    ffmpeg
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
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
            "-c:a",
            "aac",
            "-b:a",
            "64k",
        ])
        .args([
            "-f",
            "mp4",
            "-frag_duration",
            "100000",
            "-movflags",
            "cmaf+separate_moof+delay_moov+skip_trailer",
            "-",
        ])
        .stdout(Stdio::piped());
    run.spawn("ffmpeg", &mut ffmpeg).stdout.take().unwrap()
}

/// Wait until `file` has grown past `min` bytes, then ffprobe its streams as `codec,width,height` lines.
fn probe_when_ready(run: &Run, file: &PathBuf, min: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(file).map(|m| m.len()).unwrap_or(0) < min {
        assert!(
            Instant::now() < deadline,
            "only {} bytes written\n{}",
            std::fs::metadata(file).map(|m| m.len()).unwrap_or(0),
            run.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn reference_moq_cli_exports_our_broadcast() {
    let mut run = Run::new("ours");
    let url = start_relay(&mut run);
    let media = live_source(&mut run);
    run.spawn(
        "hang-publish",
        Command::new(env!("CARGO_BIN_EXE_hang"))
            .args(["publish", "--url", &url, "--name", "ours.hang"])
            .stdin(media),
    );
    std::thread::sleep(Duration::from_millis(500));
    let out = run.path("ref-export.mp4");
    let file = std::fs::File::create(&out).unwrap();
    run.spawn(
        "moq-export",
        Command::new(reference_moq())
            .args([
                "--connect",
                &url,
                "--connect-tls-insecure",
                "export",
                "--broadcast",
                "ours.hang",
                "fmp4",
            ])
            .stdout(file),
    );
    let streams = probe_when_ready(&run, &out, 100_000);
    assert!(
        streams.lines().any(|l| l.starts_with("h264,320,240")),
        "reference export has no 320x240 H.264: {streams:?}\n{}",
        run.logs()
    );
}

#[test]
fn hang_subscribe_exports_the_reference_broadcast() {
    let mut run = Run::new("theirs");
    let url = start_relay(&mut run);
    let media = live_source(&mut run);
    run.spawn(
        "moq-import",
        Command::new(reference_moq())
            .args([
                "--connect",
                &url,
                "--connect-tls-insecure",
                "import",
                "--broadcast",
                "theirs.hang",
                "fmp4",
            ])
            .stdin(media),
    );
    std::thread::sleep(Duration::from_millis(500));
    let out = run.path("hang-export.mp4");
    let file = std::fs::File::create(&out).unwrap();
    run.spawn(
        "hang-subscribe",
        Command::new(env!("CARGO_BIN_EXE_hang"))
            .args(["subscribe", "--url", &url, "--name", "theirs.hang"])
            .stdout(file),
    );
    let streams = probe_when_ready(&run, &out, 100_000);
    assert!(
        streams.lines().any(|l| l.starts_with("h264,320,240")),
        "hang export has no 320x240 H.264: {streams:?}\n{}",
        run.logs()
    );
    assert!(
        streams.lines().any(|l| l.starts_with("aac")),
        "hang export has no AAC: {streams:?}\n{}",
        run.logs()
    );
}
