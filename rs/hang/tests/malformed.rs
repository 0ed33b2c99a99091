//! Malformed input gives an error, never a panic: truncation at every box boundary and inside
//! boxes, garbage, a stream joined mid-fragment, and seeded random mutations of a real fixture.

mod common;

use bytes::BytesMut;
use common::*;
use hang::import::{AnnexBImporter, Fmp4Importer, ImportError};
use hang::BroadcastProducer;
use proptest::prelude::*;

fn fixture() -> Vec<u8> {
    require_encoder("libx264");
    require_encoder("aac");
    let fixtures = Fixtures::new();
    let path = fixtures.fmp4(
        "av.mp4",
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "10",
            "-t",
            "0.3",
        ],
        &["-c:a", "aac"],
    );
    std::fs::read(path).unwrap()
}

fn import_all(bytes: &[u8]) -> Result<(), ImportError> {
    let mut importer = Fmp4Importer::new(BroadcastProducer::new());
    let rest = feed(&mut importer, bytes)?;
    importer.finish(&rest)
}

#[test]
fn truncated_input_is_an_error() {
    let bytes = fixture();
    import_all(&bytes).expect("the whole fixture imports");
    // Top-level box ends: a cut after a whole fragment (moof+mdat) is a shorter valid stream.
    let mut complete = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind = &bytes[at + 4..at + 8];
        at += size;
        if kind != b"moof" && kind != b"ftyp" {
            complete.push(at);
        }
    }
    // Cut everywhere in the first 4 KiB, then every 997 bytes.
    let cuts = (0..bytes.len().min(4096)).chain((4096..bytes.len()).step_by(997));
    for cut in cuts {
        let result = import_all(&bytes[..cut]);
        assert_eq!(
            result.is_ok(),
            complete.contains(&cut),
            "cut at {cut} of {}: {result:?}",
            bytes.len()
        );
    }
    let err = import_all(&bytes[..bytes.len() - 3]).unwrap_err();
    assert!(err.to_string().contains("ends inside a box"), "{err}");
}

#[test]
fn garbage_is_an_error() {
    let err = import_all(b"this is not an MP4 file at all, just text").unwrap_err();
    assert!(matches!(err, ImportError::Malformed(_)), "{err}");
    // A huge declared size is refused before anything is buffered.
    let err = import_all(&[0xff, 0xff, 0xff, 0xff, b'm', b'o', b'o', b'v']).unwrap_err();
    assert!(err.to_string().contains("exceeds"), "{err}");
    // Size 0 ("to the end of the file") cannot work in a stream.
    let err = import_all(&[0, 0, 0, 0, b'f', b't', b'y', b'p']).unwrap_err();
    assert!(matches!(err, ImportError::Unsupported(_)), "{err}");
    let err = import_all(&[0, 0, 0, 3, b'f', b't', b'y', b'p']).unwrap_err();
    assert!(err.to_string().contains("smaller than its header"), "{err}");
}

#[test]
fn a_stream_joined_mid_fragment_is_an_error() {
    let bytes = fixture();
    // At the second moof: media before any init segment.
    let moofs: Vec<usize> = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"moof")
        .map(|(i, _)| i - 4)
        .collect();
    let err = import_all(&bytes[moofs[1]..]).unwrap_err();
    assert!(matches!(err, ImportError::MissingInit), "{err}");
    // Inside a fragment: not a box header.
    let err = import_all(&bytes[moofs[1] + 50..]).unwrap_err();
    assert!(matches!(err, ImportError::Malformed(_)), "{err}");
}

#[test]
fn annexb_garbage_is_an_error() {
    let mut importer = AnnexBImporter::new(BroadcastProducer::new());
    let mut buf = BytesMut::from(&b"not annex b"[..]);
    assert!(importer.decode(&mut buf).is_err());
    let mut importer = AnnexBImporter::new(BroadcastProducer::new());
    let mut buf = BytesMut::from(&[0u8, 0, 1, 0x80, 1, 2][..]);
    assert!(importer.finish(&mut buf).is_err(), "forbidden bit");
    let mut importer = AnnexBImporter::new(BroadcastProducer::new());
    let mut buf = BytesMut::from(&[0u8, 0, 1, 0x67, 0xff][..]);
    assert!(importer.finish(&mut buf).is_err(), "bad SPS");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random bytes never panic either importer.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = import_all(&bytes);
        let mut importer = AnnexBImporter::new(BroadcastProducer::new()).with_frame_rate(30.0);
        let mut buf = BytesMut::from(&bytes[..]);
        if importer.decode(&mut buf).is_ok() {
            let _ = importer.finish(&mut buf);
        }
    }

    /// Random boxes with plausible headers, and headers of real box kinds, never panic.
    #[test]
    fn random_boxes_never_panic(
        boxes in proptest::collection::vec(
            (prop_oneof![Just(*b"ftyp"), Just(*b"moov"), Just(*b"moof"), Just(*b"mdat"), Just(*b"free")],
             proptest::collection::vec(any::<u8>(), 0..256)),
            0..6)
    ) {
        let mut bytes = Vec::new();
        for (kind, body) in boxes {
            bytes.extend_from_slice(&(body.len() as u32 + 8).to_be_bytes());
            bytes.extend_from_slice(&kind);
            bytes.extend_from_slice(&body);
        }
        let _ = import_all(&bytes);
    }
}

/// Seeded mutations of a real A+V fixture (bytes flipped inside moov, moof and mdat) never panic.
#[test]
fn mutated_fixture_never_panics() {
    let bytes = fixture();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..400 {
        let mut mutated = bytes.clone();
        for _ in 0..4 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed as usize) % mutated.len();
            mutated[at] = (seed >> 32) as u8;
        }
        let _ = import_all(&mutated);
    }
}
