//! End to end through our relay: ffmpeg fMP4 → `hang publish` → `moq-relay` → `hang subscribe` →
//! fMP4 that ffprobe reads with the same codec, size, frame count and timestamps; and the built-in
//! `--test-pattern` source through the relay; a publisher stopped by a signal leaves at once.
//!
//! The relay binary comes from the same target directory (`cargo test --workspace` builds it).

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{announced, hang, start_relay, wait_announced, Run};

/// `ffprobe` facts about the video stream: codec, width, height, and every frame's pts (seconds).
fn probe(file: &std::path::Path) -> (String, u32, u32, Vec<f64>) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("ffprobe (scripts/test.sh installs ffmpeg)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut fields = text.trim().split(',');
    let codec = fields.next().unwrap_or_default().to_string();
    let width = fields.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    let height = fields.next().and_then(|h| h.parse().ok()).unwrap_or(0);
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .unwrap();
    let mut pts: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    pts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (codec, width, height, pts)
}

/// Publish `source` (an fMP4 file) live through the relay and return what `hang subscribe` wrote.
fn through_relay(run: &mut Run, source: &std::path::Path) -> PathBuf {
    let relay = start_relay(run);
    let out = run.path("out.mp4");
    let file = std::fs::File::create(&out).unwrap();
    run.spawn(
        "subscribe",
        hang(&relay, "subscribe", "e2e.hang").stdout(file),
    );
    // The publisher starts once the subscriber has its session and waits for the broadcast, so
    // that it sees the broadcast from its first frame (the frame count is compared below).
    run.wait_log(
        "subscribe",
        "waiting for the broadcast",
        Duration::from_secs(20),
    );

    // Pace the file like a live source (-re), copying the packets unchanged.
    let mut ffmpeg = Command::new("ffmpeg");
    ffmpeg
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(source)
        .args([
            "-c",
            "copy",
            "-f",
            "mp4",
            "-movflags",
            "cmaf+separate_moof+delay_moov+skip_trailer+frag_every_frame",
            "-",
        ])
        .stdout(Stdio::piped());
    let media = run.spawn("ffmpeg", &mut ffmpeg).stdout.take().unwrap();
    run.spawn("publish", hang(&relay, "publish", "e2e.hang").stdin(media));
    let status = run.wait_exit("publish", Duration::from_secs(30));
    assert!(status.success(), "hang publish failed\n{}", run.logs());
    // The subscriber ends by itself once the broadcast's tracks end.
    let status = run.wait_exit("subscribe", Duration::from_secs(10));
    assert!(status.success(), "hang subscribe failed\n{}", run.logs());
    out
}

fn make_source(run: &Run, name: &str, x264: &[&str]) -> PathBuf {
    let source = run.path(name);
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
            "-t",
            "2",
        ])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "30"])
        .args(x264)
        .args([
            "-f",
            "mp4",
            "-movflags",
            "cmaf+separate_moof+delay_moov+skip_trailer+frag_every_frame",
        ])
        .arg(&source)
        .status()
        .expect("ffmpeg (scripts/test.sh installs it)");
    assert!(status.success());
    source
}

/// ffplay (headless: SDL's dummy video and audio drivers) plays the file to the end without an
/// error line. (`-nodisp` cannot be used: ffplay then refuses video-only files.)
fn assert_plays(file: &std::path::Path) {
    let out = Command::new("ffplay")
        .args(["-autoexit", "-loglevel", "error"])
        .arg(file)
        .env("SDL_AUDIODRIVER", "dummy")
        .env("SDL_VIDEODRIVER", "dummy")
        .output()
        .expect("ffplay (scripts/test.sh installs ffmpeg)");
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && errors.trim().is_empty(),
        "ffplay: {errors}"
    );
}

fn assert_same(source: &std::path::Path, out: &std::path::Path) {
    assert_plays(out);
    let (codec, w, h, src_pts) = probe(source);
    let (out_codec, out_w, out_h, out_pts) = probe(out);
    assert_eq!((out_codec.as_str(), out_w, out_h), (codec.as_str(), w, h));
    assert_eq!(out_pts.len(), src_pts.len(), "frame count");
    // Timestamps preserved (relative to the first frame; ffmpeg may shift the origin).
    let (s0, o0) = (src_pts[0], out_pts[0]);
    for (s, o) in src_pts.iter().zip(&out_pts) {
        assert!(((s - s0) - (o - o0)).abs() < 0.001, "pts {o} vs source {s}");
    }
}

#[test]
fn ffmpeg_fmp4_through_the_relay() {
    let mut run = Run::new("plain");
    let source = make_source(
        &run,
        "src.mp4",
        &["-preset", "ultrafast", "-tune", "zerolatency"],
    );
    let out = through_relay(&mut run, &source);
    assert_same(&source, &out);
}

#[test]
fn b_frames_through_the_relay() {
    let mut run = Run::new("bframes");
    let source = make_source(&run, "src.mp4", &["-preset", "veryfast", "-bf", "2"]);
    let out = through_relay(&mut run, &source);
    assert_same(&source, &out);
}

/// The video frames the test pattern reports it skipped (its latest `total=`), 0 if none.
fn source_skips(log: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains("video frames skipped"))
        .filter_map(|l| {
            l.split("total=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .max()
        .unwrap_or(0)
}

/// `hang publish --test-pattern` through the relay: H.264 640x360 at 30 fps with timestamps 1/30 s
/// apart (none lost in the middle but those the source reports skipping), plus Opus audio.
#[test]
fn test_pattern_through_the_relay() {
    let mut run = Run::new("pattern");
    let relay = start_relay(&mut run);
    run.spawn(
        "publish",
        hang(&relay, "publish", "pattern.hang").arg("--test-pattern"),
    );
    let out = run.path("out.mp4");
    let file = std::fs::File::create(&out).unwrap();
    run.spawn(
        "subscribe",
        hang(&relay, "subscribe", "pattern.hang").stdout(file),
    );
    // Live output until ffprobe reads more than 2 s of video from it (probed every 250 ms: each
    // probe reads the whole file), then SIGTERM: the subscriber finishes the fragment it is
    // writing (a SIGKILL could cut the last one short and fail the playback check below).
    let deadline = Instant::now() + Duration::from_secs(60);
    while probe(&out).3.len() < 70 {
        assert!(
            Instant::now() < deadline,
            "not 70 video frames in a minute\n{}",
            run.logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let subscriber = run.child("subscribe");
    let _ = Command::new("kill")
        .args(["-TERM", &subscriber.id().to_string()])
        .status();
    let _ = subscriber.wait();

    let (codec, width, height, pts) = probe(&out);
    assert_eq!((codec.as_str(), width, height), ("h264", 640, 360));
    assert_plays(&out);
    assert!(pts.len() >= 60, "only {} video frames", pts.len());
    // Frames sit on the 30 fps grid. A live source that falls behind real time (a busy machine)
    // skips slots and says so in its log, at most once a second: the wait lets a report of the
    // last second's skips come out (a report that is not the subject of this test, and has no
    // event of its own to wait for); the relay path must lose none.
    std::thread::sleep(Duration::from_millis(1200));
    let skipped = source_skips(&run.log("publish"));
    let mut missing = 0;
    for pair in pts.windows(2) {
        let slots = (pair[1] - pair[0]) * 30.0;
        assert!(
            slots.round() >= 1.0 && (slots - slots.round()).abs() < 0.06,
            "frames {:.4} s apart at {}",
            pair[1] - pair[0],
            pair[0]
        );
        missing += slots.round() as u64 - 1;
    }
    assert!(
        missing <= skipped,
        "{missing} frames missing between the first and last, the source skipped {skipped}\n{}",
        run.logs()
    );
    let audio = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&audio.stdout).trim(), "opus");

    // The publisher anchors media time to the wall clock, so the subscriber reports latency.
    let log = run.log("subscribe");
    let latencies: Vec<i64> = log
        .split("latency_ms=")
        .skip(1)
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit() && c != '-')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(
        !latencies.is_empty(),
        "no latency in the subscriber's stats:\n{log}"
    );
    assert!(
        latencies.iter().all(|l| (-50..2000).contains(l)),
        "implausible latencies {latencies:?}"
    );
}

/// SIGTERM to `hang publish`: it closes the session and waits for the close to reach the relay
/// before exiting, so the relay drops the broadcast at once, not at its 10 s idle timeout (a
/// publisher that exited with the close still unsent left it listed that long).
#[test]
fn a_publisher_stopped_by_sigterm_leaves_the_relay_at_once() {
    let mut run = Run::new("sigterm");
    let relay = start_relay(&mut run);
    for round in 0..3 {
        run.spawn(
            &format!("publish{round}"),
            hang(&relay, "publish", "stop.hang").arg("--test-pattern"),
        );
        let listed = || announced(&relay).contains(&"anon/stop.hang".to_string());
        wait_announced(&run, &relay, "anon/stop.hang");

        let publisher = run.child(&format!("publish{round}"));
        let stopped = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &publisher.id().to_string()])
            .status();
        let status = publisher.wait().unwrap();
        assert!(status.success(), "round {round}: {status}\n{}", run.logs());
        while listed() {
            assert!(
                stopped.elapsed() < Duration::from_secs(3),
                "round {round}: still announced {:?} after SIGTERM\n{}",
                stopped.elapsed(),
                run.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
