//! hang media interop with the public reference `moq` CLI (0.14.10, from crates.io) through our
//! relay: it exports OUR published broadcast to fMP4 that ffprobe accepts, and our `hang subscribe`
//! exports ITS published broadcast. Installed by scripts/install-peers.sh.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{hang, start_relay, wait_announced, Run};

fn reference_moq() -> PathBuf {
    test_support::peers::binary("cli-0.14.10", "moq")
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
    let relay = start_relay(&mut run);
    // The reference CLI cannot pin a fingerprint: it skips verification instead.
    let url = relay.url("/anon");
    let media = live_source(&mut run);
    run.spawn(
        "hang-publish",
        hang(&relay, "publish", "ours.hang").stdin(media),
    );
    wait_announced(&run, &relay, "anon/ours.hang");
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
    let relay = start_relay(&mut run);
    let url = relay.url("/anon");
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
    wait_announced(&run, &relay, "anon/theirs.hang");
    let out = run.path("hang-export.mp4");
    let file = std::fs::File::create(&out).unwrap();
    run.spawn(
        "hang-subscribe",
        hang(&relay, "subscribe", "theirs.hang").stdout(file),
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
