//! CMAF-container renditions (as the reference `moq import fmp4` publishes them): an ffmpeg fMP4
//! file is split here into one init segment per track and one moq-lite frame per `moof`+`mdat`,
//! published in-process, exported (fMP4 or Annex-B) and compared with the source by ffprobe.

mod common;

use std::path::Path;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::*;
use hang::catalog::{AudioConfig, Container, VideoConfig};
use hang::export::{AnnexBExporter, Fmp4Exporter};
use hang::BroadcastProducer;
use mp4_atom::{Decode, Encode, FourCC, Moof, Moov, Mvex};

/// ffmpeg's live A+V flags (TESTING.md), as piped into the reference importer.
const CMAF_FLAGS: &[&str] = &[
    "-f",
    "mp4",
    "-frag_duration",
    "100000",
    "-movflags",
    "cmaf+separate_moof+delay_moov+skip_trailer",
];

const VIDEO_IN: &[&str] = &["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"];
const AUDIO_IN: &[&str] = &["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"];
const X264: &[&str] = &[
    "-pix_fmt",
    "yuv420p",
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-g",
    "30",
];
const AAC: &[&str] = &["-c:a", "aac", "-b:a", "64k"];

/// One track of an fMP4 file as a CMAF rendition.
struct Rendition {
    /// `ftyp` + a `moov` holding only this track (and its `trex`).
    init: Bytes,
    /// The `hdlr` type: `vide` or `soun`.
    handler: FourCC,
    /// Each `moof`+`mdat`, its first sample's decode time in µs and whether it is a sync sample.
    fragments: Vec<(Bytes, u64, bool)>,
}

/// The top-level boxes of `bytes` as (type, whole box).
fn boxes(bytes: &Bytes) -> Vec<([u8; 4], Bytes)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        assert!(size >= 8 && at + size <= bytes.len(), "box size {size}");
        let kind = bytes[at + 4..at + 8].try_into().unwrap();
        out.push((kind, bytes.slice(at..at + size)));
        at += size;
    }
    assert_eq!(at, bytes.len(), "trailing bytes");
    out
}

/// Split an fMP4 file into one CMAF rendition per track, in `moov` order.
fn split(path: &Path) -> Vec<Rendition> {
    let bytes = Bytes::from(std::fs::read(path).expect("fixture"));
    let mut ftyp = Bytes::new();
    let mut moov: Option<Moov> = None;
    let mut renditions: Vec<(u32, u64, u32, Rendition)> = Vec::new();
    let mut moof: Option<(Moof, Bytes)> = None;
    for (kind, data) in boxes(&bytes) {
        match &kind {
            b"ftyp" => ftyp = data,
            b"moov" => {
                let decoded = Moov::decode(&mut &data[..]).expect("moov");
                for trak in &decoded.trak {
                    let id = trak.tkhd.track_id;
                    let trex = decoded
                        .mvex
                        .as_ref()
                        .and_then(|m| m.trex.iter().find(|t| t.track_id == id))
                        .cloned()
                        .expect("trex");
                    let single = Moov {
                        mvhd: decoded.mvhd.clone(),
                        mvex: Some(Mvex {
                            mehd: None,
                            trex: vec![trex.clone()],
                        }),
                        trak: vec![trak.clone()],
                        ..Default::default()
                    };
                    let mut init = BytesMut::from(&ftyp[..]);
                    single.encode(&mut init).unwrap();
                    let handler = trak.mdia.hdlr.handler;
                    renditions.push((
                        id,
                        u64::from(trak.mdia.mdhd.timescale),
                        trex.default_sample_flags,
                        Rendition {
                            init: init.freeze(),
                            handler,
                            fragments: Vec::new(),
                        },
                    ));
                }
                moov = Some(decoded);
            }
            b"moof" => moof = Some((Moof::decode(&mut &data[..]).expect("moof"), data)),
            b"mdat" => {
                let (decoded, moof_bytes) = moof.take().expect("moof before mdat");
                assert_eq!(decoded.traf.len(), 1, "separate_moof: one track per moof");
                let traf = &decoded.traf[0];
                let (_, timescale, trex_flags, rendition) = renditions
                    .iter_mut()
                    .find(|r| r.0 == traf.tfhd.track_id)
                    .expect("a track of the moov");
                let flags = traf.trun[0]
                    .samples
                    .get(0)
                    .and_then(|e| e.flags)
                    .or(traf.tfhd.default_sample_flags)
                    .unwrap_or(*trex_flags);
                let sync = flags & 0x1_0000 == 0;
                let dts = traf.tfdt.as_ref().expect("tfdt").base_media_decode_time;
                let micros = dts * 1_000_000 / *timescale;
                let mut fragment = BytesMut::from(&moof_bytes[..]);
                fragment.extend_from_slice(&data);
                rendition.fragments.push((fragment.freeze(), micros, sync));
            }
            _ => {}
        }
    }
    assert!(moov.is_some(), "no moov");
    renditions.into_iter().map(|r| r.3).collect()
}

/// Add `rendition` to `broadcast` under `name` with a CMAF container and write all its fragments:
/// video gets a group per sync fragment, audio a group per fragment. Returns the track, to be
/// finished once the exporter has subscribed.
fn publish(
    broadcast: &mut BroadcastProducer,
    name: &str,
    rendition: &Rendition,
) -> moq_lite::TrackProducer {
    let container = Container::Cmaf {
        init: rendition.init.clone(),
    };
    let catalog = broadcast.catalog_mut();
    let video = rendition.handler == FourCC::new(b"vide");
    if video {
        let config = VideoConfig {
            codec: "avc1.64000d".into(),
            coded_width: Some(320),
            coded_height: Some(240),
            container,
            ..Default::default()
        };
        let section = catalog.video.get_or_insert_with(Default::default);
        section.renditions.insert(name.into(), config);
    } else {
        let config = AudioConfig {
            codec: "mp4a.40.2".into(),
            sample_rate: 48000,
            number_of_channels: 1,
            container,
            ..Default::default()
        };
        let section = catalog.audio.get_or_insert_with(Default::default);
        section.renditions.insert(name.into(), config);
    }
    let track = broadcast
        .inner()
        .create_track(moq_lite::Track::new(name), hang::media_track_info());
    let mut group: Option<moq_lite::GroupProducer> = None;
    for (fragment, timestamp, sync) in &rendition.fragments {
        if !video || *sync || group.is_none() {
            if let Some(mut previous) = group.take() {
                previous.finish();
            }
            group = Some(track.append_group().unwrap());
        }
        let group = group.as_mut().unwrap();
        group.write_frame(*timestamp, fragment.clone()).unwrap();
    }
    if let Some(mut group) = group {
        group.finish();
    }
    track
}

/// Export `broadcast` as fMP4 from its oldest groups into `out`, finishing `tracks` once the
/// exporter has subscribed.
async fn export_fmp4(
    broadcast: &BroadcastProducer,
    tracks: Vec<moq_lite::TrackProducer>,
    latency: Duration,
    out: &Path,
) {
    let written = export(
        broadcast.consume(),
        move |consumer, writer| {
            Fmp4Exporter::new(consumer)
                .latency(latency)
                .start_at_oldest()
                .run(writer)
        },
        || {
            for track in &tracks {
                track.finish();
            }
            broadcast.finish();
        },
    )
    .await;
    std::fs::write(out, written).unwrap();
}

/// Stream `index` of `out` has the codec, size, frame count and relative timestamps of stream
/// `source_index` of `source`.
fn assert_same_stream(source: &Path, source_index: usize, out: &Path, index: usize) {
    let (a, b) = (&streams(source)[source_index], &streams(out)[index]);
    for key in [
        "codec_type",
        "codec_name",
        "width",
        "height",
        "sample_rate",
        "channels",
    ] {
        assert_eq!(a[key], b[key], "stream {index}: {key}");
    }
    let (a, b) = (packets(source, source_index), packets(out, index));
    assert_eq!(a.len(), b.len(), "stream {index}: frame count");
    for (a, b) in a.iter().zip(&b) {
        assert!((a.0 - b.0).abs() <= 1, "stream {index}: {a:?} vs {b:?}");
        assert_eq!(a.1, b.1, "stream {index}: keyframe flag at {a:?}");
    }
}

/// ffmpeg decodes every stream of `path` without a single error message.
fn assert_decodes_cleanly(path: &Path) {
    let output = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg is installed");
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && errors.trim().is_empty(),
        "{errors}"
    );
}

/// The `tfhd` track IDs of every fragment of `path`, in file order.
fn fragment_track_ids(path: &Path) -> Vec<u32> {
    let bytes = Bytes::from(std::fs::read(path).unwrap());
    boxes(&bytes)
        .into_iter()
        .filter(|(kind, _)| kind == b"moof")
        .map(|(_, data)| Moof::decode(&mut &data[..]).unwrap().traf[0].tfhd.track_id)
        .collect()
}

#[tokio::test]
async fn video_only_cmaf_rendition_exports() {
    require_encoder("libx264");
    let fixtures = Fixtures::new();
    let input = fixtures.ffmpeg(
        &[VIDEO_IN, &["-t", "2"], X264, CMAF_FLAGS].concat(),
        "v.mp4",
    );
    let renditions = split(&input);
    assert_eq!(renditions.len(), 1);
    let mut broadcast = BroadcastProducer::new();
    let track = publish(&mut broadcast, "0.m4s", &renditions[0]);
    broadcast.publish_catalog().unwrap();

    let out = fixtures.path("out.mp4");
    export_fmp4(&broadcast, vec![track], Duration::MAX, &out).await;
    assert_eq!(streams(&out).len(), 1);
    assert_same_stream(&input, 0, &out, 0);
    assert_eq!(packets(&out, 0).len(), 60);
    assert_decodes_cleanly(&out);
}

#[tokio::test]
async fn audio_and_video_cmaf_renditions_export_together() {
    require_encoder("libx264");
    require_encoder("aac");
    let fixtures = Fixtures::new();
    let input = fixtures.ffmpeg(
        &[VIDEO_IN, AUDIO_IN, &["-t", "2"], X264, AAC, CMAF_FLAGS].concat(),
        "av.mp4",
    );
    let renditions = split(&input);
    assert_eq!(renditions.len(), 2);
    let mut broadcast = BroadcastProducer::new();
    let tracks = vec![
        publish(&mut broadcast, "0.m4s", &renditions[0]),
        publish(&mut broadcast, "1.m4s", &renditions[1]),
    ];
    broadcast.publish_catalog().unwrap();

    let out = fixtures.path("out.mp4");
    export_fmp4(&broadcast, tracks, Duration::MAX, &out).await;
    assert_eq!(streams(&out).len(), 2);
    assert_same_stream(&input, 0, &out, 0);
    assert_same_stream(&input, 1, &out, 1);
    assert_decodes_cleanly(&out);
}

/// Two encoders, each numbering its only track 1: the merged init renumbers them 1 and 2 and
/// every audio fragment's `tfhd` is rewritten to 2. One rendition is legacy-container (imported
/// through [`hang::import::Fmp4Importer`]), the other CMAF.
#[tokio::test]
async fn mixed_legacy_and_cmaf_renditions_with_colliding_track_ids() {
    require_encoder("libx264");
    require_encoder("aac");
    let fixtures = Fixtures::new();
    let video = fixtures.ffmpeg(
        &[VIDEO_IN, &["-t", "2"], X264, CMAF_FLAGS].concat(),
        "v.mp4",
    );
    let audio = fixtures.ffmpeg(&[AUDIO_IN, &["-t", "2"], AAC, CMAF_FLAGS].concat(), "a.mp4");
    let audio_rendition = split(&audio).remove(0);
    assert!(fragment_track_ids(&audio).iter().all(|id| *id == 1));

    // The video as a legacy rendition: import it, then copy its catalog entry and frames.
    let mut imported = hang::import::Fmp4Importer::new(BroadcastProducer::new());
    feed(&mut imported, &std::fs::read(&video).unwrap()).expect("import");
    let (name, config) = imported
        .broadcast()
        .catalog()
        .video_renditions()
        .next()
        .map(|(n, c)| (n.clone(), c.clone()))
        .unwrap();
    let mut frames = Vec::new();
    let mut reader = imported
        .broadcast()
        .consume()
        .subscribe(&name, Duration::MAX);
    reader.start_at_oldest();
    // Not finished (a finished track cannot be subscribed to): read until nothing more comes.
    while let Ok(frame) = tokio::time::timeout(Duration::from_millis(300), reader.read()).await {
        frames.push(frame.unwrap().unwrap());
    }
    assert_eq!(frames.len(), 60);

    let mut broadcast = BroadcastProducer::new();
    let mut legacy = broadcast.add_video(config);
    for frame in frames {
        legacy.write(frame).unwrap();
    }
    let cmaf = publish(&mut broadcast, "audio.m4s", &audio_rendition);
    broadcast.publish_catalog().unwrap();

    let out = fixtures.path("out.mp4");
    let written = export(
        broadcast.consume(),
        |consumer, writer| Fmp4Exporter::new(consumer).start_at_oldest().run(writer),
        || {
            legacy.finish();
            cmaf.finish();
        },
    )
    .await;
    std::fs::write(&out, written).unwrap();

    assert_eq!(streams(&out).len(), 2);
    assert_same_stream(&video, 0, &out, 0);
    assert_same_stream(&audio, 0, &out, 1);
    assert_decodes_cleanly(&out);
    let ids = fragment_track_ids(&out);
    assert!(ids.contains(&1) && ids.contains(&2), "{ids:?}");
}

/// A reader more than its latency target behind skips to the newest group, as for legacy tracks.
#[tokio::test]
async fn a_cmaf_reader_behind_its_latency_target_skips_ahead() {
    require_encoder("libx264");
    let fixtures = Fixtures::new();
    // Three one-second GoPs, all published before the exporter starts.
    let input = fixtures.ffmpeg(
        &[VIDEO_IN, &["-t", "3"], X264, CMAF_FLAGS].concat(),
        "v.mp4",
    );
    let renditions = split(&input);
    let first_fragment = 3; // 100 ms fragments of 30 fps
    let mut broadcast = BroadcastProducer::new();
    let track = publish(&mut broadcast, "0.m4s", &renditions[0]);
    broadcast.publish_catalog().unwrap();

    let out = fixtures.path("out.mp4");
    export_fmp4(&broadcast, vec![track], Duration::from_secs(1), &out).await;
    // The first fragment of GoP 0, then GoP 2 (2 s past it) in full; GoP 1 is skipped.
    let got = packets(&out, 0);
    assert_eq!(got.len(), first_fragment + 30, "{got:?}");
    assert_eq!(got[first_fragment], (2_000_000, true));
}

#[tokio::test]
async fn annexb_export_of_a_cmaf_rendition() {
    require_encoder("libx264");
    let fixtures = Fixtures::new();
    let input = fixtures.ffmpeg(
        &[VIDEO_IN, &["-t", "2"], X264, CMAF_FLAGS].concat(),
        "v.mp4",
    );
    let renditions = split(&input);
    let mut broadcast = BroadcastProducer::new();
    let track = publish(&mut broadcast, "0.m4s", &renditions[0]);
    broadcast.publish_catalog().unwrap();

    let written = export(
        broadcast.consume(),
        |consumer, writer| AnnexBExporter::new(consumer).start_at_oldest().run(writer),
        || track.finish(),
    )
    .await;
    let out = fixtures.path("out.h264");
    std::fs::write(&out, &written).unwrap();
    assert!(written.starts_with(&[0, 0, 0, 1, 0x67]), "SPS first");
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
    assert_eq!(frames.len(), 60);
    let keyframes: Vec<usize> = (0..frames.len()).filter(|i| frames[*i].1).collect();
    assert_eq!(keyframes, [0, 30]);
}

/// Fragments that cannot be relocated, or are not fragments at all, end the export with an
/// error instead of writing something broken.
#[tokio::test]
async fn a_broken_cmaf_fragment_is_an_error() {
    require_encoder("libx264");
    let fixtures = Fixtures::new();
    let input = fixtures.ffmpeg(
        &[VIDEO_IN, &["-t", "1"], X264, CMAF_FLAGS].concat(),
        "v.mp4",
    );
    let mut rendition = split(&input).remove(0);
    let (fragment, timestamp, _) = rendition.fragments[1].clone();
    rendition.fragments.truncate(1);
    rendition
        .fragments
        .push((fragment.slice(..fragment.len() / 2), timestamp, false));
    let mut broadcast = BroadcastProducer::new();
    let track = publish(&mut broadcast, "0.m4s", &rendition);
    broadcast.publish_catalog().unwrap();

    let consumer = broadcast.consume();
    let (writer, _reader) = tokio::io::duplex(16 << 20);
    let task = tokio::spawn(Fmp4Exporter::new(consumer).start_at_oldest().run(writer));
    let result = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the exporter stops")
        .expect("no panic");
    track.finish();
    assert!(
        matches!(result, Err(hang::export::ExportError::InvalidFrame { .. })),
        "{result:?}"
    );

    // An init that is not one.
    let mut broadcast = BroadcastProducer::new();
    rendition.init = Bytes::from_static(b"\0\0\0\x08free");
    let _track = publish(&mut broadcast, "0.m4s", &rendition);
    broadcast.publish_catalog().unwrap();
    let (writer, _reader) = tokio::io::duplex(1 << 20);
    let result = Fmp4Exporter::new(broadcast.consume()).run(writer).await;
    assert!(
        matches!(result, Err(hang::export::ExportError::Unsupported { .. })),
        "{result:?}"
    );
}
