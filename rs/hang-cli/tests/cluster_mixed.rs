//! Media through a mixed cluster: our relay linked with the reference `moq-relay` 0.17.10
//! (scripts/install-peers.sh; spec §13.1), once dialing it and once dialed by it. A live ffmpeg
//! H.264 fMP4 stream is published with `hang publish` on each relay and played with
//! `hang subscribe` from the other one; ffprobe reads the codec, size, frame count and pts of
//! what the viewer wrote.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{relay_bin, RelayAddrs, RelayOptions, Run};

/// Frames each publisher sends: 4 s at 30 fps, a keyframe every second.
const FRAMES: usize = 120;
const FPS: f64 = 30.0;

/// One relay of the pair, as `hang` reaches it.
struct Endpoint {
    /// `https://127.0.0.1:PORT` (no path).
    base: String,
    /// Hex SHA-256 of its certificate (both relays serve `/certificate.sha256`).
    fingerprint: String,
}

impl Endpoint {
    fn ours(relay: &RelayAddrs) -> Self {
        Self {
            base: format!("https://{}", relay.quic),
            fingerprint: relay.fingerprint.clone(),
        }
    }

    fn reference(port: u16) -> Self {
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        let response = test_support::http::get_blocking(addr, "/certificate.sha256")
            .expect("GET /certificate.sha256 from the reference relay");
        assert_eq!(response.status, 200, "{}", response.body);
        Self {
            base: format!("https://127.0.0.1:{port}"),
            fingerprint: response.body.trim().to_string(),
        }
    }

    /// `hang SUBCOMMAND` for broadcast `anon/NAME` on this relay, its certificate pinned.
    fn hang(&self, subcommand: &str, name: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hang"));
        cmd.args([subcommand, "--url", &format!("{}/anon", self.base)])
            .args(["--name", name, "--tls-fingerprint", &self.fingerprint]);
        cmd
    }
}

/// What ffprobe reads from a file's video stream: codec, size, and the pts (seconds) of every
/// packet in file order.
#[derive(Debug)]
struct Probe {
    codec: String,
    width: u32,
    height: u32,
    pts: Vec<f64>,
}

fn probe(file: &Path) -> Probe {
    let ffprobe = |entries: &str| {
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
            .args([entries, "-of", "csv=p=0"])
            .arg(file)
            .output()
            .expect("ffprobe (scripts/test.sh installs ffmpeg)");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let stream = ffprobe("stream=codec_name,width,height");
    let mut fields = stream.trim().split(',');
    let codec = fields.next().unwrap_or_default().to_string();
    let width = fields.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    let height = fields.next().and_then(|h| h.parse().ok()).unwrap_or(0);
    let pts = ffprobe("packet=pts_time")
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    Probe {
        codec,
        width,
        height,
        pts,
    }
}

/// `ffmpeg` making a live (`-re`) H.264 fMP4 stream of `FRAMES` test-pattern frames of
/// `width`x`height` on its stdout, one fragment per frame, started as child `name`.
fn live_source(run: &mut Run, name: &str, width: u32, height: u32) -> std::process::ChildStdout {
    let mut ffmpeg = Command::new("ffmpeg");
    ffmpeg
        .args(["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi"])
        .args([
            "-i",
            &format!("testsrc2=size={width}x{height}:rate={FPS}"),
            "-frames:v",
            &FRAMES.to_string(),
        ])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-tune"])
        .args([
            "zerolatency",
            "-g",
            "30",
            "-pix_fmt",
            "yuv420p",
            "-f",
            "mp4",
        ])
        .args([
            "-movflags",
            "cmaf+separate_moof+delay_moov+skip_trailer+frag_every_frame",
            "-",
        ])
        .stdout(Stdio::piped());
    run.spawn(name, &mut ffmpeg).stdout.take().unwrap()
}

/// A broadcast published on one relay and viewed from the other.
struct Leg {
    /// The broadcast's name under `anon/`, and the child names' stem.
    name: &'static str,
    width: u32,
    height: u32,
}

/// Publish each leg's broadcast on `from` and view it from `to` (one viewer each, started first
/// so that it sees the broadcast from its start), then check with ffprobe what the viewers wrote.
fn publish_and_view(run: &mut Run, legs: [(&Leg, &Endpoint, &Endpoint); 2]) {
    let mut outputs = Vec::new();
    for (leg, _, to) in &legs {
        let out = run.path(&format!("{}.mp4", leg.name));
        let file = std::fs::File::create(&out).unwrap();
        let viewer = format!("{}-subscribe", leg.name);
        run.spawn(
            &viewer,
            to.hang("subscribe", &format!("{}.hang", leg.name))
                .stdout(file),
        );
        run.wait_log(
            &viewer,
            "waiting for the broadcast",
            Duration::from_secs(20),
        );
        outputs.push(out);
    }
    for (leg, from, _) in &legs {
        let media = live_source(run, &format!("{}-ffmpeg", leg.name), leg.width, leg.height);
        run.spawn(
            &format!("{}-publish", leg.name),
            from.hang("publish", &format!("{}.hang", leg.name))
                .stdin(media),
        );
    }
    for (leg, _, _) in &legs {
        let status = run.wait_exit(&format!("{}-publish", leg.name), Duration::from_secs(30));
        assert!(
            status.success(),
            "{} publish failed\n{}",
            leg.name,
            run.logs()
        );
    }
    // The viewers end by themselves when the broadcast's tracks end.
    for (leg, _, _) in &legs {
        let status = run.wait_exit(&format!("{}-subscribe", leg.name), Duration::from_secs(15));
        assert!(
            status.success(),
            "{} subscribe failed\n{}",
            leg.name,
            run.logs()
        );
    }

    for ((leg, _, _), out) in legs.iter().zip(&outputs) {
        let probe = probe(out);
        let first = probe.pts.first().copied().unwrap_or(f64::NAN);
        let last = probe.pts.last().copied().unwrap_or(f64::NAN);
        eprintln!(
            "{}: {} {}x{}, {} of {FRAMES} frames, pts {first:.3}..{last:.3} s",
            leg.name,
            probe.codec,
            probe.width,
            probe.height,
            probe.pts.len()
        );
        assert_eq!(
            (probe.codec.as_str(), probe.width, probe.height),
            ("h264", leg.width, leg.height),
            "{}",
            leg.name
        );
        // The viewer subscribed before the publisher started: it gets the first group (a second
        // of frames) unless that was too old to fetch when its subscription reached the origin;
        // then every later frame.
        assert!(
            probe.pts.len() >= FRAMES - 30 && probe.pts.len() <= FRAMES,
            "{}: {} frames\n{}",
            leg.name,
            probe.pts.len(),
            run.logs()
        );
        // In file order, each pts exactly one frame interval after the one before: increasing,
        // and no frame lost in the middle.
        let gaps: Vec<f64> = probe.pts.windows(2).map(|p| p[1] - p[0]).collect();
        eprintln!(
            "{}: pts steps {:.4}..{:.4} s",
            leg.name,
            gaps.iter().copied().fold(f64::INFINITY, f64::min),
            gaps.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        );
        for pair in probe.pts.windows(2) {
            let intervals = (pair[1] - pair[0]) * FPS;
            assert!(
                (intervals - 1.0).abs() < 0.06,
                "{}: pts {} then {}",
                leg.name,
                pair[0],
                pair[1]
            );
        }
    }
    for relay in ["ours", "reference"] {
        assert!(!run.log(relay).contains("panicked"), "{}", run.log(relay));
    }
}

/// Our relay (anonymous access) with cluster id `id` and `cluster` arguments.
fn start_ours(run: &mut Run, id: &str, cluster: &[&str]) -> RelayAddrs {
    let options = RelayOptions::new()
        .internal()
        .args(["--auth-public", "", "--cluster-id", id])
        .args(cluster.iter().copied());
    run.start_relay("ours", &relay_bin(), &options)
}

/// Our relay's one cluster link is up (`GET /cluster`), at the version two relays of 0.17.10's
/// generation speak: moq-lite-06.
fn assert_link_up(run: &Run, ours: &RelayAddrs) {
    run.wait_until("our relay's link up", Duration::from_secs(20), || {
        let response = test_support::http::get_blocking(ours.internal(), "/cluster").ok()?;
        let view: serde_json::Value = serde_json::from_str(&response.body).ok()?;
        let links = view["links"].as_object()?;
        let up = links.len() == 1 && links.values().all(|l| l["state"] == "up");
        up.then(|| links.values().next().map(|l| l["version"].clone()))
    })
    .inspect(|version| eprintln!("our link to the reference relay is up: {version}"))
    .filter(|version| version == "moq-lite-06")
    .expect("the link speaks moq-lite-06");
}

const OURS: Leg = Leg {
    name: "ours",
    width: 320,
    height: 240,
};
const THEIRS: Leg = Leg {
    name: "theirs",
    width: 384,
    height: 216,
};

#[test]
fn ours_dialing_the_reference_relay_carries_media_both_ways() {
    let mut run = Run::new("cluster-mixed-ours-dials");
    let port = run.start_reference_relay("reference", &["--cluster-id", "91"]);
    let reference_url = format!("https://127.0.0.1:{port}/");
    let ours = start_ours(
        &mut run,
        "92",
        &[
            "--connect-tls-insecure",
            "--cluster-connect",
            &reference_url,
        ],
    );
    assert_link_up(&run, &ours);
    let (ours_end, theirs_end) = (Endpoint::ours(&ours), Endpoint::reference(port));
    publish_and_view(
        &mut run,
        [
            (&OURS, &ours_end, &theirs_end),
            (&THEIRS, &theirs_end, &ours_end),
        ],
    );
}

#[test]
fn the_reference_relay_dialing_ours_carries_media_both_ways() {
    let mut run = Run::new("cluster-mixed-theirs-dials");
    let ours = start_ours(&mut run, "94", &[]);
    let ours_url = format!("https://{}/", ours.quic);
    let port = run.start_reference_relay(
        "reference",
        &[
            "--cluster-id",
            "93",
            "--cluster-connect",
            &ours_url,
            "--connect-tls-insecure",
        ],
    );
    let (ours_end, theirs_end) = (Endpoint::ours(&ours), Endpoint::reference(port));
    // No link of ours to watch: the reference's link is a live session on ours (its only one).
    run.wait_until(
        "the reference relay's session on ours",
        Duration::from_secs(20),
        || {
            let response = test_support::http::get_blocking(ours.internal(), "/metrics").ok()?;
            response
                .body
                .lines()
                .any(|l| l.starts_with("moq_relay_session_rtt_seconds{"))
                .then_some(())
        },
    );
    publish_and_view(
        &mut run,
        [
            (&OURS, &ours_end, &theirs_end),
            (&THEIRS, &theirs_end, &ours_end),
        ],
    );
}
