//! Every codec `hangsink` takes goes through a relay and out of `hangsrc` into a decoder, with
//! the codec string the catalog announces; and a broadcast recorded from `hangsrc` into an MP4
//! file plays (ffprobe).

mod common;

use std::time::Duration;

use common::{start_relay, wait_for, Pipeline, Run};
use gst::prelude::*;

/// Video frames (or audio buffers) each case publishes.
const FRAMES: usize = 30;

/// Publish `encode` (a pipeline fragment ending in an encoder or parser) into hangsink, play it
/// with hangsrc into `decode`, and check what arrives: at least 90 % of the buffers, the caps
/// hangsrc gives the pad, and the codec string in the catalog.
fn round_trip(
    tag: &str,
    encode: &str,
    decode: &str,
    pad: &str,
    caps_name: &str,
    codec_prefix: &str,
) {
    let mut run = Run::new(tag);
    let relay = start_relay(&mut run, "relay", None);
    let url = relay.http_url("/anon");
    let broadcast = format!("{tag}.hang");
    let player = Pipeline::parse(&format!(
        "hangsrc name=src url={url} broadcast={broadcast} latency=0 src.{pad} ! identity name=coded ! {decode} ! fakesink name=out"
    ));
    let coded = player.watch("coded");
    let out = player.watch("out");
    player.play();
    wait_for("hangsrc connected", Duration::from_secs(10), || {
        player.get::<bool>("src", "connected").then_some(())
    });
    let publisher = Pipeline::parse(&format!(
        "{encode} ! identity name=sent ! hangsink name=sink url={url} broadcast={broadcast}"
    ));
    let sent = publisher.watch("sent");
    publisher.play();
    publisher.wait_eos(Duration::from_secs(60));
    player.wait_eos(Duration::from_secs(20));
    let sent = sent.lock().unwrap().pts.len();
    let (coded, out) = (coded.lock().unwrap().clone(), out.lock().unwrap().clone());
    let caps = player
        .element("coded")
        .static_pad("sink")
        .and_then(|p| p.current_caps())
        .map(|c| c.to_string())
        .unwrap_or_default();
    println!(
        "{tag}: {sent} sent, {} received, {} decoded; caps {caps}",
        coded.pts.len(),
        out.pts.len()
    );
    assert!(caps.starts_with(caps_name), "{tag}: caps {caps}");
    assert!(
        coded.pts.len() * 10 >= sent * 9,
        "{tag}: {} of {sent} received\n{}",
        coded.pts.len(),
        run.logs()
    );
    assert!(
        out.pts.len() * 10 >= sent * 9,
        "{tag}: {} of {sent} decoded\n{}",
        out.pts.len(),
        run.logs()
    );
    // The catalog hangsink published and hangsrc received names the codec.
    for catalog in [
        publisher.get::<String>("sink", "catalog"),
        player.get::<String>("src", "catalog"),
    ] {
        let codecs = catalog_codecs(&catalog);
        assert!(
            codecs.iter().any(|c| c.starts_with(codec_prefix)),
            "{tag}: catalog codecs {codecs:?} in {catalog}"
        );
    }
}

/// Every rendition's codec string in a catalog.
fn catalog_codecs(json: &str) -> Vec<String> {
    let catalog: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    ["video", "audio"]
        .iter()
        .filter_map(|kind| catalog[kind]["renditions"].as_object())
        .flat_map(|renditions| renditions.values())
        .filter_map(|r| r["codec"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn h265_round_trips() {
    round_trip(
        "gst-h265",
        &format!("videotestsrc num-buffers={FRAMES} ! video/x-raw,width=320,height=240,framerate=30/1 ! x265enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! h265parse"),
        "h265parse ! avdec_h265",
        "video_0",
        "video/x-h265",
        "hev1",
    );
}

#[test]
fn vp8_round_trips() {
    round_trip(
        "gst-vp8",
        &format!("videotestsrc num-buffers={FRAMES} ! video/x-raw,width=320,height=240,framerate=30/1 ! vp8enc deadline=1 keyframe-max-dist=15"),
        "vp8dec",
        "video_0",
        "video/x-vp8",
        "vp8",
    );
}

#[test]
fn vp9_round_trips() {
    round_trip(
        "gst-vp9",
        &format!("videotestsrc num-buffers={FRAMES} ! video/x-raw,width=320,height=240,framerate=30/1 ! vp9enc deadline=1 cpu-used=8 keyframe-max-dist=15"),
        "vp9dec",
        "video_0",
        "video/x-vp9",
        "vp09",
    );
}

#[test]
fn av1_round_trips() {
    round_trip(
        "gst-av1",
        &format!("videotestsrc num-buffers={FRAMES} ! video/x-raw,width=160,height=120,framerate=30/1 ! av1enc usage-profile=realtime cpu-used=10 keyframe-max-dist=15 ! av1parse"),
        "av1parse ! av1dec",
        "video_0",
        "video/x-av1",
        "av01",
    );
}

#[test]
fn aac_round_trips() {
    round_trip(
        "gst-aac",
        &format!("audiotestsrc num-buffers={FRAMES} samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 ! voaacenc"),
        "avdec_aac",
        "audio_0",
        "audio/mpeg",
        "mp4a.40.2",
    );
}

/// Recording: hangsrc ! h264parse ! mp4mux ! filesink ends with the broadcast (EOS) and leaves a
/// file ffprobe reads: the published frames, H.264 at the published size.
#[test]
fn hangsrc_records_to_mp4() {
    let mut run = Run::new("gst-record");
    let relay = start_relay(&mut run, "relay", None);
    let url = relay.http_url("/anon");
    let file = run.path("recording.mp4");
    let recorder = Pipeline::start(&format!(
        "hangsrc name=src url={url} broadcast=record.hang latency=0 record=true ! h264parse ! mp4mux ! filesink location={}",
        file.display()
    ));
    wait_for("hangsrc connected", Duration::from_secs(10), || {
        recorder.get::<bool>("src", "connected").then_some(())
    });
    let publisher = Pipeline::start(&format!(
        "videotestsrc num-buffers=60 ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! h264parse ! hangsink url={url} broadcast=record.hang"
    ));
    publisher.wait_eos(Duration::from_secs(30));
    recorder.wait_eos(Duration::from_secs(20));
    drop(recorder);
    let output = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(&file)
        .output()
        .expect("ffprobe");
    let probed = String::from_utf8_lossy(&output.stdout).trim().to_string();
    println!("recording: {probed}");
    let fields: Vec<&str> = probed.split(',').collect();
    assert_eq!(
        fields.get(..3),
        Some(&["h264", "320", "240"][..]),
        "{probed}\n{}",
        run.logs()
    );
    let frames: usize = fields.get(3).and_then(|f| f.parse().ok()).unwrap_or(0);
    assert!(frames >= 54, "{frames} of 60 frames recorded");
}

/// An MP4 file (H.264 `avc` with codec_data + AAC) demuxed by one qtdemux thread into two
/// hangsink pads: both prerolls complete (each pad has its own queue), both renditions arrive.
#[test]
fn an_mp4_file_publishes_audio_and_video() {
    let mut run = Run::new("gst-file");
    let relay = start_relay(&mut run, "relay", None);
    let url = relay.http_url("/anon");
    let file = run.path("in.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-t", "2", "-c:v", "libx264", "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac",
        ])
        .arg(&file)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    let player = Pipeline::parse(&format!(
        "hangsrc name=src url={url} broadcast=file.hang latency=0 \
         src.video_0 ! h264parse ! avdec_h264 ! fakesink name=video \
         src.audio_0 ! avdec_aac ! fakesink name=audio"
    ));
    let (video, audio) = (player.watch("video"), player.watch("audio"));
    player.play();
    wait_for("hangsrc connected", Duration::from_secs(10), || {
        player.get::<bool>("src", "connected").then_some(())
    });
    let publisher = Pipeline::start(&format!(
        "filesrc location={} ! qtdemux name=demux \
         demux.video_0 ! h264parse ! hangsink name=sink url={url} broadcast=file.hang \
         demux.audio_0 ! aacparse ! sink.",
        file.display()
    ));
    publisher.wait_eos(Duration::from_secs(30));
    player.wait_eos(Duration::from_secs(20));
    let codecs = catalog_codecs(&publisher.get::<String>("sink", "catalog"));
    let (video, audio) = (
        video.lock().unwrap().pts.len(),
        audio.lock().unwrap().pts.len(),
    );
    println!("file: {video} video frames, {audio} audio frames decoded; catalog codecs {codecs:?}");
    assert!(codecs.iter().any(|c| c.starts_with("avc1.")), "{codecs:?}");
    assert!(codecs.iter().any(|c| c == "mp4a.40.2"), "{codecs:?}");
    assert!(video >= 54, "{video} of 60 video frames\n{}", run.logs());
    assert!(audio >= 80, "{audio} of ~94 audio frames\n{}", run.logs());
}

/// Recording a live broadcast joined mid-group (the docs' recording pipeline, A+V into mp4mux,
/// `latency=0`): the group's keyframe was captured before the recorder started, yet every frame
/// is recorded with a distinct PTS and the file decodes.
#[test]
fn hangsrc_records_a_live_broadcast_joined_mid_group() {
    let mut run = Run::new("gst-record-live");
    let relay = start_relay(&mut run, "relay", None);
    let url = relay.http_url("/anon");
    run.spawn(
        "publish",
        std::process::Command::new(common::bin("hang"))
            .args([
                "publish",
                "--url",
                &url,
                "--name",
                "live.hang",
                "--test-pattern",
            ])
            .stdout(std::process::Stdio::null()),
    );
    wait_for("the broadcast", Duration::from_secs(20), || {
        common::announced(&relay)
            .iter()
            .any(|p| p == "anon/live.hang")
            .then_some(())
    });
    // Into the group: its keyframe is already in the past when the recorder joins.
    std::thread::sleep(Duration::from_millis(700));
    let file = run.path("live.mp4");
    let recorder = Pipeline::parse(&format!(
        "hangsrc name=src url={url} broadcast=live.hang latency=0 record=true \
         src.video_0 ! h264parse ! identity name=video ! queue ! mux. \
         src.audio_0 ! queue ! mux. mp4mux name=mux ! filesink location={}",
        file.display()
    ));
    let video = recorder.watch("video");
    recorder.play();
    wait_for("90 video frames", Duration::from_secs(20), || {
        recorder.assert_no_error();
        (video.lock().unwrap().pts.len() >= 90).then_some(())
    });
    recorder.pipeline.send_event(gst::event::Eos::new());
    recorder.wait_eos(Duration::from_secs(10));
    drop(recorder);
    let seen = video.lock().unwrap().pts.len();
    let output = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(&file)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && errors.trim().is_empty(),
        "ffmpeg: {errors}"
    );
    let probed = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,nb_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(&file)
        .output()
        .expect("ffprobe");
    let probed = String::from_utf8_lossy(&probed.stdout).to_string();
    println!("live recording: {}", probed.trim().replace('\n', "; "));
    let frames = |codec: &str| -> usize {
        probed
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!("{codec},"))
                    .and_then(|n| n.trim().parse().ok())
            })
            .unwrap_or(0)
    };
    // Every frame that reached the muxer is in the file, the joined group's keyframe first.
    assert_eq!(frames("h264"), seen, "{probed}");
    assert!(frames("opus") >= 100, "{probed}");
}
