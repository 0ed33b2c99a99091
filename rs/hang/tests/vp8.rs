//! VP8: ffmpeg 5.1's mp4 muxer cannot write VP8 ("Could not find tag for codec vp8"), so the
//! fixture is ffmpeg's VP8 in IVF, published as a hang track, exported to fMP4 (checked by ffprobe)
//! and imported back (checked against the catalog).

mod common;

use common::*;
use hang::catalog::VideoConfig;
use hang::export::Fmp4Exporter;
use hang::{BroadcastProducer, Frame};

#[tokio::test]
async fn vp8_export_and_import() {
    require_encoder("libvpx");
    let fixtures = Fixtures::new();
    let ivf = fixtures.ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
            "-t",
            "1",
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libvpx",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-g",
            "10",
            "-f",
            "ivf",
        ],
        "in.ivf",
    );
    let bytes = std::fs::read(ivf).unwrap();
    // IVF: 32-byte file header, then frames of (u32 LE size, u64 LE pts, data).
    let mut frames = Vec::new();
    let mut at = u16::from_le_bytes([bytes[6], bytes[7]]) as usize;
    while at + 12 <= bytes.len() {
        let size = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        frames.push(bytes::Bytes::copy_from_slice(
            &bytes[at + 12..at + 12 + size],
        ));
        at += 12 + size;
    }
    assert_eq!(frames.len(), 30);

    let mut broadcast = BroadcastProducer::new();
    let mut track = broadcast.add_video(VideoConfig {
        codec: "vp8".into(),
        coded_width: Some(320),
        coded_height: Some(240),
        ..Default::default()
    });
    broadcast.publish_catalog().unwrap();
    for (i, payload) in frames.iter().enumerate() {
        let keyframe = payload[0] & 1 == 0; // VP8 frame tag: bit 0 is 0 on key frames
        let timestamp = (i as f64 * 1e6 / 30.0).round() as u64;
        track
            .write(Frame {
                timestamp,
                keyframe,
                payload: payload.clone(),
            })
            .unwrap();
    }
    let written = export(
        broadcast.consume(),
        |consumer, writer| Fmp4Exporter::new(consumer).start_at_oldest().run(writer),
        || {
            track.finish();
            broadcast.finish();
        },
    )
    .await;
    let out = fixtures.path("out.mp4");
    std::fs::write(&out, &written).unwrap();
    let stream = &streams(&out)[0];
    assert_eq!(
        (
            stream["codec_name"].as_str(),
            stream["codec_tag_string"].as_str(),
            stream["width"].as_u64(),
            stream["height"].as_u64()
        ),
        (Some("vp8"), Some("vp08"), Some(320), Some(240))
    );
    let packets = packets(&out, 0);
    assert_eq!(packets.len(), 30);
    assert!(packets[0].1 && packets[10].1 && !packets[1].1);

    let importer = import(&written).expect("import our own VP8 fMP4");
    let catalog = importer.broadcast().catalog();
    let (_, config) = catalog.video_renditions().next().unwrap();
    assert_eq!(config.codec, "vp8");
    assert_eq!(
        (config.coded_width, config.coded_height),
        (Some(320), Some(240))
    );
    assert_eq!(config.description, None);
}
