//! Raw H.264 Annex-B: import from ffmpeg, export to fMP4 and back to Annex-B, checked by ffprobe.

mod common;

use bytes::BytesMut;
use common::*;
use hang::export::{AnnexBExporter, Fmp4Exporter};
use hang::import::AnnexBImporter;
use hang::BroadcastProducer;

#[tokio::test]
async fn annexb_import_and_fmp4_export() {
    require_encoder("libx264");
    let fixtures = Fixtures::new();
    let input = fixtures.ffmpeg(
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
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "10",
            "-f",
            "h264",
        ],
        "in.h264",
    );
    let bytes = std::fs::read(&input).unwrap();
    let sps_at = bytes.windows(4).position(|w| w == [0, 0, 1, 0x67]).unwrap() + 4;

    let mut importer = AnnexBImporter::new(BroadcastProducer::new()).with_frame_rate(30.0);
    let mut buf = BytesMut::new();
    for chunk in bytes.chunks(1000) {
        buf.extend_from_slice(chunk);
        importer.decode(&mut buf).expect("import");
    }
    let catalog = importer.broadcast().catalog().clone();
    let (_, config) = catalog.video_renditions().next().unwrap();
    assert_eq!(
        config.codec,
        format!("avc3.{}", hex::encode(&bytes[sps_at..sps_at + 3]))
    );
    assert_eq!(
        (config.coded_width, config.coded_height),
        (Some(320), Some(240))
    );
    assert_eq!(config.description, None, "parameter sets in band");

    let consumer = importer.broadcast().consume();
    let written = export(
        consumer,
        |consumer, writer| Fmp4Exporter::new(consumer).start_at_oldest().run(writer),
        || importer.finish(&mut buf).expect("finish"),
    )
    .await;
    let out = fixtures.path("out.mp4");
    std::fs::write(&out, written).unwrap();
    let stream = &streams(&out)[0];
    assert_eq!(
        (
            stream["codec_name"].as_str(),
            stream["width"].as_u64(),
            stream["height"].as_u64()
        ),
        (Some("h264"), Some(320), Some(240))
    );
    let frames = packets(&out, 0);
    assert_eq!(frames.len(), 30);
    for (i, (pts, key)) in frames.iter().enumerate() {
        assert_eq!(*pts, (i as f64 * 1e6 / 30.0).round() as i64);
        assert_eq!(*key, i % 10 == 0, "frame {i}");
    }
}

#[tokio::test]
async fn fmp4_import_and_annexb_export() {
    require_encoder("libx264");
    let fixtures = Fixtures::new();
    let input = fixtures.fmp4(
        "in.mp4",
        &["-c:v", "libx264", "-preset", "ultrafast", "-g", "10"],
        &[],
    );
    let bytes = std::fs::read(&input).unwrap();
    let mut importer = hang::import::Fmp4Importer::new(BroadcastProducer::new());
    let rest = feed(&mut importer, &bytes).unwrap();
    let consumer = importer.broadcast().consume();
    // The exporter writes nothing before its first frame: finish once it has subscribed.
    let written = export(
        consumer,
        |consumer, writer| AnnexBExporter::new(consumer).start_at_oldest().run(writer),
        || importer.finish(&rest).expect("finish"),
    )
    .await;
    let out = fixtures.path("out.h264");
    std::fs::write(&out, &written).unwrap();
    assert!(written.starts_with(&[0, 0, 0, 1, 0x67]), "SPS first");
    let stream = &streams(&out)[0];
    assert_eq!(
        (stream["codec_name"].as_str(), stream["width"].as_u64()),
        (Some("h264"), Some(320))
    );
    assert_eq!(packets(&out, 0).len(), 30);
}
