//! The CLIs survive a relay restart: `hang publish` (the built-in test pattern, or ffmpeg's fMP4 on
//! stdin) → `moq-relay` → `hang subscribe` to a file; the relay is killed (SIGKILL: no
//! CONNECTION_CLOSE, the clients learn of it only at their QUIC idle timeout) and started again on
//! the same port. The subscriber's output must resume within 3 s of the relay being back and the
//! clients having noticed it was gone, and stay one stream: one init segment, a file ffprobe
//! decodes without an error, timestamps that never go back. With `--no-reconnect` the clients
//! exit with the error instead.
//!
//! The relay binary comes from the same target directory (`cargo build -p moq-relay`).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{start_relay_on, Run};

/// How long the subscriber's output may take to resume once the relay is back and both clients
/// have noticed the old one is gone.
const RESUME_WITHIN: Duration = Duration::from_secs(3);

/// How long the clients may take to notice the relay is gone: their QUIC idle timeout (3 s) plus
/// a keep-alive interval (1 s; an idle subscriber's timer starts at its next keep-alive), with
/// margin for a busy machine.
const NOTICE_WITHIN: Duration = Duration::from_secs(10);

/// What the clients log when they lose the session, and when they have it back.
const DISCONNECTED: &str = "disconnected; reconnecting";
const RECONNECTED: &str = "reconnected";

/// Wait (polling) until `done`, or panic with `what` and the children's logs after `within`.
fn wait_until(run: &Run, what: &str, within: Duration, mut done: impl FnMut() -> bool) -> Instant {
    let deadline = Instant::now() + within;
    loop {
        if done() {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {within:?}\n{}",
            run.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The top-level box types of an fMP4 file (a box still being written is left out).
fn boxes(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let mut types = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if size < 8 || at + size > bytes.len() {
            break;
        }
        types.push(String::from_utf8_lossy(&bytes[at + 4..at + 8]).to_string());
        at += size;
    }
    types
}

fn moofs(path: &Path) -> usize {
    boxes(path).iter().filter(|t| *t == "moof").count()
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// One packet of a stream as ffprobe lists it, in file order.
struct Packet {
    pts: f64,
    dts: f64,
    keyframe: bool,
}

/// Decode stream `stream` of `path` completely with ffprobe (`-count_frames`): it must succeed
/// without a line on stderr. Returns its packets and the number of frames decoded.
fn probe(path: &Path, stream: &str) -> (Vec<Packet>, u64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", stream])
        .args([
            "-show_entries",
            "packet=pts_time,dts_time,flags:stream=nb_read_frames",
        ])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe (scripts/test.sh installs ffmpeg)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffprobe {stream}: {}\n{stderr}",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut packets = Vec::new();
    let mut frames = 0;
    for line in stdout.lines() {
        let fields: Vec<&str> = line.trim().trim_end_matches(',').split(',').collect();
        match fields[..] {
            [pts, dts, flags] => packets.push(Packet {
                pts: pts.parse().unwrap(),
                dts: dts.parse().unwrap(),
                keyframe: flags.starts_with('K'),
            }),
            [count] => frames = count.parse().unwrap(),
            _ => panic!("unexpected ffprobe line {line:?}"),
        }
    }
    (packets, frames)
}

/// Timestamps that never go back: decode times strictly increase, every keyframe is shown after
/// everything before it, and no frame is there twice. Returns the largest jump in presentation
/// time (the outage).
fn assert_monotonic(packets: &[Packet], stream: &str) -> f64 {
    assert!(!packets.is_empty(), "{stream}: no packets");
    let mut shown = f64::MIN;
    for (i, packet) in packets.iter().enumerate() {
        if i > 0 {
            assert!(
                packet.dts > packets[i - 1].dts,
                "{stream}: dts goes back at packet {i}: {} after {}",
                packet.dts,
                packets[i - 1].dts
            );
        }
        if packet.keyframe {
            assert!(
                packet.pts > shown,
                "{stream}: keyframe {i} at {} is not after {shown}",
                packet.pts
            );
        }
        shown = shown.max(packet.pts);
    }
    let mut pts: Vec<f64> = packets.iter().map(|p| p.pts).collect();
    pts.sort_by(f64::total_cmp);
    let repeated = pts.windows(2).filter(|w| w[0] == w[1]).count();
    assert_eq!(
        repeated, 0,
        "{stream}: {repeated} presentation times repeated"
    );
    pts.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

/// Whether both clients have logged that they lost the session.
fn noticed(run: &Run) -> bool {
    run.log("publish").contains(DISCONNECTED) && run.log("subscribe").contains(DISCONNECTED)
}

/// How the relay comes back after being killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Restart {
    /// As soon as it is dead (a supervisor restarting it): the clients notice at their idle
    /// timeout, while it is already back.
    AtOnce,
    /// Once both clients have noticed it is gone (a longer outage): they are dialling by then.
    AfterClientsNoticed,
}

/// Start the relay on a fixed port, `hang subscribe` to a file and the publisher `publish` (already
/// spawned by the caller through `start_publisher`), kill the relay, restart it per `restart`, and
/// check the output. Returns (time for the clients to notice, time from the relay being back to
/// the output resuming).
fn through_a_restarted_relay(
    tag: &str,
    restart: Restart,
    start_publisher: impl FnOnce(&mut Run, &str),
) -> (Duration, Duration) {
    let mut run = Run::new(tag);
    let relay = start_relay_on(&mut run, "relay", None);
    let port = relay.quic.port();
    let url = relay.http_url("/anon");
    let out = run.path("out.mp4");
    let file = std::fs::File::create(&out).unwrap();
    run.spawn(
        "subscribe",
        Command::new(env!("CARGO_BIN_EXE_hang"))
            .args(["subscribe", "--url", &url, "--name", "restart.hang"])
            .stdout(file),
    );
    start_publisher(&mut run, &url);

    wait_until(
        &run,
        "output before the restart",
        Duration::from_secs(30),
        || moofs(&out) >= 60,
    );
    let child = run.child("relay");
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    let (back, noticed_at) = match restart {
        Restart::AtOnce => {
            start_relay_on(&mut run, "relay2", Some(port));
            let back = Instant::now();
            let noticed_at = wait_until(&run, "clients notice", NOTICE_WITHIN, || noticed(&run));
            (back, noticed_at)
        }
        Restart::AfterClientsNoticed => {
            let noticed_at = wait_until(&run, "clients notice", NOTICE_WITHIN, || noticed(&run));
            start_relay_on(&mut run, "relay2", Some(port));
            (Instant::now(), noticed_at)
        }
    };
    // Nothing reaches the subscriber while the relay is away: growth from here is the resumed
    // stream.
    let before = size(&out);
    let ready = back.max(noticed_at);
    let resumed = wait_until(&run, "output resumes", ready - back + RESUME_WITHIN, || {
        size(&out) > before
    });
    let resume = resumed - back;
    eprintln!(
        "{tag}: clients noticed {:?} after the kill; output resumed {resume:?} after the relay was \
         back ({:?} after the kill, {:?} after the clients noticed)",
        noticed_at - killed,
        resumed - killed,
        resumed.saturating_duration_since(noticed_at),
    );

    // Two seconds or so of the resumed stream, then SIGTERM: the subscriber completes the
    // fragment it is writing and exits.
    let moofs_resumed = moofs(&out);
    wait_until(&run, "output goes on", Duration::from_secs(15), || {
        moofs(&out) >= moofs_resumed + 60
    });
    for name in ["publish", "subscribe"] {
        assert!(
            run.log(name).contains(RECONNECTED),
            "{name}\n{}",
            run.logs()
        );
    }
    let pid = run.child("subscribe").id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = run.wait_exit("subscribe", Duration::from_secs(5));
    assert!(status.success(), "hang subscribe on SIGTERM: {status}");

    let types = boxes(&out);
    assert_eq!(
        types.iter().filter(|t| *t == "ftyp").count(),
        1,
        "{types:?}"
    );
    assert_eq!(
        types.iter().filter(|t| *t == "moov").count(),
        1,
        "{types:?}"
    );
    let (video, frames) = probe(&out, "v:0");
    assert_eq!(frames as usize, video.len(), "every video packet decodes");
    let gap = assert_monotonic(&video, "video");
    // The outage shows as one jump in presentation time.
    assert!(
        gap >= 1.0,
        "no outage in the video timestamps (largest step {gap} s)"
    );
    (noticed_at - killed, resume)
}

#[test]
fn test_pattern_through_a_relay_restarted_after_the_clients_noticed_resumes_as_one_stream() {
    let (_, resume) =
        through_a_restarted_relay("pattern", Restart::AfterClientsNoticed, |run, url| {
            run.spawn(
                "publish",
                Command::new(env!("CARGO_BIN_EXE_hang")).args([
                    "publish",
                    "--url",
                    url,
                    "--name",
                    "restart.hang",
                    "--test-pattern",
                ]),
            );
        });
    assert!(resume <= RESUME_WITHIN, "{resume:?}");
}

#[test]
fn ffmpeg_fmp4_through_a_relay_restarted_at_once_resumes_as_one_stream() {
    through_a_restarted_relay("ffmpeg", Restart::AtOnce, |run, url| {
        let mut ffmpeg = Command::new("ffmpeg");
        ffmpeg
            .args(["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi"])
            .args(["-i", "testsrc2=size=320x240:rate=30"])
            .args(["-c:v", "libx264", "-g", "30", "-pix_fmt", "yuv420p"])
            .args([
                "-f",
                "mp4",
                "-movflags",
                "cmaf+separate_moof+delay_moov+skip_trailer",
            ])
            .args(["-frag_duration", "100000", "-"])
            .stdout(Stdio::piped());
        let media = run.spawn("ffmpeg", &mut ffmpeg).stdout.take().unwrap();
        run.spawn(
            "publish",
            Command::new(env!("CARGO_BIN_EXE_hang"))
                .args(["publish", "--url", url, "--name", "restart.hang"])
                .stdin(media),
        );
    });
}

#[test]
fn no_reconnect_makes_the_clients_exit_with_the_error_when_the_relay_dies() {
    let mut run = Run::new("no-reconnect");
    let url = start_relay_on(&mut run, "relay", None).http_url("/anon");
    let out = run.path("out.mp4");
    let file = std::fs::File::create(&out).unwrap();
    run.spawn(
        "subscribe",
        Command::new(env!("CARGO_BIN_EXE_hang"))
            .args(["subscribe", "--url", &url, "--name", "restart.hang"])
            .arg("--no-reconnect")
            .stdout(file),
    );
    // The publisher through the environment variable.
    run.spawn(
        "publish",
        Command::new(env!("CARGO_BIN_EXE_hang"))
            .args(["publish", "--url", &url, "--name", "restart.hang"])
            .arg("--test-pattern")
            .env("MOQ_NO_RECONNECT", "true"),
    );
    wait_until(&run, "output", Duration::from_secs(30), || {
        moofs(&out) >= 30
    });
    let relay = run.child("relay");
    relay.kill().unwrap();
    relay.wait().unwrap();
    for name in ["subscribe", "publish"] {
        let status = run.wait_exit(name, NOTICE_WITHIN);
        assert!(!status.success(), "{name} exited with {status}");
        let log = run.log(name);
        assert!(log.contains("Error: "), "{name}\n{log}");
        assert!(!log.contains(DISCONNECTED), "{name}\n{log}");
    }
}
