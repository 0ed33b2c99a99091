//! The wire codec against the reference's byte vectors: every case of
//! `testdata/moq-lite-vectors.json` and every byte example of the spec (§11, appendix A §1.4
//! and §1.6) decodes to the expected value, re-encodes to the same bytes, and every strict prefix
//! decodes as "need more bytes".

use std::collections::BTreeSet;
use std::fmt::Debug;

use bytes::Bytes;
use moq_lite::coding::*;
use moq_lite::{Cost, Path, Version};
use serde_json::{Map, Value};

/// The vectors are checked in at `<repo>/testdata/` (provenance: `testdata/README.md`).
const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/moq-lite-vectors.json"
);

/// lite-06 as moq-relay 0.17.10 speaks it, from its own Rust encoder (moq-net 0.3.18; provenance:
/// `testdata/README.md`, generator `scripts/lite06-vectors/gen.sh`).
const VECTORS_06: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/moq-lite-06-vectors.json"
);

fn bytes(hex: &str) -> Vec<u8> {
    let compact: String = hex.split_whitespace().collect();
    hex::decode(&compact).unwrap_or_else(|e| panic!("bad hex {hex:?}: {e}"))
}

fn path(s: &str) -> Path {
    Path::new(s).unwrap()
}

/// Every strict prefix of `bytes` must be `Short`: never a value, another error or a panic.
fn assert_prefixes_short<T: Decode + Debug>(bytes: &[u8], version: Version) {
    for cut in 0..bytes.len() {
        let result = T::decode(&mut &bytes[..cut], version);
        assert!(
            matches!(result, Err(DecodeError::Short)),
            "{version}: {} cut at {cut} gave {result:?}",
            hex::encode(bytes)
        );
    }
}

/// `bytes` decodes to `expected` exactly, `expected` encodes to `bytes`, and prefixes are short.
fn check<T: Encode + Decode + PartialEq + Debug>(bytes: &[u8], version: Version, expected: &T) {
    let mut buf = bytes;
    let decoded = T::decode(&mut buf, version)
        .unwrap_or_else(|e| panic!("{version}: {}: {e}", hex::encode(bytes)));
    assert_eq!(
        &decoded,
        expected,
        "{version}: decoding {}",
        hex::encode(bytes)
    );
    assert!(
        buf.is_empty(),
        "{version}: {} bytes left after {}",
        buf.len(),
        hex::encode(bytes)
    );
    assert_eq!(
        hex::encode(expected.encode_to_vec(version)),
        hex::encode(bytes),
        "{version}: encoding {expected:?}"
    );
    assert_prefixes_short::<T>(bytes, version);
}

/// Strip the stream type varint from the front of `bytes`, checking it is `expected`.
fn strip_stream_type(bytes: &[u8], expected: u64) -> &[u8] {
    let mut buf = bytes;
    assert_eq!(
        get_varint(&mut buf),
        Ok(expected),
        "stream type of {}",
        hex::encode(bytes)
    );
    buf
}

fn check_bi<T: Encode + Decode + PartialEq + Debug>(
    hex: &str,
    kind: BiStreamType,
    version: Version,
    expected: &T,
) {
    let all = bytes(hex);
    assert!(kind.allowed(version), "{kind:?} on {version}");
    assert_eq!(BiStreamType::from_id(kind.id()), Some(kind));
    assert_eq!(kind.encode_to_vec(version), all[..1]);
    check(strip_stream_type(&all, kind.id()), version, expected);
}

fn check_uni<T: Encode + Decode + PartialEq + Debug>(
    hex: &str,
    kind: UniStreamType,
    version: Version,
    expected: &T,
) {
    let all = bytes(hex);
    assert!(kind.allowed(version), "{kind:?} on {version}");
    assert_eq!(UniStreamType::from_id(kind.id()), Some(kind));
    assert_eq!(kind.encode_to_vec(version), all[..1]);
    check(strip_stream_type(&all, kind.id()), version, expected);
}

/// The compat CLIENT_SETUP: encoding includes the 0x20, decoding starts after it.
fn check_client_compat(hex: &str, expected: &ClientSetupCompat) {
    let all = bytes(hex);
    assert_eq!(
        hex::encode(expected.encode_to_vec(Version::Lite02)),
        hex::encode(&all)
    );
    let body = strip_stream_type(&all, BiStreamType::ClientCompat.id());
    assert_eq!(
        BiStreamType::from_id(0x20),
        Some(BiStreamType::ClientCompat)
    );
    for version in [Version::Lite01, Version::Lite02] {
        let mut buf = body;
        assert_eq!(
            ClientSetupCompat::decode(&mut buf, version).as_ref(),
            Ok(expected)
        );
        assert!(buf.is_empty());
        assert_prefixes_short::<ClientSetupCompat>(body, version);
    }
}

// ---------------------------------------------------------------------------------------------
// moq-lite-vectors.json

/// A case's `fields`, remembering which were read so none is silently ignored.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    used: BTreeSet<&'static str>,
}

impl<'a> Fields<'a> {
    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.used.insert(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn u64(&mut self, key: &'static str) -> u64 {
        self.get(key)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("field {key} missing or not a u64"))
    }

    fn u64_or_zero(&mut self, key: &'static str) -> u64 {
        self.get(key).map_or(0, |v| {
            v.as_u64().unwrap_or_else(|| panic!("{key} not a u64"))
        })
    }

    fn opt_u64(&mut self, key: &'static str) -> Option<u64> {
        self.get(key)
            .map(|v| v.as_u64().unwrap_or_else(|| panic!("{key} not a u64")))
    }

    fn u8(&mut self, key: &'static str) -> u8 {
        u8::try_from(self.u64(key)).unwrap_or_else(|_| panic!("{key} is not a byte"))
    }

    fn bool_or_false(&mut self, key: &'static str) -> bool {
        self.get(key)
            .is_some_and(|v| v.as_bool().unwrap_or_else(|| panic!("{key} not a bool")))
    }

    fn str(&mut self, key: &'static str) -> &'a str {
        self.get(key)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("field {key} missing or not a string"))
    }

    fn path(&mut self, key: &'static str) -> Path {
        path(self.str(key))
    }

    /// Max latency (lite-03…05 name) or max age (lite-06 name), in ms; 0 when absent.
    fn max_ms(&mut self) -> u64 {
        self.opt_u64("max_age_ms")
            .or_else(|| self.opt_u64("max_latency_ms"))
            .unwrap_or(0)
    }

    fn cost(&mut self) -> Cost {
        Cost {
            warm: self.u64("cost_warm"),
            cold: self.u64("cost_cold"),
        }
    }

    fn hops(&mut self) -> Vec<u64> {
        if let Some(count) = self.opt_u64("hop_count") {
            return vec![0; count as usize];
        }
        self.get("hops").map_or_else(Vec::new, |v| {
            v.as_array()
                .expect("hops is an array")
                .iter()
                .map(|h| h.as_u64().expect("hop is a u64"))
                .collect()
        })
    }

    fn finish(self) {
        let unread: Vec<_> = self
            .map
            .keys()
            .filter(|k| !self.used.contains(k.as_str()))
            .collect();
        assert!(unread.is_empty(), "fields not checked: {unread:?}");
    }
}

fn version_of(name: &str) -> Version {
    match name {
        "DRAFT_01" => Version::Lite01,
        "DRAFT_02" => Version::Lite02,
        "DRAFT_03" => Version::Lite03,
        "DRAFT_04" => Version::Lite04,
        "DRAFT_05" => Version::Lite05,
        "DRAFT_06" => Version::Lite06,
        other => panic!("unknown version {other}"),
    }
}

fn check_case(message: &str, version: Version, f: &mut Fields, wire: &[u8]) {
    match message {
        "SUBSCRIBE" => check(
            wire,
            version,
            &Subscribe {
                id: f.u64("subscribe_id"),
                broadcast: f.path("broadcast"),
                track: f.str("track").to_string(),
                priority: f.u8("priority"),
                ordered: f.bool_or_false("ordered"),
                max_latency_ms: f.max_ms(),
                start_group: f.opt_u64("start_group"),
                end_group: f.opt_u64("end_group"),
                start_frame: f.u64_or_zero("start_frame"),
                end_frame: f.opt_u64("end_frame"),
            },
        ),
        "SUBSCRIBE_UPDATE" => check(
            wire,
            version,
            &SubscribeUpdate {
                priority: f.u8("priority"),
                ordered: f.bool_or_false("ordered"),
                max_latency_ms: f.max_ms(),
                start_group: f.opt_u64("start_group"),
                end_group: f.opt_u64("end_group"),
                start_frame: f.u64_or_zero("start_frame"),
                end_frame: f.opt_u64("end_frame"),
            },
        ),
        "SUBSCRIBE_START" => check(
            wire,
            version,
            &SubscribeResponse::Start {
                group: f.u64("group"),
            },
        ),
        "SUBSCRIBE_END" => check(
            wire,
            version,
            &SubscribeResponse::End {
                group: f.u64("group"),
            },
        ),
        "ANNOUNCE_REQUEST" => check(
            wire,
            version,
            &AnnounceRequest {
                prefix: f.path("prefix"),
                exclude_hop: f.u64_or_zero("exclude_hop"),
            },
        ),
        "ANNOUNCE_OK" => check(
            wire,
            version,
            &AnnounceOk {
                hop_id: f.u64("hop_id"),
                active_count: f.u64("active_count"),
            },
        ),
        "ANNOUNCE(active)" | "ANNOUNCE(ended)" => {
            let status = if message == "ANNOUNCE(active)" {
                AnnounceStatus::Active
            } else {
                AnnounceStatus::Ended
            };
            check(
                wire,
                version,
                &Announce {
                    status,
                    suffix: f.path("suffix"),
                    hops: f.hops(),
                },
            )
        }
        "GROUP" => check(
            wire,
            version,
            &GroupHeader {
                subscribe_id: f.u64("subscribe_id"),
                sequence: f.u64("sequence"),
                frame_start: f.u64_or_zero("frame_start"),
            },
        ),
        "TRACK" => check(
            wire,
            version,
            &TrackRequest {
                broadcast: f.path("broadcast"),
                track: f.str("track").into(),
            },
        ),
        "TRACK_INFO" => check(
            wire,
            version,
            &TrackInfo {
                priority: f.u8("priority"),
                ordered: f.bool_or_false("ordered"),
                max_latency_ms: f.max_ms(),
                timescale: f.u64("timescale"),
            },
        ),
        "FETCH" => check(
            wire,
            version,
            &Fetch {
                broadcast: f.path("broadcast"),
                track: f.str("track").into(),
                priority: f.u8("priority"),
                group: f.u64("group"),
                start_frame: f.u64_or_zero("start_frame"),
                end_frame: f.opt_u64("end_frame"),
            },
        ),
        "PROBE" => check(
            wire,
            version,
            &Probe {
                bitrate: f.u64("bitrate"),
                rtt_ms: f.u64_or_zero("rtt_ms"),
            },
        ),
        "SUBSCRIBE_DROP" => check(
            wire,
            version,
            &SubscribeResponse::Drop {
                start: f.u64("start"),
                end: f.u64("end"),
                error_code: f.u64("error_code"),
            },
        ),
        "SETUP" => check(
            wire,
            version,
            &Setup {
                cost: f.opt_u64("cost"),
                origin: f.opt_u64("hop"),
                ..Default::default()
            },
        ),
        "ANNOUNCE_START" => check(
            wire,
            version,
            &AnnounceMessage::Start {
                suffix: f.path("suffix"),
                hops: f.hops(),
                cost: f.cost(),
            },
        ),
        "ANNOUNCE_END" => check(wire, version, &AnnounceMessage::End { id: f.u64("id") }),
        "ANNOUNCE_UPDATE" => check(
            wire,
            version,
            &AnnounceMessage::Update {
                id: f.u64("id"),
                hops: f.hops(),
                cost: f.cost(),
            },
        ),
        "GOAWAY" => check(
            wire,
            version,
            &Goaway {
                uri: f.str("uri").into(),
            },
        ),
        other => panic!("no check for message {other}: add one"),
    }
}

/// lite-06 as the reference relay 0.17.10 encodes it: every case decodes to its fields, encodes
/// back to its bytes, and every strict prefix is "need more bytes".
#[test]
fn reference_vectors_06_json() {
    let text = std::fs::read_to_string(VECTORS_06)
        .unwrap_or_else(|e| panic!("cannot read the lite-06 byte vectors at {VECTORS_06}: {e}"));
    let json: Value = serde_json::from_str(&text).expect("vectors are JSON");
    let cases = json["cases"].as_array().expect("a cases array");
    assert_eq!(cases.len(), 32, "the generator writes 32 cases");
    for case in cases {
        let message = case["message"].as_str().expect("message");
        let version = version_of(case["version"].as_str().expect("version"));
        assert_eq!(version, Version::Lite06);
        let wire = bytes(case["hex"].as_str().expect("hex"));
        let mut fields = Fields {
            map: case["fields"].as_object().expect("fields"),
            used: BTreeSet::new(),
        };
        check_case(message, version, &mut fields, &wire);
        fields.finish();
    }
}

/// A lite-06 announce stream as the reference sends it: ids are implicit and END names one.
#[test]
fn lite06_announce_ids() {
    let v = Version::Lite06;
    let mut ids = AnnounceIds::default();
    let mut wire: &[u8] = &bytes("00080362626201070101 000703636363000000 010100 0206010209070003");
    let mut seen = Vec::new();
    while !wire.is_empty() {
        match AnnounceMessage::decode(&mut wire, v).unwrap() {
            AnnounceMessage::Start { suffix, .. } => seen.push(("start", ids.start(suffix))),
            AnnounceMessage::End { id } => {
                assert_eq!(ids.end(id), Some(path("bbb")));
                seen.push(("end", id));
            }
            AnnounceMessage::Update { id, .. } => {
                assert_eq!(ids.get(id), Some(&path("ccc")));
                seen.push(("update", id));
            }
            AnnounceMessage::Unknown { .. } => unreachable!(),
        }
    }
    assert_eq!(
        seen,
        [("start", 0), ("start", 1), ("end", 0), ("update", 1)]
    );
    assert_eq!(ids.end(0), None, "a retired id is gone");
    // An unknown type is skipped by its length; the stream goes on.
    let mut skip: &[u8] = &[0x07, 0x02, 0xaa, 0xbb, 0x01, 0x01, 0x00];
    assert_eq!(
        AnnounceMessage::decode(&mut skip, v),
        Ok(AnnounceMessage::Unknown { kind: 7 })
    );
    assert_eq!(
        AnnounceMessage::decode(&mut skip, v),
        Ok(AnnounceMessage::End { id: 0 })
    );
}

#[test]
fn reference_vectors_json() {
    let text = std::fs::read_to_string(VECTORS).unwrap_or_else(|e| {
        panic!("cannot read the byte vectors at {VECTORS}: {e}\n(they are checked in under testdata/; see testdata/README.md)")
    });
    let json: Value = serde_json::from_str(&text).expect("vectors are JSON");
    let cases = json["cases"].as_array().expect("a cases array");
    assert_eq!(cases.len(), 37, "the spec promises 37 cases");
    for case in cases {
        let message = case["message"].as_str().expect("message");
        let version = version_of(case["version"].as_str().expect("version"));
        let wire = bytes(case["hex"].as_str().expect("hex"));
        let mut fields = Fields {
            map: case["fields"].as_object().expect("fields"),
            used: BTreeSet::new(),
        };
        check_case(message, version, &mut fields, &wire);
        fields.finish();
    }
}

// ---------------------------------------------------------------------------------------------
// spec §11

#[test]
fn spec_11_1_setup() {
    let client = Setup {
        probe: Some(ProbeLevel::Report),
        path: Some("/anon?jwt=abc".into()),
        role: Some(Role::Subscriber),
        cost: None,
        origin: Some(42),
    };
    check_uni(
        "01 19 04 01 01 01 02 0d 2f 61 6e 6f 6e 3f 6a 77 74 3d 61 62 63 03 01 02 05 01 2a",
        UniStreamType::Setup,
        Version::Lite05,
        &client,
    );
    let server = Setup {
        probe: Some(ProbeLevel::Report),
        origin: Some(12345),
        ..Default::default()
    };
    check_uni(
        "01 08 02 01 01 01 05 02 70 39",
        UniStreamType::Setup,
        Version::Lite05,
        &server,
    );
    check_uni(
        "01 01 00",
        UniStreamType::Setup,
        Version::Lite05,
        &Setup::default(),
    );
}

#[test]
fn spec_11_2_discovery() {
    for version in [Version::Lite04, Version::Lite05] {
        let req = AnnounceRequest {
            prefix: path("anon"),
            exclude_hop: 42,
        };
        check_bi(
            "01 06 04 61 6e 6f 6e 2a",
            BiStreamType::Announce,
            version,
            &req,
        );
    }
    let req = AnnounceRequest {
        prefix: path("anon"),
        exclude_hop: 0,
    };
    check_bi(
        "01 05 04 61 6e 6f 6e",
        BiStreamType::Announce,
        Version::Lite03,
        &req,
    );
    check(
        &bytes("03 70 39 01"),
        Version::Lite05,
        &AnnounceOk {
            hop_id: 12345,
            active_count: 1,
        },
    );
    let active = Announce {
        status: AnnounceStatus::Active,
        suffix: path("bbb"),
        hops: vec![7],
    };
    check(&bytes("07 01 03 62 62 62 01 07"), Version::Lite05, &active);
    let ended = Announce {
        status: AnnounceStatus::Ended,
        suffix: path("bbb"),
        hops: vec![],
    };
    check(&bytes("06 00 03 62 62 62 00"), Version::Lite05, &ended);
}

#[test]
fn spec_11_3_track_and_subscribe() {
    let v = Version::Lite05;
    let track = TrackRequest {
        broadcast: path("anon/bbb"),
        track: "video".into(),
    };
    check_bi(
        "06 0f 08 61 6e 6f 6e 2f 62 62 62 05 76 69 64 65 6f",
        BiStreamType::Track,
        v,
        &track,
    );
    let info = TrackInfo {
        priority: 0,
        ordered: false,
        max_latency_ms: 30_000,
        timescale: 1_000_000,
    };
    check(&bytes("0a 00 00 80 00 75 30 80 0f 42 40"), v, &info);
    // spec: §5.10 the reference defaults, pinned by a cross-language test.
    let defaults = TrackInfo {
        priority: 0,
        ordered: false,
        max_latency_ms: 5000,
        timescale: 1000,
    };
    check(&bytes("06 00 00 53 88 43 e8"), v, &defaults);

    let subscribe = Subscribe {
        id: 0,
        broadcast: path("anon/bbb"),
        track: "video".into(),
        priority: 60,
        ordered: false,
        max_latency_ms: 0,
        start_group: None,
        end_group: None,
        start_frame: 0,
        end_frame: None,
    };
    check_bi(
        "02 15 00 08 61 6e 6f 6e 2f 62 62 62 05 76 69 64 65 6f 3c 00 00 00 00",
        BiStreamType::Subscribe,
        v,
        &subscribe,
    );
    check(
        &bytes("00 01 05"),
        v,
        &SubscribeResponse::Start { group: 5 },
    );
    let update = SubscribeUpdate {
        priority: 80,
        ordered: false,
        max_latency_ms: 500,
        start_group: Some(10),
        end_group: None,
        start_frame: 0,
        end_frame: None,
    };
    check(&bytes("06 50 00 41 f4 0b 00"), v, &update);
    check(&bytes("01 01 09"), v, &SubscribeResponse::End { group: 9 });
    check(
        &bytes("02 03 06 07 00"),
        v,
        &SubscribeResponse::Drop {
            start: 6,
            end: 7,
            error_code: 0,
        },
    );

    // Same SUBSCRIBE on lite-01/02: stops after the priority byte.
    for version in [Version::Lite01, Version::Lite02] {
        check_bi(
            "02 11 00 08 61 6e 6f 6e 2f 62 62 62 05 76 69 64 65 6f 3c",
            BiStreamType::Subscribe,
            version,
            &subscribe,
        );
    }
    // lite-03/04 SUBSCRIBE_OK from the reference.
    let ok = SubscribeResponse::Ok {
        priority: 60,
        ordered: false,
        max_latency_ms: 0,
        start_group: None,
        end_group: None,
    };
    for version in [Version::Lite03, Version::Lite04] {
        check(&bytes("00 05 3c 00 00 00 00"), version, &ok);
    }
}

/// Walk a Group stream: type, GROUP, then `(header, payload)` frames, checking each part.
fn check_group_stream(
    hex: &str,
    version: Version,
    group: &GroupHeader,
    frames: &[(FrameHeader, &[u8])],
) {
    let all = bytes(hex);
    let mut rest = strip_stream_type(&all, UniStreamType::Group.id());
    assert!(UniStreamType::Group.allowed(version));
    let header_len = group.encode_to_vec(version).len();
    check(&rest[..header_len], version, group);
    rest = &rest[header_len..];
    for (frame, payload) in frames {
        let len = frame.encode_to_vec(version).len();
        check(&rest[..len], version, frame);
        rest = &rest[len..];
        assert_eq!(frame.size as usize, payload.len());
        assert_eq!(&rest[..payload.len()], *payload);
        rest = &rest[payload.len()..];
    }
    assert!(rest.is_empty(), "{} bytes after the last frame", rest.len());
}

#[test]
fn spec_11_4_group_and_frames() {
    let payload1 = bytes("80 0f 42 40 00 00 00 01 65 88");
    let payload2 = bytes("80 0f c4 75 00 00 00 01 41 9a");
    check_group_stream(
        "00 02 00 05 80 1e 84 80 0a 80 0f 42 40 00 00 00 01 65 88 80 01 04 6a 0a 80 0f c4 75 00 00 00 01 41 9a",
        Version::Lite05,
        &GroupHeader { subscribe_id: 0, sequence: 5, frame_start: 0 },
        &[
            (FrameHeader { timestamp_delta: 1_000_000, size: 10 }, &payload1),
            (FrameHeader { timestamp_delta: 33_333, size: 10 }, &payload2),
        ],
    );
    // lite-04 form of frame 1: no transport timestamp.
    check_group_stream(
        "00 02 00 05 0a 80 0f 42 40 00 00 00 01 65 88",
        Version::Lite04,
        &GroupHeader {
            subscribe_id: 0,
            sequence: 5,
            frame_start: 0,
        },
        &[(
            FrameHeader {
                timestamp_delta: 0,
                size: 10,
            },
            &payload1,
        )],
    );
}

#[test]
fn spec_11_5_others() {
    let v = Version::Lite05;
    let fetch = Fetch {
        broadcast: path("anon/bbb"),
        track: "video".into(),
        priority: 60,
        group: 5,
        start_frame: 0,
        end_frame: None,
    };
    check_bi(
        "03 11 08 61 6e 6f 6e 2f 62 62 62 05 76 69 64 65 6f 3c 05",
        BiStreamType::Fetch,
        v,
        &fetch,
    );
    check(
        &bytes("05 80 26 25 a0 28"),
        v,
        &Probe {
            bitrate: 2_500_000,
            rtt_ms: 40,
        },
    );
    check_bi(
        "05 01 00",
        BiStreamType::Goaway,
        v,
        &Goaway { uri: String::new() },
    );

    // DATAGRAM: no length, the payload runs to the end.
    let wire = bytes("00 07 80 00 bb 80 6f 70 75 73");
    let dgram = Datagram {
        subscribe_id: 0,
        group: 7,
        timestamp: 48_000,
        payload: Bytes::from_static(b"opus"),
    };
    assert_eq!(Datagram::decode(&mut &wire[..], v), Ok(dgram.clone()));
    assert_eq!(dgram.encode_to_vec(v), wire);
    assert_eq!(dgram.encoded_len(), wire.len());
    // A datagram arrives whole: only a cut inside its header is "short"; a cut in the payload is
    // just a shorter payload.
    for cut in 0..wire.len() {
        let result = Datagram::decode(&mut &wire[..cut], v);
        match cut {
            0..=5 => assert_eq!(result, Err(DecodeError::Short), "cut at {cut}"),
            _ => assert_eq!(result.map(|d| d.payload.len()), Ok(cut - 6), "cut at {cut}"),
        }
    }

    let client = ClientSetupCompat {
        versions: vec![0xff0d_ad02, 0xff0d_ad01, 0xff00_000e],
        params: vec![],
    };
    check_client_compat(
        "20 00 1a 03 c0 00 00 00 ff 0d ad 02 c0 00 00 00 ff 0d ad 01 c0 00 00 00 ff 00 00 0e 00",
        &client,
    );
    let server = ServerSetupCompat {
        version: 0xff0d_ad02,
        params: vec![],
    };
    check(
        &bytes("21 00 09 c0 00 00 00 ff 0d ad 02 00"),
        Version::Lite02,
        &server,
    );
}

// ---------------------------------------------------------------------------------------------
// spec appendix A

#[test]
fn appendix_a_1_4_compat_setup_worked_example() {
    let mut wire = String::from(
        "20 00 30 03 c0 00 00 00 ff 0d ad 02 c0 00 00 00 ff 0d ad 01 c0 00 00 00 ff 00 00 0e \
         02 02 c0 00 00 00 ff ff ff ff 07 0b",
    );
    wire.push_str(&hex::encode("moq-lite-rs"));
    let client = ClientSetupCompat {
        versions: vec![Version::Lite02.code(), Version::Lite01.code(), 0xff00_000e],
        params: vec![
            (2, CompatParam::Varint(4_294_967_295)),
            (7, CompatParam::Bytes(Bytes::from_static(b"moq-lite-rs"))),
        ],
    };
    check_client_compat(&wire, &client);

    let server = ServerSetupCompat {
        version: Version::Lite02.code(),
        params: vec![],
    };
    check(
        &bytes("21 00 09 c0 00 00 00 ff 0d ad 02 00"),
        Version::Lite02,
        &server,
    );
    assert_eq!(Version::from_code(server.version), Some(Version::Lite02));
}

#[test]
fn appendix_a_1_6_group_stream_example() {
    // `00 | 02 05 07 | 03 'a' 'b' 'c' | 00` = type Group, GROUP(sub 5, seq 7), frame "abc", empty frame.
    for version in [Version::Lite01, Version::Lite02] {
        check_group_stream(
            "00 02 05 07 03 61 62 63 00",
            version,
            &GroupHeader {
                subscribe_id: 5,
                sequence: 7,
                frame_start: 0,
            },
            &[
                (
                    FrameHeader {
                        timestamp_delta: 0,
                        size: 3,
                    },
                    b"abc",
                ),
                (
                    FrameHeader {
                        timestamp_delta: 0,
                        size: 0,
                    },
                    b"",
                ),
            ],
        );
    }
}
