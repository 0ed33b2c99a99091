//! Audio and video in one fMP4 stream, including ffmpeg's repeated `tfdt` with `frag_every_frame`.

mod common;

use std::time::Duration;

use common::*;
use hang::export::Fragment;

/// Read every frame of a track from the start.
async fn timestamps(importer: &hang::import::Fmp4Importer, name: &str) -> Vec<u64> {
    let mut track = importer
        .broadcast()
        .consume()
        .subscribe(name, Duration::MAX);
    track.start_at_oldest();
    let mut out = Vec::new();
    while let Ok(Ok(Some(frame))) =
        tokio::time::timeout(Duration::from_millis(200), track.read()).await
    {
        out.push(frame.timestamp);
    }
    out
}

#[tokio::test]
async fn repeated_tfdt_from_frag_every_frame_is_repaired() {
    require_encoder("libx264");
    require_encoder("libopus");
    let fixtures = Fixtures::new();
    let input = fixtures.fmp4(
        "av.mp4",
        &["-c:v", "libx264", "-preset", "ultrafast", "-g", "30"],
        &["-t", "3", "-c:a", "libopus"],
    );
    let bytes = std::fs::read(&input).unwrap();

    // The fixture really has the quirk: some audio fragments repeat the previous tfdt.
    let audio_packets = packets(&input, 1);
    let repeats = audio_packets
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .count();
    assert!(
        repeats > 0,
        "expected ffmpeg to repeat a tfdt in this fixture"
    );

    let mut importer = hang::import::Fmp4Importer::new(hang::BroadcastProducer::new());
    feed(&mut importer, &bytes).expect("import");
    let catalog = importer.broadcast().catalog().clone();
    let (video, _) = catalog.video_renditions().next().unwrap();
    let (audio, config) = catalog.audio_renditions().next().unwrap();
    assert_eq!((video.as_str(), audio.as_str()), ("video0", "audio1"));
    assert_eq!(config.codec, "opus");

    // Every 960-sample Opus frame 20 ms after the previous one: no repeat, no jump.
    let audio = timestamps(&importer, audio).await;
    assert_eq!(audio.len(), audio_packets.len());
    for pair in audio.windows(2) {
        assert_eq!(pair[1] - pair[0], 20_000, "audio timestamps {pair:?}");
    }
    let video = timestamps(&importer, video).await;
    assert_eq!(video.len(), packets(&input, 0).len());
}

#[tokio::test]
async fn audio_and_video_round_trip() {
    require_encoder("libx264");
    require_encoder("aac");
    let fixtures = Fixtures::new();
    // TESTING.md's flags for A+V without the quirk: 100 ms fragments.
    let input = fixtures.ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "2",
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "30",
            "-c:a",
            "aac",
            "-f",
            "mp4",
            "-frag_duration",
            "100000",
            "-movflags",
            "cmaf+separate_moof+delay_moov+skip_trailer",
        ],
        "av.mp4",
    );
    let out = fixtures.path("out.mp4");
    round_trip(&input, &out, Fragment::Group).await;
    let (source, exported) = (streams(&input), streams(&out));
    assert_eq!(exported.len(), 2);
    for (s, e) in source.iter().zip(&exported) {
        assert_eq!(s["codec_name"], e["codec_name"]);
    }
    for index in 0..2 {
        let (a, b) = (packets(&input, index), packets(&out, index));
        assert_eq!(a.len(), b.len(), "stream {index} frame count");
        for (a, b) in a.iter().zip(&b) {
            assert!((a.0 - b.0).abs() <= 1, "stream {index}: {a:?} vs {b:?}");
        }
    }
}
