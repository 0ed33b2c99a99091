//! Adaptive bitrate behind a link slower than the big rendition (issue 24).
//!
//! In a network namespace of the test's own: our relay (GSO off, so the namespace's shaper sees
//! packets one by one as a real bottleneck does); ffmpeg encodes one picture twice (640x360 CBR
//! 3 Mbit/s and 320x180 CBR 0.8 Mbit/s, the same 1 s GoP) plus Opus into one fMP4 for `hang
//! publish`; `hang subscribe --abr --format annex-b --latency 500` reaches the relay at 127.0.0.2,
//! whose relay → viewer direction is shaped (HTB, 50 KB drop-tail queue): 2 Mbit/s for 15 s,
//! 10 Mbit/s for 15 s, then 1 and 4 Mbit/s, 20 s each.
//!
//! Asserted, from the subscriber's once-a-second `output` reports and its log:
//! - 2 Mbit/s: the small rendition from the start and no attempt at the big one; ≥ 28 frames a
//!   second and p95 latency within the target + 100 ms once settled (3 s).
//! - 10 Mbit/s: up to the big rendition within 10 s.
//! - 1 ↔ 4 Mbit/s: the first swing drops the link from 10 to 1 Mbit/s under the big rendition:
//!   down within 2.5 s, no pause over 1.5 s. From then on, no pause in the output longer than
//!   one group (1 s); switches counted.
//!
//! Needs root (network namespaces, tc); ffmpeg and iproute2 (scripts/test.sh installs them).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::netns::Netns;
use common::{relay_bin, Run};
use test_support::ports::free_port;

/// The slow part, and the fast part after the raise.
const SLOW: Duration = Duration::from_secs(15);
const FAST: Duration = Duration::from_secs(15);
/// Then the link swings between 1 and 4 Mbit/s, SWINGS times, SWING each (the browser e2e,
/// js/e2e/slow-link-abr.test.ts, runs `hang subscribe --abr` through six: two minutes).
const SWING: Duration = Duration::from_secs(20);
const SWINGS: usize = 2;
/// Reports (seconds) before the viewer counts as settled.
const SETTLE: usize = 3;

/// Every line of `log` containing `needle`.
fn events(log: &str, needle: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// `latency_ms=N` from each stats line, in order.
fn latencies(log: &str) -> Vec<i64> {
    log.lines()
        .filter_map(|line| {
            let field = line
                .split_whitespace()
                .find(|w| w.starts_with("latency_ms="))?;
            field.trim_start_matches("latency_ms=").parse().ok()
        })
        .collect()
}

#[test]
fn abr_viewer_settles_small_moves_up_within_10s_and_rides_out_link_swings() {
    let ns = Netns::new("hang-abr", 2..=2, "2mbit");
    let mut run = Run::new("slow-link-abr");
    let port = free_port();
    // Its own namespace: no other process can take the port before the relay binds it.
    let listen = format!("0.0.0.0:{port}");
    let hang = env!("CARGO_BIN_EXE_hang");
    run.spawn(
        "relay",
        ns.command(relay_bin())
            .args(["--listen", &listen, "--web-http-listen", &listen])
            .args([
                "--tls-generate",
                "localhost,127.0.0.1,127.0.0.2",
                "--auth-public",
                "",
                "--quic-gso",
                "false",
            ]),
    );
    let url = move |host: u8| format!("http://127.0.0.{host}:{port}/anon");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ns
        .command("bash")
        .args(["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port}")])
        .status()
        .unwrap()
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "relay did not start\n{}",
            run.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let ffmpeg = run.spawn(
        "ffmpeg",
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args([
                "-map",
                "0:v",
                "-map",
                "0:v",
                "-map",
                "1:a",
                "-filter:v:1",
                "scale=320:180",
            ])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-tune",
                "zerolatency",
            ])
            .args([
                "-b:v:0",
                "3M",
                "-minrate:v:0",
                "3M",
                "-maxrate:v:0",
                "3M",
                "-bufsize:v:0",
                "500k",
            ])
            .args([
                "-b:v:1",
                "800k",
                "-minrate:v:1",
                "800k",
                "-maxrate:v:1",
                "800k",
                "-bufsize:v:1",
                "150k",
            ])
            .args([
                "-x264-params",
                "nal-hrd=cbr",
                "-g",
                "30",
                "-keyint_min",
                "30",
                "-sc_threshold",
                "0",
            ])
            .args(["-pix_fmt", "yuv420p", "-c:a", "libopus", "-b:a", "64k"])
            .args(["-f", "mp4", "-frag_duration", "100000"])
            .args([
                "-movflags",
                "cmaf+separate_moof+delay_moov+skip_trailer",
                "-",
            ])
            .stdout(Stdio::piped()),
    );
    let media = ffmpeg.stdout.take().unwrap();
    run.spawn(
        "publish",
        ns.command(hang)
            .args(["publish", "--url", &url(1), "--name", "abr.hang"])
            .stdin(media),
    );

    let out = run.path("abr.h264");
    let start = Instant::now();
    run.spawn(
        "subscribe",
        ns.command(hang)
            .args(["subscribe", "--url", &url(2), "--name", "abr.hang"])
            .args(["--abr", "--format", "annex-b", "--latency", "500"])
            .env("RUST_LOG", "info,hang::abr_reader=debug")
            .stdout(std::fs::File::create(&out).unwrap()),
    );
    // The phases: (rate, how long).
    let mut phases = vec![("2mbit", SLOW), ("10mbit", FAST)];
    for n in 0..SWINGS {
        phases.push((if n % 2 == 0 { "1mbit" } else { "4mbit" }, SWING));
    }
    let mut marks = Vec::new();
    for (rate, length) in &phases {
        if marks.is_empty() {
            // The namespace starts at 2 Mbit/s.
            assert_eq!(*rate, "2mbit");
        } else {
            ns.set_rate(2, rate);
        }
        marks.push((start.elapsed(), run.log("subscribe").len()));
        std::thread::sleep(*length);
    }
    let log = run.log("subscribe");
    let _ = run.child("subscribe").kill();
    let _ = run.child("subscribe").wait();
    marks.push((start.elapsed(), log.len()));
    if std::env::var_os("ABR_DUMP").is_some() {
        println!("{log}");
    }
    let part = |n: usize| &log[marks[n].1..marks[n + 1].1];

    // 1. Behind 2 Mbit/s: the small rendition from the start (no initial estimate: the lowest),
    //    no attempt at the big one (the burst estimate says the link cannot carry it), full
    //    frame rate and latency within the target + 100 ms once settled.
    let slow = part(0);
    let requests = events(slow, "switching rendition");
    let outputs = fields(slow, "annexb: output");
    println!(
        "2 Mbit/s: {} switch requests; output per second: {outputs:?}",
        requests.len()
    );
    assert!(
        requests.is_empty(),
        "tried the big rendition behind 2 Mbit/s: {requests:#?}\n{}",
        run.logs()
    );
    let settled = &outputs[SETTLE.min(outputs.len())..];
    assert!(settled.len() >= 8, "too few reports\n{}", run.logs());
    assert!(
        settled.iter().all(|o| o.rendition == "video1"),
        "{outputs:?}"
    );
    let fps = settled.iter().map(|o| o.frames).sum::<u64>() as f64 / settled.len() as f64;
    assert!(
        fps >= 28.0,
        "{fps} frames a second behind 2 Mbit/s: {outputs:?}"
    );
    let mut latency = latencies(slow)[SETTLE..].to_vec();
    latency.sort_unstable();
    let p95 = latency[(latency.len() * 95 / 100).min(latency.len() - 1)];
    println!("2 Mbit/s: {fps:.1} frames a second, p95 latency {p95} ms");
    assert!(
        p95 <= 600,
        "p95 latency {p95} ms behind 2 Mbit/s: {latency:?}"
    );

    // 2. Raised to 10 Mbit/s: up to the big rendition within 10 s.
    let fast = part(1);
    let up = events(fast, "now writing")
        .into_iter()
        .find(|l| l.contains("video0"));
    let up_at = up.as_deref().and_then(at).map(|t| t - at_of(fast));
    println!("10 Mbit/s: moved up after {up_at:?}: {up:?}");
    let up_at = up_at.unwrap_or_else(|| panic!("no move up after the raise\n{fast}"));
    assert!(
        up_at <= Duration::from_secs(10),
        "moved up {up_at:?} after the raise"
    );

    // 3. 1 <-> 4 Mbit/s every SWING. The first swing drops the link from 10 to 1 Mbit/s under
    //    the big rendition: down to the small one within 2.5 s (noticing takes up to a window,
    //    the small track's next keyframe up to a group), the output never paused for more than
    //    1.5 s meanwhile. From then on, never a pause longer than a group (1 s).
    let drop = part(2);
    let down = events(drop, "now writing")
        .into_iter()
        .find(|l| l.contains("video1"));
    let down_at = down.as_deref().and_then(at).map(|t| t - at_of(drop));
    let drop_pause = fields(drop, "annexb: output")
        .iter()
        .map(|o| o.max_gap_ms)
        .max()
        .unwrap_or(u64::MAX);
    println!("10 -> 1 Mbit/s: down after {down_at:?}, longest pause {drop_pause} ms");
    let down_at = down_at.unwrap_or_else(|| panic!("no move down after the drop\n{drop}"));
    assert!(
        down_at <= Duration::from_millis(2500),
        "moved down {down_at:?} after the drop"
    );
    assert!(
        drop_pause <= 1500,
        "a pause of {drop_pause} ms after the drop"
    );
    let swings = &log[marks[3].1..];
    let outputs = fields(swings, "annexb: output");
    let cuts = events(swings, "now writing");
    let worst = outputs
        .iter()
        .map(|o| o.max_gap_ms)
        .max()
        .unwrap_or(u64::MAX);
    println!(
        "1 <-> 4 Mbit/s: {} switches {cuts:#?}; longest pause {worst} ms",
        cuts.len()
    );
    println!("output per second: {outputs:?}");
    let expected = SWING.as_secs() * (SWINGS as u64 - 1);
    assert!(
        outputs.len() as u64 + 5 >= expected,
        "reports missing\n{}",
        run.logs()
    );
    assert!(worst <= 1000, "a pause of {worst} ms: {outputs:?}");
}

/// One `output` report of the subscriber.
#[derive(Debug)]
#[allow(dead_code)] // read through Debug in the printed reports
struct Output {
    rendition: String,
    frames: u64,
    max_gap_ms: u64,
    estimate_kbps: String,
}

/// The value of `name=` in a log line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
}

/// Every `output` report in `log`.
fn fields(log: &str, needle: &str) -> Vec<Output> {
    log.lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| {
            Some(Output {
                rendition: field(l, "rendition")?.to_string(),
                frames: field(l, "frames")?.parse().ok()?,
                max_gap_ms: field(l, "max_gap_ms")?.parse().ok()?,
                estimate_kbps: field(l, "estimate_kbps").unwrap_or("-").to_string(),
            })
        })
        .collect()
}

/// A log line's time of day.
fn at(line: &str) -> Option<Duration> {
    let time = line.split('T').nth(1)?.split('Z').next()?;
    let mut parts = time.split(':');
    let h: u64 = parts.next()?.parse().ok()?;
    let m: u64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(Duration::from_secs(h * 3600 + m * 60) + Duration::from_secs_f64(s))
}

/// The time of the first line of a part of the log (a stats line comes every second).
fn at_of(log: &str) -> Duration {
    log.lines().find_map(at).expect("a timed line")
}
