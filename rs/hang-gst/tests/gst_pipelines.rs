//! `hangsink` and `hangsrc` in real GStreamer pipelines (encoders, parsers and decoders from
//! the Debian plugin packages) against our relay, with our `hang` CLI and the reference `moq`
//! CLI as the other end: codecs, sizes, frame counts and timestamps of what comes out; a relay
//! restart mid-pipeline; the glass-to-glass latency of live video.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{bin, percentile, start_relay, wait_for, Pipeline, Run};
use gst::prelude::*;

/// One stream of an ffprobe'd file: codec, size, and every packet's PTS in seconds.
#[derive(Debug, Default)]
struct Probed {
    codec: String,
    width: u32,
    height: u32,
    pts: Vec<f64>,
}

fn ffprobe(file: &std::path::Path) -> Probed {
    let run = |entries: &str| {
        let output = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-show_entries",
                entries,
            ])
            .args(["-of", "csv=p=0"])
            .arg(file)
            .output()
            .expect("ffprobe (scripts/test.sh installs ffmpeg)");
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    let info = run("stream=codec_name,width,height");
    let mut fields = info.trim().split(',');
    Probed {
        codec: fields.next().unwrap_or_default().to_string(),
        width: fields.next().and_then(|w| w.parse().ok()).unwrap_or(0),
        height: fields.next().and_then(|h| h.parse().ok()).unwrap_or(0),
        pts: run("packet=pts_time")
            .lines()
            .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
            .collect(),
    }
}

/// videotestsrc ! x264enc ! h264parse ! hangsink → relay → `hang subscribe` → fMP4 → ffprobe.
#[test]
fn hangsink_h264_plays_in_hang_subscribe() {
    const FRAMES: usize = 90;
    let mut run = Run::new("gst-h264-cli");
    let relay = start_relay(&mut run, "relay", None);
    let url = relay.http_url("/anon");
    let out = run.path("subscribed.mp4");
    run.spawn(
        "subscribe",
        Command::new(bin("hang"))
            .args(["subscribe", "--url", &url, "--name", "gst-h264.hang"])
            .stdout(std::fs::File::create(&out).unwrap()),
    );
    let publisher = Pipeline::start(&format!(
        "videotestsrc num-buffers={FRAMES} ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! h264parse \
         ! hangsink name=sink url={url} broadcast=gst-h264.hang"
    ));
    publisher.wait_eos(Duration::from_secs(30));
    assert_eq!(publisher.get::<String>("sink", "version"), "moq-lite-06");
    drop(publisher);
    // The broadcast ended with the EOS: the subscriber writes what it has and exits.
    let status = run.wait_exit("subscribe", Duration::from_secs(15));
    assert!(status.success(), "hang subscribe: {status}\n{}", run.logs());

    let probed = ffprobe(&out);
    println!(
        "hang subscribe wrote {} {}x{}, {} frames",
        probed.codec,
        probed.width,
        probed.height,
        probed.pts.len()
    );
    assert_eq!(
        (probed.codec.as_str(), probed.width, probed.height),
        ("h264", 320, 240),
        "{}",
        run.logs()
    );
    assert!(
        probed.pts.len() * 10 >= FRAMES * 9,
        "{} of {FRAMES} frames\n{}",
        probed.pts.len(),
        run.logs()
    );
    let mut sorted = probed.pts.clone();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    assert_eq!(sorted.len(), probed.pts.len(), "a repeated pts");
    for pair in sorted.windows(2) {
        assert!(
            (pair[1] - pair[0] - 1.0 / 30.0).abs() < 0.002,
            "pts {} then {}",
            pair[0],
            pair[1]
        );
    }
}

/// audiotestsrc ! opusenc ! hangsink → relay → hangsrc ! opusdec ! fakesink: the packets
/// published arrive, and the broadcast's end is the source's EOS.
#[test]
fn opus_from_hangsink_plays_through_hangsrc() {
    const PACKETS: usize = 100;
    let mut run = Run::new("gst-opus");
    let relay = start_relay(&mut run, "relay", None);
    let url = relay.http_url("/anon");
    let player = Pipeline::parse(&format!(
        "hangsrc name=src url={url} broadcast=gst-opus.hang latency=0 ! opusdec ! fakesink name=out"
    ));
    let received = player.watch("out");
    player.play();
    wait_for("hangsrc connected", Duration::from_secs(10), || {
        player.get::<bool>("src", "connected").then_some(())
    });
    let publisher = Pipeline::parse(&format!(
        "audiotestsrc num-buffers={PACKETS} samplesperbuffer=960 ! audio/x-raw,rate=48000,channels=2 \
         ! opusenc frame-size=20 ! identity name=sent ! hangsink url={url} broadcast=gst-opus.hang"
    ));
    let sent = publisher.watch("sent");
    publisher.play();
    publisher.wait_eos(Duration::from_secs(30));
    player.wait_eos(Duration::from_secs(15));
    let (sent, received) = (
        sent.lock().unwrap().pts.len(),
        received.lock().unwrap().clone(),
    );
    println!("opus: {sent} packets sent, {} decoded", received.pts.len());
    assert!(sent >= PACKETS, "{sent} packets sent");
    assert!(received.eos);
    assert!(
        received.pts.len() * 10 >= sent * 9,
        "{} of {sent} decoded\n{}",
        received.pts.len(),
        run.logs()
    );
    assert!(
        received.pts.windows(2).all(|p| p[1] > p[0]),
        "pts not increasing"
    );
}

/// `hang publish --test-pattern` → relay → hangsrc ! h264parse ! avdec_h264: ≥ 90 % of the
/// frames sent in the window, PTS 1/30 s apart, DELTA_UNIT on all but keyframes.
#[test]
fn hang_test_pattern_decodes_through_hangsrc() {
    let mut run = Run::new("gst-pattern");
    let relay = start_relay(&mut run, "relay", None);
    let url = relay.http_url("/anon");
    run.spawn(
        "publish",
        Command::new(bin("hang"))
            .args([
                "publish",
                "--url",
                &url,
                "--name",
                "pattern.hang",
                "--test-pattern",
            ])
            .stdout(Stdio::null()),
    );
    let player = Pipeline::parse(&format!(
        "hangsrc name=src url={url} broadcast=pattern.hang \
         src.video_0 ! identity name=coded ! h264parse ! avdec_h264 ! fakesink name=video \
         src.audio_0 ! opusdec ! fakesink name=audio"
    ));
    let coded = player.watch("coded");
    let video = player.watch("video");
    let audio = player.watch("audio");
    player.play();
    wait_for("120 decoded frames", Duration::from_secs(30), || {
        player.assert_no_error();
        (video.lock().unwrap().pts.len() >= 120).then_some(())
    });
    let (coded, video, audio) = (
        coded.lock().unwrap().clone(),
        video.lock().unwrap().clone(),
        audio.lock().unwrap().clone(),
    );
    let span = video.pts.last().unwrap().nseconds() - video.pts.first().unwrap().nseconds();
    let expected = span as f64 / 1e9 * 30.0 + 1.0;
    println!(
        "test pattern: {} frames decoded over {:.3} s ({expected:.0} expected), {} coded ({} delta), {} audio",
        video.pts.len(),
        span as f64 / 1e9,
        coded.pts.len(),
        coded.deltas,
        audio.pts.len()
    );
    assert!(
        video.pts.len() as f64 >= 0.9 * expected,
        "{} of {expected:.0}\n{}",
        video.pts.len(),
        run.logs()
    );
    let steps: Vec<i64> = video
        .pts
        .windows(2)
        .map(|p| p[1].nseconds() as i64 - p[0].nseconds() as i64)
        .collect();
    let on_grid = steps
        .iter()
        .filter(|d| (**d - 33_333_333).abs() < 1_000_000)
        .count();
    assert!(
        on_grid * 10 >= steps.len() * 9,
        "{on_grid} of {} steps are 1/30 s: {steps:?}",
        steps.len()
    );
    assert!(
        coded.deltas > 0 && coded.deltas < coded.pts.len(),
        "DELTA_UNIT on {} of {}",
        coded.deltas,
        coded.pts.len()
    );
    assert!(audio.pts.len() > 50, "{} audio frames", audio.pts.len());
    assert!(player.get::<u64>("src", "bitrate") > 0);
}

/// The reference `moq` CLI's CMAF broadcast (ffmpeg fMP4, H.264 + Opus) → our relay → hangsrc.
#[test]
fn reference_cmaf_broadcast_plays_through_hangsrc() {
    let mut run = Run::new("gst-ref-cmaf");
    let relay = start_relay(&mut run, "relay", None);
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
        .args([
            "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "libopus", "-b:a", "64k",
        ])
        // A+V: 100 ms fragments (one per frame repeats a tfdt, which the reference refuses).
        .args(["-f", "mp4", "-frag_duration", "100000"])
        .args([
            "-movflags",
            "cmaf+separate_moof+delay_moov+skip_trailer",
            "-",
        ])
        .stdout(Stdio::piped());
    let media = run.spawn("ffmpeg", &mut ffmpeg).stdout.take().unwrap();
    run.spawn(
        "moq-import",
        Command::new(test_support::peers::binary("cli-0.14.10", "moq"))
            .args(["--connect", &relay.url("/anon"), "--connect-tls-insecure"])
            .args(["import", "--broadcast", "ref.hang", "fmp4"])
            .stdin(media),
    );
    let url = relay.http_url("/anon");
    let player = Pipeline::parse(&format!(
        "hangsrc name=src url={url} broadcast=ref.hang \
         src.video_0 ! h264parse ! avdec_h264 ! fakesink name=video \
         src.audio_0 ! opusdec ! fakesink name=audio"
    ));
    let video = player.watch("video");
    let audio = player.watch("audio");
    player.play();
    wait_for("90 decoded frames", Duration::from_secs(40), || {
        player.assert_no_error();
        (video.lock().unwrap().pts.len() >= 90).then_some(())
    });
    let (video, audio) = (video.lock().unwrap().clone(), audio.lock().unwrap().clone());
    let steps: Vec<i64> = video
        .pts
        .windows(2)
        .map(|p| p[1].nseconds() as i64 - p[0].nseconds() as i64)
        .collect();
    let on_grid = steps
        .iter()
        .filter(|d| (**d - 33_333_333).abs() < 1_000_000)
        .count();
    println!(
        "reference CMAF: {} video frames ({on_grid} steps of 1/30 s), {} audio frames",
        video.pts.len(),
        audio.pts.len()
    );
    assert!(
        on_grid * 10 >= steps.len() * 9,
        "{on_grid} of {} steps are 1/30 s: {steps:?}",
        steps.len()
    );
    assert!(
        audio.pts.len() > 50,
        "{} audio frames\n{}",
        audio.pts.len(),
        run.logs()
    );
}

/// The relay is killed (SIGKILL) and started again on the same port mid-pipeline: hangsink
/// reconnects and the viewer's output resumes.
#[test]
fn hangsink_reconnects_after_a_relay_restart() {
    let mut run = Run::new("gst-restart");
    let relay = start_relay(&mut run, "relay", None);
    let url = relay.http_url("/anon");
    let publisher = Pipeline::start(&format!(
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! h264parse \
         ! hangsink name=sink url={url} broadcast=restart.hang"
    ));
    let player = Pipeline::parse(&format!(
        "hangsrc name=src url={url} broadcast=restart.hang ! h264parse ! avdec_h264 ! fakesink name=out"
    ));
    let out = player.watch("out");
    player.play();
    wait_for(
        "30 frames before the restart",
        Duration::from_secs(20),
        || (out.lock().unwrap().pts.len() >= 30).then_some(()),
    );
    run.kill("relay");
    wait_for(
        "hangsink notices the relay is gone",
        Duration::from_secs(10),
        || (!publisher.get::<bool>("sink", "connected")).then_some(()),
    );
    let before = out.lock().unwrap().pts.len();
    let _relay = start_relay(&mut run, "relay-again", Some(relay.quic.port()));
    wait_for("hangsink reconnects", Duration::from_secs(15), || {
        (publisher.get::<u64>("sink", "connects") >= 2
            && publisher.get::<bool>("sink", "connected"))
        .then_some(())
    });
    wait_for(
        "the viewer's output resumes",
        Duration::from_secs(15),
        || (out.lock().unwrap().pts.len() >= before + 30).then_some(()),
    );
    publisher.assert_no_error();
    player.assert_no_error();
    println!(
        "restart: {before} frames before, {} after; sink connects {}, src connects {}",
        out.lock().unwrap().pts.len() - before,
        publisher.get::<u64>("sink", "connects"),
        player.get::<u64>("src", "connects")
    );
}

/// videotestsrc (live) → x264enc → hangsink → relay → hangsrc → avdec_h264 → a synchronised
/// sink: how far behind the wall clock each frame's capture time is when rendered.
#[test]
fn glass_to_glass_latency() {
    let mut run = Run::new("gst-latency");
    let relay = start_relay(&mut run, "relay", None);
    let url = relay.http_url("/anon");
    let _publisher = Pipeline::start(&format!(
        "videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=1500 ! h264parse \
         ! hangsink url={url} broadcast=latency.hang"
    ));
    let mut results = Vec::new();
    for latency_ms in [100u32, 500] {
        let player = Pipeline::start(&format!(
            "hangsrc name=src url={url} broadcast=latency.hang latency={latency_ms} \
             ! h264parse ! avdec_h264 ! fakesink name=out sync=true signal-handoffs=true"
        ));
        let rendered = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = rendered.clone();
        let unix = gst::Caps::new_empty_simple("timestamp/x-unix");
        player
            .element("out")
            .connect("handoff", false, move |values| {
                let buffer = values[1].get::<gst::Buffer>().expect("handoff buffer");
                if let Some(meta) = buffer.meta::<gst::ReferenceTimestampMeta>() {
                    if meta.reference().is_subset(&unix) {
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap();
                        record.lock().unwrap().push(
                            now.saturating_sub(Duration::from_nanos(meta.timestamp().nseconds())),
                        );
                    }
                }
                None
            });
        // 3 s to settle, then 5 s measured.
        wait_for("90 frames rendered", Duration::from_secs(20), || {
            player.assert_no_error();
            (rendered.lock().unwrap().len() >= 90).then_some(())
        });
        rendered.lock().unwrap().clear();
        wait_for("150 frames rendered", Duration::from_secs(20), || {
            (rendered.lock().unwrap().len() >= 150).then_some(())
        });
        let values = rendered.lock().unwrap().clone();
        let mut query = gst::query::Latency::new();
        assert!(player.pipeline.query(&mut query), "latency query");
        let pipeline_latency = Duration::from_nanos(query.result().1.nseconds());
        let (p50, p95) = (percentile(&values, 50), percentile(&values, 95));
        println!(
            "glass-to-glass with latency={latency_ms} ms (pipeline latency {} ms): p50 {} ms, p95 {} ms, max {} ms over {} frames; arrival (e2e-latency) {} ms",
            pipeline_latency.as_millis(),
            p50.as_millis(),
            p95.as_millis(),
            percentile(&values, 100).as_millis(),
            values.len(),
            player.get::<i64>("src", "e2e-latency")
        );
        // hangsrc stamps each frame with its capture time (catalog clock) on this pipeline's
        // running time, so a synchronised sink renders it one pipeline latency (the latency
        // target plus the decoder's) after capture; frames arrive well before that here.
        assert!(pipeline_latency >= Duration::from_millis(u64::from(latency_ms)));
        assert!(
            p95 < pipeline_latency + Duration::from_millis(50),
            "p95 {p95:?}, pipeline latency {pipeline_latency:?}\n{}",
            run.logs()
        );
        assert!(player.get::<i64>("src", "e2e-latency") >= 0);
        results.push((latency_ms, p50, p95));
    }
    assert!(
        results[0].1 < results[1].1,
        "a smaller latency target renders sooner: {results:?}"
    );
}
