//! fMP4 import of every codec from ffmpeg fixtures: exact catalog entries, and an import → export
//! round trip that ffprobe reads back with the same codec, size, frame count and timestamps.

mod common;

use common::*;
use hang::catalog::Catalog;
use hang::export::Fragment;

const X264: &[&str] = &["-c:v", "libx264", "-preset", "ultrafast", "-g", "10"];

fn video(catalog: &Catalog) -> &hang::catalog::VideoConfig {
    catalog
        .video_renditions()
        .next()
        .expect("a video rendition")
        .1
}

fn audio(catalog: &Catalog) -> &hang::catalog::AudioConfig {
    catalog
        .audio_renditions()
        .next()
        .expect("an audio rendition")
        .1
}

/// Import `flags`' fixture, check the video catalog entry, round-trip it and compare with ffprobe.
async fn check_video(encoder: &str, flags: &[&str], codec: &str, tag: &str, fragment: Fragment) {
    require_encoder(encoder);
    let fixtures = Fixtures::new();
    let input = fixtures.fmp4("in.mp4", flags, &[]);
    let source = streams(&input);
    let out = fixtures.path("out.mp4");
    let importer = round_trip(&input, &out, fragment).await;

    let config = video(importer.broadcast().catalog()).clone();
    assert_eq!(config.codec, codec);
    assert_eq!(
        (config.coded_width, config.coded_height),
        (Some(320), Some(240))
    );
    let extradata = extradata(&source[0]);
    match config.description.as_deref() {
        Some(description) => assert_eq!(
            description,
            &extradata[..],
            "description = the source's config record"
        ),
        None => assert!(
            extradata.is_empty(),
            "no description but the source has extradata"
        ),
    }

    let exported = streams(&out);
    assert_eq!(exported.len(), 1);
    for key in ["codec_name", "width", "height"] {
        assert_eq!(exported[0][key], source[0][key], "{key}");
    }
    assert_eq!(exported[0]["codec_tag_string"], tag);
    let (a, b) = (packets(&input, 0), packets(&out, 0));
    assert_eq!((a.len(), b.len()), (30, 30), "frame count");
    for (a, b) in a.iter().zip(&b) {
        assert_eq!(a.1, b.1, "keyframe flags preserved");
        assert!(
            (a.0 - b.0).abs() <= 1,
            "timestamps preserved (±1 µs rounding): {a:?} vs {b:?}"
        );
    }
}

#[tokio::test]
async fn h264_avc1() {
    let codec = {
        let fixtures = Fixtures::new();
        let input = fixtures.fmp4("probe.mp4", X264, &[]);
        format!(
            "avc1.{}",
            hex::encode(&extradata(&streams(&input)[0])[1..4])
        )
    };
    check_video("libx264", X264, &codec, "avc1", Fragment::Frame).await;
}

#[tokio::test]
async fn h264_avc3() {
    let flags = [X264, &["-tag:v", "avc3"]].concat();
    let codec = {
        let fixtures = Fixtures::new();
        let input = fixtures.fmp4("probe.mp4", &flags, &[]);
        format!(
            "avc3.{}",
            hex::encode(&extradata(&streams(&input)[0])[1..4])
        )
    };
    check_video("libx264", &flags, &codec, "avc3", Fragment::Frame).await;
}

#[tokio::test]
async fn h264_high_profile_with_b_frames_per_group() {
    let flags = [
        "-c:v",
        "libx264",
        "-preset",
        "medium",
        "-profile:v",
        "high",
        "-level",
        "3.1",
        "-bf",
        "2",
        "-g",
        "10",
    ];
    check_video("libx264", &flags, "avc1.64001f", "avc1", Fragment::Group).await;
}

#[tokio::test]
async fn h264_with_b_frames_per_frame() {
    let flags = [
        "-c:v",
        "libx264",
        "-preset",
        "medium",
        "-profile:v",
        "high",
        "-level",
        "3.1",
        "-bf",
        "2",
        "-g",
        "10",
    ];
    check_video("libx264", &flags, "avc1.64001f", "avc1", Fragment::Frame).await;
}

const X265: &[&str] = &[
    "-c:v",
    "libx265",
    "-preset",
    "ultrafast",
    "-x265-params",
    "log-level=error",
    "-g",
    "10",
];

#[tokio::test]
async fn h265_hev1_with_b_frames() {
    check_video("libx265", X265, "hev1.1.6.L60.90", "hev1", Fragment::Group).await;
}

#[tokio::test]
async fn h265_hvc1() {
    let flags = [X265, &["-tag:v", "hvc1"]].concat();
    check_video(
        "libx265",
        &flags,
        "hvc1.1.6.L60.90",
        "hvc1",
        Fragment::Frame,
    )
    .await;
}

#[tokio::test]
async fn av1() {
    let flags = [
        "-c:v",
        "libaom-av1",
        "-cpu-used",
        "8",
        "-usage",
        "realtime",
        "-g",
        "10",
    ];
    check_video(
        "libaom-av1",
        &flags,
        "av01.0.00M.08",
        "av01",
        Fragment::Frame,
    )
    .await;
}

#[tokio::test]
async fn vp9() {
    let flags = [
        "-c:v",
        "libvpx-vp9",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-g",
        "10",
    ];
    // Colour fields 2 (unspecified) as ffmpeg writes them in vpcC: the long form.
    check_video(
        "libvpx-vp9",
        &flags,
        "vp09.00.20.08.01.02.02.02.00",
        "vp09",
        Fragment::Frame,
    )
    .await;
}

async fn check_audio(encoder: &str, flags: &[&str], codec: &str, channels: u32) {
    require_encoder(encoder);
    let fixtures = Fixtures::new();
    let input = fixtures.fmp4("in.mp4", &[], flags);
    let source = streams(&input);
    let out = fixtures.path("out.mp4");
    let importer = round_trip(&input, &out, Fragment::Frame).await;

    let config = audio(importer.broadcast().catalog()).clone();
    assert_eq!(config.codec, codec);
    assert_eq!(
        (config.sample_rate, config.number_of_channels),
        (48000, channels)
    );
    if codec.starts_with("mp4a") {
        assert_eq!(
            config.description.as_deref(),
            Some(&extradata(&source[0])[..]),
            "AudioSpecificConfig"
        );
    }

    let exported = streams(&out);
    for key in ["codec_name", "sample_rate", "channels"] {
        assert_eq!(exported[0][key], source[0][key], "{key}");
    }
    let (a, b) = (packets(&input, 0), packets(&out, 0));
    assert_eq!(a.len(), b.len(), "frame count");
    for (a, b) in a.iter().zip(&b) {
        assert!(
            (a.0 - b.0).abs() <= 1,
            "timestamps preserved: {a:?} vs {b:?}"
        );
    }
}

#[tokio::test]
async fn aac() {
    check_audio("aac", &["-c:a", "aac", "-ac", "2"], "mp4a.40.2", 2).await;
}

#[tokio::test]
async fn opus() {
    check_audio("libopus", &["-c:a", "libopus"], "opus", 1).await;
}
