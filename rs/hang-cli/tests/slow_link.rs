//! A viewer behind a link slower than the stream stays live (issue 18).
//!
//! In a network namespace of the test's own: our relay, ffmpeg (a 3 Mbit/s CBR H.264 + Opus
//! fMP4) → `hang publish` on 127.0.0.1, and viewers that reach the relay at their own address,
//! each held to 2 Mbit/s by an HTB class with a 50 KB drop-tail queue (200 ms at that rate) on the
//! namespace's `lo`, only packets *from* that address shaped (the relay → viewer direction):
//!
//! - `hang subscribe --latency 500` (127.0.0.2): its end-to-end latency stays within the target
//!   + 300 ms after the first 5 s, and video keeps coming;
//! - `hang subscribe` with no target (127.0.0.3): video never stalls (it skips what the relay
//!   dropped or will not send);
//! - the Rust library reader, `hang::TrackConsumer` with a 500 ms target (127.0.0.4), from a thread
//!   that joined the namespace: every frame's latency measured against the catalog clock;
//! - `hang subscribe --latency 500` over a WebSocket (`ws://`, 127.0.0.5): TCP cannot skip what
//!   it already holds, so this is the relay choosing what to write (QMux's priority queue, old
//!   groups dropped, little in the kernel's buffer): the same latency bound and no stall.
//!
//! Audio (higher priority) stays continuous in the CLI's output. Before the fix the CLI output
//! stopped after about a second: the reader waited inside a frame whose tail the relay would
//! never send, newer groups taking the link.
//!
//! Needs root (network namespaces, tc); ffmpeg and iproute2 (scripts/test.sh installs them).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::netns::Netns;
use common::{relay_bin, Run};
use test_support::ports::free_port;

/// How long the viewers watch.
const WATCH: Duration = Duration::from_secs(25);
/// The latency target given to the viewers that have one.
const TARGET_MS: i64 = 500;
/// How far above the target a viewer may be, once settled (issue 18's acceptance).
const SLACK_MS: i64 = 300;
/// The same over a WebSocket: TCP (cubic) keeps the 200 ms bottleneck queue full, where QUIC's
/// congestion control keeps it short, and every byte waits its turn in it.
const WS_SLACK_MS: i64 = SLACK_MS + 200;
/// The longest audio gap allowed in a CLI output.
const AUDIO_GAP: f64 = 0.25;
/// The same over a WebSocket. The viewer sits ~700 ms behind (target 500 ms + TCP's full 200 ms
/// queue), so the relay drops audio groups older than the target while they wait in QMux's queue:
/// about a third of the audio frames, with gaps of 0.2–0.4 s measured alone and up to 0.76 s on a
/// loaded machine. Video keeps its bound (STALL).
const WS_AUDIO_GAP: f64 = 1.0;
/// The longest a viewer may go without a new video frame: one GoP (1 s) and a keyframe's time
/// on the slow link; today's code stopped for good.
const STALL: Duration = Duration::from_secs(1);
/// Latency samples before this are not judged (joining, the first keyframes).
const SETTLE: Duration = Duration::from_secs(5);

/// `latency_ms=N` from each stats line a `hang subscribe` logged, in order.
fn logged_latencies(log: &str) -> Vec<i64> {
    log.lines()
        .filter_map(|line| {
            let field = line
                .split_whitespace()
                .find(|w| w.starts_with("latency_ms="))?;
            field.trim_start_matches("latency_ms=").parse().ok()
        })
        .collect()
}

/// Every packet's pts (seconds) of stream `select` (`v:0`, `a:0`) in an fMP4 file, sorted.
fn packet_times(file: &std::path::Path, select: &str) -> Vec<f64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", select])
        .args(["-show_entries", "packet=pts_time", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe (scripts/test.sh installs ffmpeg)");
    let mut pts: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    pts.sort_by(f64::total_cmp);
    pts
}

/// The longest stretch of media time (s) without a packet, over `pts` and the span it covers.
fn longest_gap(pts: &[f64]) -> f64 {
    pts.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

/// Frames the library reader returned: when (since the start of watching) and how far behind
/// the publisher's wall clock each was (ms).
fn library_reader(ns: &str, url: String) -> Vec<(Duration, i64)> {
    // Join the namespace from this thread only: sockets it opens live there.
    let file = std::fs::File::open(format!("/var/run/netns/{ns}")).expect("netns file");
    use std::os::fd::AsRawFd;
    // SAFETY: setns on a valid namespace fd affects only the calling thread.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let client = moq_native::QuicClient::new(moq_native::QuicClientConfig::default()).unwrap();
        let connection = client.connect(url.parse().unwrap()).await.unwrap();
        let origin = moq_lite::OriginProducer::new();
        let session = moq_lite::Client::new()
            .with_setup_path(connection.setup_path)
            .subscribe(origin.clone())
            .connect(connection.session)
            .await
            .unwrap();
        let path = moq_lite::Path::new("slow.hang").unwrap();
        let broadcast = origin.consume().wait_for_broadcast(&path).await.unwrap();
        let broadcast = hang::BroadcastConsumer::new(broadcast);
        let catalog = broadcast.catalog().next().await.unwrap().unwrap();
        let clock = catalog
            .clock()
            .expect("hang publish anchors the catalog clock");
        let (name, _) = catalog
            .video_renditions()
            .next()
            .expect("a video rendition");
        let mut track = broadcast.subscribe(name, Duration::from_millis(TARGET_MS as u64));
        let start = Instant::now();
        let mut frames = Vec::new();
        while start.elapsed() < WATCH {
            let remaining = WATCH.saturating_sub(start.elapsed());
            let Ok(frame) = tokio::time::timeout(remaining, track.read()).await else {
                break;
            };
            let frame = frame.unwrap().expect("the broadcast ended early");
            let shown = clock.saturating_add(frame.timestamp);
            let behind = (hang::catalog::wall_now_us() as i64 - shown as i64) / 1000;
            frames.push((start.elapsed(), behind));
        }
        drop(session);
        frames
    })
}

#[test]
fn viewers_behind_a_slow_link_stay_live() {
    let ns = Netns::new("hang-slow", 2..=5, "2mbit");
    let mut run = Run::new("slow-link");
    // Ports chosen here, not by the relay: it runs alone in its own network namespace, where no
    // other process (no parallel test) can take them before it binds.
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    let internal = format!("127.0.0.1:{}", free_port());
    let relay = relay_bin();
    let hang = env!("CARGO_BIN_EXE_hang");
    run.spawn(
        "relay",
        ns.command(&relay)
            .args(["--listen", &listen, "--web-http-listen", &listen])
            .args(["--internal-listen", &internal])
            .args([
                "--tls-generate",
                "localhost,127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5",
                "--auth-public",
                "",
            ]),
    );
    let url = move |host: u8| format!("http://127.0.0.{host}:{port}/anon");
    // The relay is reachable once its HTTP listener answers inside the namespace.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let probe = ns
            .command("bash")
            .args(["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port}")])
            .status()
            .unwrap();
        if probe.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "relay did not start\n{}",
            run.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The publisher: CBR 3 Mbit/s H.264, GoP 1 s, Opus 64 kbit/s, 100 ms fragments.
    let ffmpeg = run.spawn(
        "ffmpeg",
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-tune",
                "zerolatency",
            ])
            .args([
                "-b:v", "3M", "-minrate", "3M", "-maxrate", "3M", "-bufsize", "500k",
            ])
            .args([
                "-x264-params",
                "nal-hrd=cbr",
                "-g",
                "30",
                "-pix_fmt",
                "yuv420p",
            ])
            .args(["-c:a", "libopus", "-b:a", "64k"])
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
            .args(["publish", "--url", &url(1), "--name", "slow.hang"])
            .stdin(media),
    );

    let targeted = run.path("targeted.mp4");
    let untargeted = run.path("untargeted.mp4");
    let websocket = run.path("websocket.mp4");
    let latency = TARGET_MS.to_string();
    run.spawn(
        "subscribe-target",
        ns.command(hang)
            .args([
                "subscribe",
                "--url",
                &url(2),
                "--name",
                "slow.hang",
                "--latency",
                &latency,
            ])
            .stdout(std::fs::File::create(&targeted).unwrap()),
    );
    run.spawn(
        "subscribe-none",
        ns.command(hang)
            .args(["subscribe", "--url", &url(3), "--name", "slow.hang"])
            .stdout(std::fs::File::create(&untargeted).unwrap()),
    );
    run.spawn(
        "subscribe-ws",
        ns.command(hang)
            .args(["subscribe", "--url", &format!("ws://127.0.0.5:{port}/anon")])
            .args(["--name", "slow.hang", "--latency", &latency])
            .stdout(std::fs::File::create(&websocket).unwrap()),
    );
    let name = ns.name.clone();
    let library = std::thread::spawn(move || library_reader(&name, url(4)));
    let frames = library.join().expect("library reader");
    let metrics = ns
        .command("curl")
        .args(["-sf", &format!("http://{internal}/metrics")])
        .output()
        .expect("curl");
    let metrics = String::from_utf8_lossy(&metrics.stdout).to_string();
    eprintln!(
        "relay: {}",
        metrics
            .lines()
            .filter(|l| l.contains("dropped") || l.starts_with("moq_relay_session_queued_bytes"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    // The CLI viewers started alongside and watched as long.
    for viewer in ["subscribe-target", "subscribe-none", "subscribe-ws"] {
        let _ = run.child(viewer).kill();
        let _ = run.child(viewer).wait();
    }

    let report = |what: &str| format!("{what}\n{}", run.logs());
    for host in 2..=5 {
        let sent = ns.shaped_bytes(host);
        // 2 Mbit/s for ~25 s is ~6 MB; a class that saw far less was not the path taken.
        assert!(
            sent > 1_000_000,
            "{}",
            report(&format!(
                "127.0.0.{host}: shaped class sent only {sent} bytes"
            ))
        );
    }

    // Every viewer is judged, and every failure reported together.
    let mut problems: Vec<String> = Vec::new();
    let mut check = |ok: bool, problem: String| {
        if !ok {
            problems.push(problem);
        }
    };

    // The library reader: frames all along, and latency within the target once settled.
    let settled: Vec<_> = frames.iter().filter(|(at, _)| *at >= SETTLE).collect();
    let worst = settled.iter().map(|(_, behind)| *behind).max();
    let mut stall = Duration::ZERO;
    let mut previous = Duration::ZERO;
    for (at, _) in &frames {
        stall = stall.max(*at - previous);
        previous = *at;
    }
    stall = stall.max(WATCH.saturating_sub(previous));
    eprintln!(
        "library reader: {} frames, worst settled latency {worst:?} ms, longest gap {stall:?}",
        frames.len()
    );
    check(
        settled.len() > 100,
        format!(
            "library reader: only {} frames after {SETTLE:?}",
            settled.len()
        ),
    );
    check(
        worst.is_some_and(|worst| worst <= TARGET_MS + SLACK_MS),
        format!("library reader: {worst:?} ms behind"),
    );
    check(
        stall <= STALL,
        format!("library reader: no frame for {stall:?}"),
    );

    // The CLIs with a target (QUIC and WebSocket): latency (the stats line, the same reader as
    // the output) in bounds.
    for (viewer, what, slack) in [
        ("subscribe-target", "--latency", SLACK_MS),
        ("subscribe-ws", "ws:// --latency", WS_SLACK_MS),
    ] {
        let latencies = logged_latencies(&run.log(viewer));
        eprintln!("hang subscribe {what} {TARGET_MS}: latency_ms per second {latencies:?}");
        let judged = &latencies[latencies.len().min(SETTLE.as_secs() as usize)..];
        check(
            judged.len() >= 15,
            format!(
                "hang subscribe {what}: {} stats lines after {SETTLE:?}",
                judged.len()
            ),
        );
        let worst = judged.iter().copied().max();
        check(
            worst.is_some_and(|worst| worst <= TARGET_MS + slack),
            format!("hang subscribe {what}: {worst:?} ms behind"),
        );
    }

    // The relay reset the tails of superseded groups the slow viewers with a target would have
    // got too late (counted), instead of queueing them.
    let dropped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("moq_relay_groups_dropped_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    check(
        dropped >= 10,
        format!("relay: groups_dropped {dropped}: superseded groups were not reset"),
    );

    // Both CLI outputs: playable, video never stalls, audio continuous.
    for (file, what, audio_gap) in [
        (&targeted, "--latency", AUDIO_GAP),
        (&untargeted, "no --latency", AUDIO_GAP),
        (&websocket, "ws:// --latency", WS_AUDIO_GAP),
    ] {
        let video = packet_times(file, "v:0");
        let audio = packet_times(file, "a:0");
        let span = video.last().copied().unwrap_or(0.0) - video.first().copied().unwrap_or(0.0);
        eprintln!(
            "hang subscribe {what}: {} video frames over {span:.1} s (longest gap {:.2} s), {} audio frames (longest gap {:.2} s)",
            video.len(),
            longest_gap(&video),
            audio.len(),
            longest_gap(&audio)
        );
        check(
            span >= 20.0,
            format!("hang subscribe {what}: video covers only {span:.1} s"),
        );
        check(
            video.len() as f64 >= span * 10.0,
            format!(
                "hang subscribe {what}: {} video frames in {span:.1} s",
                video.len()
            ),
        );
        check(
            longest_gap(&video) <= STALL.as_secs_f64(),
            format!(
                "hang subscribe {what}: video stalled {:.2} s",
                longest_gap(&video)
            ),
        );
        check(
            longest_gap(&audio) <= audio_gap,
            format!(
                "hang subscribe {what}: audio gap {:.2} s",
                longest_gap(&audio)
            ),
        );
    }
    assert!(problems.is_empty(), "{}", report(&problems.join("\n")));
}
