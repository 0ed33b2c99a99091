//! CMAF-container renditions from the public reference: `moq` 0.14.10 (crates.io, installed by
//! scripts/install-peers.sh) `import fmp4` publishes a live ffmpeg fMP4 stream (H.264 + Opus, or
//! H.264 + AAC) with `{"kind":"cmaf","init":...}` renditions, through our relay; `hang subscribe`
//! writes it as one fMP4 (the renditions' init segments merged, their fragments passed through)
//! that ffmpeg decodes without an error: codecs, size, frame counts, and timestamps on the
//! source's grid, increasing, with no frame lost.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{hang, start_relay, wait_announced, Run};

fn reference_moq() -> PathBuf {
    test_support::peers::binary("cli-0.14.10", "moq")
}

/// Video frames to wait for in the export before stopping it (3 s at 30 fps).
const FRAMES: usize = 90;

/// One stream of an ffprobe'd file: codec, size, and every packet's (pts, dts) in seconds.
#[derive(Debug, Default)]
struct Stream {
    codec: String,
    width: u32,
    height: u32,
    packets: Vec<(f64, f64)>,
}

/// ffprobe `file`: its first video and first audio stream.
fn probe(file: &Path) -> (Stream, Stream) {
    let mut out = (Stream::default(), Stream::default());
    for (selector, stream) in [("v:0", &mut out.0), ("a:0", &mut out.1)] {
        let run = |entries: &str| {
            let output = Command::new("ffprobe")
                .args(["-v", "error", "-select_streams", selector])
                .args(["-show_entries", entries, "-of", "csv=p=0"])
                .arg(file)
                .output()
                .expect("ffprobe (scripts/test.sh installs ffmpeg)");
            String::from_utf8_lossy(&output.stdout).to_string()
        };
        let info = run("stream=codec_name,width,height");
        let mut fields = info.trim().split(',');
        stream.codec = fields.next().unwrap_or_default().to_string();
        stream.width = fields.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        stream.height = fields.next().and_then(|h| h.parse().ok()).unwrap_or(0);
        stream.packets = run("packet=pts_time,dts_time")
            .lines()
            .filter_map(|line| {
                let (pts, dts) = line.split_once(',')?;
                Some((pts.parse().ok()?, dts.parse().ok()?))
            })
            .collect();
    }
    out
}

/// Timestamps increase by exactly one `step` (seconds), none missing; decode times increase.
fn assert_on_grid(what: &str, packets: &[(f64, f64)], step: f64) {
    for pair in packets.windows(2) {
        let ((pts0, dts0), (pts1, dts1)) = (pair[0], pair[1]);
        assert!(dts1 > dts0, "{what}: dts {dts1} after {dts0}");
        assert!(
            ((pts1 - pts0) - step).abs() < 0.0015,
            "{what}: pts {pts0} then {pts1}, not {step} s apart"
        );
    }
}

/// ffmpeg decodes every packet of `file` with nothing on stderr; returns the decoded frame count
/// of the video stream.
fn assert_decodes(file: &Path) -> usize {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && errors.trim().is_empty(),
        "ffmpeg: {errors}"
    );
    let frames = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&frames.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// The reference CLI publishes ffmpeg's live A+V fMP4 as `name`; `hang subscribe` exports it.
fn export_reference_broadcast(tag: &str, audio_encoder: &str) -> (Run, PathBuf) {
    let mut run = Run::new(tag);
    let relay = start_relay(&mut run);
    let mut ffmpeg = Command::new("ffmpeg");
    ffmpeg
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args(["-g", "30", "-pix_fmt", "yuv420p"])
        .args(["-c:a", audio_encoder, "-b:a", "64k"])
        // A+V: 100 ms fragments (one per frame repeats a tfdt, which the reference refuses).
        .args(["-f", "mp4", "-frag_duration", "100000"])
        .args([
            "-movflags",
            "cmaf+separate_moof+delay_moov+skip_trailer",
            "-",
        ])
        .stdout(Stdio::piped());
    let media = run.spawn("ffmpeg", &mut ffmpeg).stdout.take().unwrap();
    let name = format!("{tag}.hang");
    run.spawn(
        "moq-import",
        Command::new(reference_moq())
            .args(["--connect", &relay.url("/anon"), "--connect-tls-insecure"])
            .args(["import", "--broadcast", &name, "fmp4"])
            .stdin(media),
    );
    wait_announced(&run, &relay, &format!("anon/{name}"));
    let out = run.path("export.mp4");
    let file = std::fs::File::create(&out).unwrap();
    run.spawn("subscribe", hang(&relay, "subscribe", &name).stdout(file));
    // Live output until ffprobe reads FRAMES video frames from it, then SIGTERM: the subscriber
    // finishes the fragment it is writing.
    let deadline = Instant::now() + Duration::from_secs(60);
    while probe(&out).0.packets.len() < FRAMES {
        assert!(
            Instant::now() < deadline,
            "not {FRAMES} video frames in a minute\n{}",
            run.logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let subscriber = run.child("subscribe");
    let _ = Command::new("kill")
        .args(["-TERM", &subscriber.id().to_string()])
        .status();
    let _ = subscriber.wait();
    (run, out)
}

fn check(tag: &str, audio_encoder: &str, audio_codec: &str, audio_step: f64) {
    let (run, out) = export_reference_broadcast(tag, audio_encoder);
    let (video, audio) = probe(&out);
    let context = || format!("{video:?}\n{audio:?}\n{}", run.logs());
    assert_eq!(
        (video.codec.as_str(), video.width, video.height),
        ("h264", 320, 240),
        "{}",
        context()
    );
    assert_eq!(audio.codec, audio_codec, "{}", context());
    assert!(video.packets.len() >= FRAMES, "{}", context());
    assert_on_grid("video", &video.packets, 1.0 / 30.0);
    // 3 s of audio at least, less what the video's first group started before.
    assert!(
        audio.packets.len() as f64 >= 2.0 / audio_step,
        "{}",
        context()
    );
    assert_on_grid("audio", &audio.packets, audio_step);
    let decoded = assert_decodes(&out);
    assert_eq!(decoded, video.packets.len(), "decoded video frames");
    let span = |p: &[(f64, f64)]| p.last().map_or(0.0, |l| l.0) - p.first().map_or(0.0, |f| f.0);
    println!(
        "{tag}: {} bytes; video {} {}x{} {} frames over {:.3} s, all decoded; audio {} {} frames over {:.3} s",
        std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0),
        video.codec,
        video.width,
        video.height,
        video.packets.len(),
        span(&video.packets),
        audio.codec,
        audio.packets.len(),
        span(&audio.packets),
    );
}

#[test]
fn hang_subscribe_writes_playable_fmp4_from_the_reference_cmaf_broadcast_h264_opus() {
    check("ref-cmaf-opus", "libopus", "opus", 0.020);
}

#[test]
fn hang_subscribe_writes_playable_fmp4_from_the_reference_cmaf_broadcast_h264_aac() {
    check("ref-cmaf-aac", "aac", "aac", 1024.0 / 48_000.0);
}
