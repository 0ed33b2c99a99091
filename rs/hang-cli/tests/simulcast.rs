//! `hang publish --test-pattern --renditions 640x360@1200,320x180@300` through our relay: the
//! catalog lists both renditions (codec, size, bitrate, frame rate), each is its own track, and
//! their keyframes fall on the same timestamps, so a viewer can switch at any group boundary.
//! `hang subscribe` writes both tracks to one fMP4, which ffprobe reads.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{hang, start_relay, wait_announced, Run};

/// Every packet of stream `selector` of `file`: (pts in seconds, keyframe).
fn packets(file: &std::path::Path, selector: &str) -> Vec<(f64, bool)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", selector])
        .args(["-show_entries", "packet=pts_time,flags", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe (scripts/test.sh installs ffmpeg)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (pts, flags) = line.split_once(',')?;
            Some((pts.parse().ok()?, flags.starts_with('K')))
        })
        .collect()
}

fn size(file: &std::path::Path, selector: &str) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", selector])
        .args([
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn test_pattern_simulcast_has_aligned_renditions() {
    let mut run = Run::new("simulcast");
    let relay = start_relay(&mut run);
    run.spawn(
        "publish",
        hang(&relay, "publish", "sim.hang")
            .args(["--test-pattern", "--renditions", "640x360@1200,320x180@300"])
            .stdout(Stdio::null()),
    );
    wait_announced(&run, &relay, "anon/sim.hang");
    // The catalog, as any viewer gets it (the relay's HTTP fetch of its latest group).
    let response =
        test_support::http::get_blocking(relay.http, "/fetch/anon/sim.hang/catalog.json")
            .expect("GET the catalog");
    assert_eq!(response.status, 200, "{}", response.body);
    let catalog: serde_json::Value = serde_json::from_str(&response.body).expect("catalog JSON");
    let renditions = catalog["video"]["renditions"]
        .as_object()
        .expect("video renditions");
    let mut listed: Vec<(u64, u64, u64, f64, bool)> = renditions
        .values()
        .map(|r| {
            (
                r["codedWidth"].as_u64().unwrap_or(0),
                r["codedHeight"].as_u64().unwrap_or(0),
                r["bitrate"].as_u64().unwrap_or(0),
                r["framerate"].as_f64().unwrap_or(0.0),
                r["codec"].as_str().unwrap_or("").starts_with("avc3."),
            )
        })
        .collect();
    listed.sort_by_key(|r| r.0);
    assert_eq!(
        listed,
        [
            (320, 180, 300_000, 30.0, true),
            (640, 360, 1_200_000, 30.0, true)
        ],
        "{catalog}"
    );

    let out = run.path("sim.mp4");
    let subscriber = run.spawn(
        "subscribe",
        hang(&relay, "subscribe", "sim.hang").stdout(std::fs::File::create(&out).unwrap()),
    );
    // Two groups (2 s each) and a bit: the second group's keyframe is in both renditions.
    let deadline = Instant::now() + Duration::from_secs(60);
    while packets(&out, "v:1").len() < 130 {
        assert!(
            subscriber.try_wait().unwrap().is_none(),
            "hang subscribe ended early"
        );
        assert!(
            Instant::now() < deadline,
            "not 130 frames of the second rendition in a minute"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &subscriber.id().to_string()])
        .status();
    let _ = subscriber.wait();

    let mut sizes = [size(&out, "v:0"), size(&out, "v:1")];
    sizes.sort();
    assert_eq!(sizes, ["h264,320,180", "h264,640,360"], "{}", run.logs());
    let keys = |selector| -> Vec<String> {
        packets(&out, selector)
            .iter()
            .filter(|(_, key)| *key)
            .map(|(pts, _)| format!("{pts:.3}"))
            .collect()
    };
    let (big, small) = (keys("v:0"), keys("v:1"));
    println!("keyframes at {big:?} and {small:?}");
    assert!(big.len() >= 2, "{big:?}");
    // The subscriber joined both tracks at their latest group: compare the keyframes both have.
    let common: Vec<&String> = big.iter().filter(|k| small.contains(k)).collect();
    assert!(common.len() >= 2, "keyframes {big:?} vs {small:?}");
    assert_eq!(big.last(), small.last(), "the newest keyframes differ");
}

/// ffmpeg maps one input to two encodes (640x360 at 1.2 Mbit/s, 320x180 at 300 kbit/s, the same
/// GoP) into one fMP4; `hang publish` makes each video track a rendition with its size and the
/// bitrate of its `btrt` box.
#[test]
fn an_fmp4_with_two_video_tracks_publishes_two_renditions() {
    let mut run = Run::new("simulcast-fmp4");
    let relay = start_relay(&mut run);
    let mut ffmpeg = Command::new("ffmpeg");
    ffmpeg
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-map", "0:v", "-map", "0:v", "-filter:v:1", "scale=320:180"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args([
            "-g",
            "60",
            "-keyint_min",
            "60",
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-b:v:0", "1200k", "-b:v:1", "300k"])
        .args(["-f", "mp4", "-frag_duration", "100000"])
        .args([
            "-movflags",
            "cmaf+separate_moof+delay_moov+skip_trailer",
            "-",
        ])
        .stdout(Stdio::piped());
    let media = run.spawn("ffmpeg", &mut ffmpeg).stdout.take().unwrap();
    run.spawn(
        "publish",
        hang(&relay, "publish", "two.hang")
            .stdin(media)
            .stdout(Stdio::null()),
    );
    wait_announced(&run, &relay, "anon/two.hang");
    let response =
        test_support::http::get_blocking(relay.http, "/fetch/anon/two.hang/catalog.json")
            .expect("GET the catalog");
    let catalog: serde_json::Value = serde_json::from_str(&response.body).expect("catalog JSON");
    let mut listed: Vec<(u64, u64, u64)> = catalog["video"]["renditions"]
        .as_object()
        .expect("video renditions")
        .values()
        .map(|r| {
            (
                r["codedWidth"].as_u64().unwrap_or(0),
                r["codedHeight"].as_u64().unwrap_or(0),
                r["bitrate"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    listed.sort();
    println!("renditions: {listed:?}");
    assert_eq!(listed.len(), 2, "{catalog}");
    assert_eq!((listed[0].0, listed[0].1), (320, 180), "{catalog}");
    assert_eq!((listed[1].0, listed[1].1), (640, 360), "{catalog}");
    assert_eq!(
        (listed[0].2, listed[1].2),
        (300_000, 1_200_000),
        "{catalog}"
    );
}

/// `hang subscribe --abr --format annex-b` of the simulcast on loopback: it starts on the small
/// rendition; the link (bursts of frames arriving, capped by the relay's PROBE reports) has far
/// more room than the big one needs, so it moves up (4 s of estimates, then the next keyframe)
/// and the stream changes size with no frame lost: ffmpeg decodes it without an error, and the
/// frames keep the source's 30 per second.
#[test]
fn hang_subscribe_abr_moves_up_when_the_link_has_room() {
    let mut run = Run::new("simulcast-abr");
    let relay = start_relay(&mut run);
    run.spawn(
        "publish",
        hang(&relay, "publish", "abr.hang")
            .args(["--test-pattern", "--renditions", "640x360@1200,320x180@300"])
            .stdout(Stdio::null()),
    );
    wait_announced(&run, &relay, "anon/abr.hang");
    let out = run.path("abr.h264");
    run.spawn(
        "subscribe",
        hang(&relay, "subscribe", "abr.hang")
            .args(["--abr", "--format", "annex-b"])
            .stdout(std::fs::File::create(&out).unwrap()),
    );
    // The switch is logged when the first big frame is written.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !run.log("subscribe").contains("now writing") {
        assert!(
            run.exited("subscribe").is_none(),
            "hang subscribe ended early"
        );
        assert!(
            Instant::now() < deadline,
            "no switch in 30 s\n{}",
            run.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Two more seconds of the big one.
    std::thread::sleep(Duration::from_secs(2));
    let subscriber = run.child("subscribe");
    let _ = Command::new("kill")
        .args(["-TERM", &subscriber.id().to_string()])
        .status();
    let _ = subscriber.wait();

    let decoded = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(&out)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let errors = String::from_utf8_lossy(&decoded.stderr);
    assert!(errors.trim().is_empty(), "ffmpeg: {errors}");
    let widths = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "frame=width",
            "-of",
            "csv=p=0",
        ])
        .arg(&out)
        .output()
        .expect("ffprobe");
    let widths: Vec<u32> = String::from_utf8_lossy(&widths.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let small = widths.iter().take_while(|w| **w == 320).count();
    let big = widths[small..].iter().filter(|w| **w == 640).count();
    println!(
        "abr: {small} frames at 320x180, then {big} at 640x360 ({} in all)",
        widths.len()
    );
    assert!(small > 0, "starts on the small rendition: {widths:?}");
    assert_eq!(small + big, widths.len(), "one switch, up: {widths:?}");
    assert!(big >= 45, "{big} frames after the switch");
    let log = run.log("subscribe");
    assert!(
        log.contains("switching rendition") && log.contains("video0"),
        "{log}"
    );
}
