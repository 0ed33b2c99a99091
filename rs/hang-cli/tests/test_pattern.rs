//! `--test-pattern`: `hang serve` makes its own live media (no stdin, no ffmpeg), and `hang
//! subscribe` gets H.264 640x360 video and a 440 Hz Opus tone that ffprobe/ffmpeg decode.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Run;

/// One stream's `ffprobe -count_frames` facts as `key=value` pairs.
fn probe(file: &Path, stream: &str, entries: &str) -> Vec<(String, String)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", stream])
        .args(["-show_entries", &format!("stream={entries}")])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(file)
        .output()
        .expect("ffprobe (scripts/test.sh installs ffmpeg)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn field<'a>(facts: &'a [(String, String)], key: &str) -> &'a str {
    facts
        .iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

/// The audio decoded by ffmpeg: its frequency from rising zero crossings, in Hz.
fn tone_frequency(file: &Path) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args([
            "-map", "0:a", "-f", "s16le", "-ac", "1", "-ar", "48000", "-",
        ])
        .output()
        .unwrap();
    let samples: Vec<i16> = out
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    // Skip the decoder's first 100 ms (Opus pre-roll).
    let samples = &samples[4800.min(samples.len())..];
    assert!(
        samples.len() >= 48_000,
        "{} samples of audio",
        samples.len()
    );
    let rising = samples.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
    rising as f64 * 48_000.0 / samples.len() as f64
}

#[test]
fn serve_test_pattern_plays_as_h264_and_opus() {
    let mut run = Run::new("serve");
    // Port 0: `hang serve` binds QUIC there, then TCP (the fingerprint) on the number it got,
    // and reports it in its first log line. That TCP port can be in use already (QUIC's number
    // was free for UDP only): it exits then, and is started again for another number.
    let mut serving = None;
    for _ in 0..3 {
        run.spawn(
            "serve",
            Command::new(env!("CARGO_BIN_EXE_hang")).args([
                "serve",
                "--name",
                "p.hang",
                "--test-pattern",
                "--server-bind",
                "127.0.0.1:0",
                "--tls-generate",
                "localhost",
            ]),
        );
        // Some(line) once it serves, None if it exited first. (The run prints every log if
        // this panics.)
        let started = test_support::wait::until(
            "hang serve reports its address",
            Duration::from_secs(20),
            || {
                let log = run.log("serve");
                match log.lines().find(|l| l.contains("serving")) {
                    Some(line) => Some(Some(line.to_string())),
                    None => run.exited("serve").map(|_| None),
                }
            },
            String::new,
        );
        if started.is_some() {
            serving = started;
            break;
        }
        run.remove("serve");
    }
    let serving = serving.unwrap_or_else(|| panic!("hang serve exited at start three times"));
    let addr = serving
        .split("addr=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no addr= in {serving:?}"));

    let out = run.path("out.mp4");
    let file = std::fs::File::create(&out).unwrap();
    let url = format!("http://{addr}/");
    let subscriber = run.spawn(
        "subscribe",
        Command::new(env!("CARGO_BIN_EXE_hang"))
            .args(["subscribe", "--url", &url, "--name", "p.hang"])
            .stdout(file),
    );
    // Output until ffmpeg decodes more than 2 s of video from it (checked every 250 ms: each
    // check decodes the whole file).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let video = probe(&out, "v:0", "nb_read_frames");
        if field(&video, "nb_read_frames").parse().unwrap_or(0) >= 70 {
            break;
        }
        assert!(
            subscriber.try_wait().unwrap().is_none(),
            "hang subscribe ended early"
        );
        assert!(Instant::now() < deadline, "not 70 video frames in a minute");
        std::thread::sleep(Duration::from_millis(250));
    }
    // SIGTERM: the subscriber finishes the fragment it is writing before it exits.
    let _ = Command::new("kill")
        .args(["-TERM", &subscriber.id().to_string()])
        .status();
    let status = subscriber.wait().unwrap();
    assert!(status.success(), "hang subscribe on SIGTERM: {status}");

    let video = probe(&out, "v:0", "codec_name,width,height,nb_read_frames");
    assert_eq!(
        (
            field(&video, "codec_name"),
            field(&video, "width"),
            field(&video, "height")
        ),
        ("h264", "640", "360"),
        "{video:?}"
    );
    let frames: u64 = field(&video, "nb_read_frames").parse().unwrap_or(0);
    assert!(frames >= 60, "{frames} video frames decoded");

    let audio = probe(
        &out,
        "a:0",
        "codec_name,sample_rate,channels,nb_read_frames",
    );
    assert_eq!(
        (
            field(&audio, "codec_name"),
            field(&audio, "sample_rate"),
            field(&audio, "channels")
        ),
        ("opus", "48000", "1"),
        "{audio:?}"
    );
    let frames: u64 = field(&audio, "nb_read_frames").parse().unwrap_or(0);
    assert!(frames >= 50, "{frames} audio frames decoded");
    let hz = tone_frequency(&out);
    assert!((435.0..445.0).contains(&hz), "tone at {hz} Hz");
}

#[test]
fn test_pattern_takes_no_input_format() {
    let out = Command::new(env!("CARGO_BIN_EXE_hang"))
        .args([
            "serve",
            "--name",
            "p.hang",
            "--test-pattern",
            "--format",
            "annex-b",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}
