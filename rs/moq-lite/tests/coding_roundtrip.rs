//! `decode(encode(v)) == v` for arbitrary values of every message, in every version where the
//! message exists, with values generated to be valid for that version.

use std::collections::HashSet;
use std::fmt::Debug;

use bytes::Bytes;
use moq_lite::coding::*;
use moq_lite::{Cost, Path, Version};
use proptest::prelude::*;

/// Encode, decode back, and check nothing is left; with trailing bytes appended, a framed
/// message must still stop at its own end.
fn roundtrip<T: Encode + Decode + PartialEq + Debug>(
    value: &T,
    version: Version,
) -> Result<(), TestCaseError> {
    let encoded = value.encode_to_vec(version);
    let mut buf = &encoded[..];
    prop_assert_eq!(
        &T::decode(&mut buf, version).map_err(|e| TestCaseError::fail(e.to_string()))?,
        value
    );
    prop_assert!(buf.is_empty());

    let mut padded = encoded.clone();
    padded.extend_from_slice(&[0xff, 0x00]);
    let mut buf = &padded[..];
    prop_assert_eq!(
        &T::decode(&mut buf, version).map_err(|e| TestCaseError::fail(e.to_string()))?,
        value
    );
    prop_assert_eq!(buf, &[0xff, 0x00][..]);
    Ok(())
}

fn version() -> impl Strategy<Value = Version> {
    prop::sample::select(Version::ALL.to_vec())
}

fn versions(from: Version) -> impl Strategy<Value = Version> {
    prop::sample::select(
        Version::ALL
            .into_iter()
            .filter(|v| *v >= from)
            .collect::<Vec<_>>(),
    )
}

fn compat_version() -> impl Strategy<Value = Version> {
    prop::sample::select(vec![Version::Lite01, Version::Lite02])
}

fn varint() -> impl Strategy<Value = u64> {
    prop_oneof![0..64u64, 0..=MAX_VARINT]
}

/// A group sequence that can be +1 encoded.
fn group() -> impl Strategy<Value = Option<u64>> {
    prop::option::of(prop_oneof![0..100u64, 0..MAX_VARINT])
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,99}"
}

/// 1..5 short segments.
fn broadcast() -> impl Strategy<Value = Path> {
    prop::collection::vec("[a-zA-Z0-9._-]{1,8}", 1..5)
        .prop_map(|s| Path::new(&s.join("/")).unwrap())
}

/// Like [`broadcast`], but may also be the root.
fn prefix() -> impl Strategy<Value = Path> {
    prop_oneof![1 => Just(Path::ROOT), 4 => broadcast()]
}

fn hops() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(varint(), 0..=MAX_HOPS as usize)
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

/// Keep the first occurrence of each key.
fn dedup<T>(params: Vec<(u64, T)>) -> Vec<(u64, T)> {
    let mut seen = HashSet::new();
    params
        .into_iter()
        .filter(|(k, _)| seen.insert(*k))
        .collect()
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        prop::option::of(prop::sample::select(vec![
            ProbeLevel::None,
            ProbeLevel::Report,
            ProbeLevel::Increase,
        ])),
        prop::option::of("[ -~]{1,99}"),
        prop::option::of(prop::sample::select(vec![
            Role::Both,
            Role::Publisher,
            Role::Subscriber,
        ])),
        prop::option::of(varint()),
        prop::option::of(1..=MAX_VARINT),
    )
        .prop_map(|(probe, path, role, cost, origin)| Setup {
            probe,
            path,
            role,
            cost,
            origin,
        })
}

fn client_compat() -> impl Strategy<Value = ClientSetupCompat> {
    let param = (varint(), varint(), bytes(100)).prop_map(|(key, v, b)| match key % 2 {
        0 => (key, CompatParam::Varint(v)),
        _ => (key, CompatParam::Bytes(b)),
    });
    (
        prop::collection::vec(varint(), 0..=MAX_VERSIONS as usize),
        prop::collection::vec(param, 0..20),
    )
        .prop_map(|(versions, params)| ClientSetupCompat {
            versions,
            params: dedup(params),
        })
}

fn server_compat() -> impl Strategy<Value = ServerSetupCompat> {
    let code = prop_oneof![version().prop_map(Version::code), varint()];
    (
        code,
        prop::collection::vec((varint(), varint(), bytes(100)), 0..20),
    )
        .prop_map(|(version, params)| {
            let lite = Version::from_code(version).is_some();
            let params = params
                .into_iter()
                .map(|(id, v, b)| match lite || id % 2 == 1 {
                    true => (id, b),
                    // IETF style: an even key's value is one varint, kept in its minimal form.
                    false => {
                        let mut buf = Vec::new();
                        put_varint(&mut buf, v);
                        (id, Bytes::from(buf))
                    }
                })
                .collect();
            ServerSetupCompat {
                version,
                params: dedup(params),
            }
        })
}

fn announce(version: Version) -> impl Strategy<Value = Announce> {
    let statuses = match version {
        Version::Lite05 => vec![
            AnnounceStatus::Ended,
            AnnounceStatus::Active,
            AnnounceStatus::Restart,
        ],
        _ => vec![AnnounceStatus::Ended, AnnounceStatus::Active],
    };
    (prop::sample::select(statuses), prefix(), hops()).prop_map(move |(status, suffix, hops)| {
        let hops = match version {
            Version::Lite01 | Version::Lite02 => vec![],
            Version::Lite03 => vec![0; hops.len()],
            Version::Lite04 | Version::Lite05 | Version::Lite06 => hops,
        };
        Announce {
            status,
            suffix,
            hops,
        }
    })
}

/// The lite-06 form of preferences: no Ordered byte, `Some(0)` without a frame offset is no
/// floor (`None`), frame bounds only with the group they qualify; older versions carry no bounds.
fn canonical_prefs(
    version: Version,
    ordered: &mut bool,
    (start_group, start_frame): (&mut Option<u64>, &mut u64),
    (end_group, end_frame): (&mut Option<u64>, &mut Option<u64>),
) {
    if !version.is_lite06() {
        (*start_frame, *end_frame) = (0, None);
        return;
    }
    *ordered = false;
    if start_group.is_none() {
        *start_frame = 0;
    }
    if *start_group == Some(0) && *start_frame == 0 {
        *start_group = None;
    }
    if end_group.is_none() {
        *end_frame = None;
    }
}

fn announce_message() -> impl Strategy<Value = AnnounceMessage> {
    let cost = || (varint(), varint()).prop_map(|(warm, cold)| Cost { warm, cold });
    prop_oneof![
        (prefix(), hops(), cost()).prop_map(|(suffix, hops, cost)| AnnounceMessage::Start {
            suffix,
            hops,
            cost
        }),
        varint().prop_map(|id| AnnounceMessage::End { id }),
        (varint(), hops(), cost()).prop_map(|(id, hops, cost)| AnnounceMessage::Update {
            id,
            hops,
            cost
        }),
        varint()
            .prop_map(|kind| kind.max(3))
            .prop_map(|kind| AnnounceMessage::Unknown { kind }),
    ]
}

fn subscribe(version: Version) -> impl Strategy<Value = Subscribe> {
    (
        (varint(), broadcast(), text(), any::<u8>()),
        (any::<bool>(), varint(), group(), group()),
        (varint(), group()),
    )
        .prop_map(
            move |(
                (id, broadcast, track, priority),
                (ordered, max_latency_ms, start_group, end_group),
                (start_frame, end_frame),
            )| {
                let mut sub = Subscribe {
                    id,
                    broadcast,
                    track,
                    priority,
                    ordered,
                    max_latency_ms,
                    start_group,
                    end_group,
                    start_frame,
                    end_frame,
                };
                canonical_prefs(
                    version,
                    &mut sub.ordered,
                    (&mut sub.start_group, &mut sub.start_frame),
                    (&mut sub.end_group, &mut sub.end_frame),
                );
                if version < Version::Lite03 {
                    (
                        sub.ordered,
                        sub.max_latency_ms,
                        sub.start_group,
                        sub.end_group,
                    ) = (false, 0, None, None);
                }
                sub
            },
        )
}

fn subscribe_update(version: Version) -> impl Strategy<Value = SubscribeUpdate> {
    (
        (any::<u8>(), any::<bool>(), varint(), group(), group()),
        (varint(), group()),
    )
        .prop_map(
            move |((priority, ordered, max_latency_ms, start_group, end_group), (sf, ef))| {
                let mut update = SubscribeUpdate {
                    priority,
                    ordered,
                    max_latency_ms,
                    start_group,
                    end_group,
                    start_frame: sf,
                    end_frame: ef,
                };
                canonical_prefs(
                    version,
                    &mut update.ordered,
                    (&mut update.start_group, &mut update.start_frame),
                    (&mut update.end_group, &mut update.end_frame),
                );
                update
            },
        )
}

fn subscribe_response(version: Version) -> BoxedStrategy<SubscribeResponse> {
    let drop = (varint(), varint(), varint()).prop_map(|(start, end, error_code)| {
        SubscribeResponse::Drop {
            start,
            end,
            error_code,
        }
    });
    match version {
        Version::Lite01 => any::<u8>()
            .prop_map(|priority| SubscribeResponse::OkLegacy { priority })
            .boxed(),
        Version::Lite02 => Just(SubscribeResponse::OkLegacy { priority: 0 }).boxed(),
        Version::Lite03 | Version::Lite04 => {
            let ok = subscribe_update(version).prop_map(|u| SubscribeResponse::Ok {
                priority: u.priority,
                ordered: u.ordered,
                max_latency_ms: u.max_latency_ms,
                start_group: u.start_group,
                end_group: u.end_group,
            });
            prop_oneof![ok, drop].boxed()
        }
        Version::Lite05 | Version::Lite06 => prop_oneof![
            varint().prop_map(|group| SubscribeResponse::Start { group }),
            varint().prop_map(|group| SubscribeResponse::End { group }),
            drop,
        ]
        .boxed(),
    }
}

fn datagram() -> impl Strategy<Value = Datagram> {
    (varint(), varint(), varint(), 0..=MAX_DATAGRAM_SIZE - 24).prop_flat_map(
        |(subscribe_id, group, timestamp, max)| {
            bytes(max + 1).prop_map(move |payload| Datagram {
                subscribe_id,
                group,
                timestamp,
                payload,
            })
        },
    )
}

proptest! {
    #[test]
    fn setup_lite05(value in setup()) {
        roundtrip(&value, Version::Lite05)?;
    }

    #[test]
    fn client_setup_compat(value in client_compat()) {
        // `encode` writes the 0x20 tag, `decode` starts after it.
        let encoded = value.encode_to_vec(Version::Lite02);
        prop_assert_eq!(encoded[0], 0x20);
        let mut buf = &encoded[1..];
        prop_assert_eq!(ClientSetupCompat::decode(&mut buf, Version::Lite02), Ok(value));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn server_setup_compat(value in server_compat(), version in compat_version()) {
        roundtrip(&value, version)?;
    }

    #[test]
    fn session_info(bitrate in varint(), version in compat_version()) {
        roundtrip(&SessionInfo { bitrate }, version)?;
    }

    #[test]
    fn announce_request(prefix in prefix(), hop in varint(), version in version()) {
        let exclude_hop = if matches!(version, Version::Lite04 | Version::Lite05) { hop } else { 0 };
        roundtrip(&AnnounceRequest { prefix, exclude_hop }, version)?;
    }

    #[test]
    fn announce_ok(hop_id in varint(), active_count in varint()) {
        roundtrip(&AnnounceOk { hop_id, active_count }, Version::Lite05)?;
    }

    #[test]
    fn announce_init(suffixes in prop::collection::vec(prefix(), 0..20), version in compat_version()) {
        roundtrip(&AnnounceInit { suffixes }, version)?;
    }

    #[test]
    fn announce_msg((version, value) in version().prop_filter("lite-06 has typed announcements", |v| !v.is_lite06()).prop_flat_map(|v| (Just(v), announce(v)))) {
        roundtrip(&value, version)?;
    }

    #[test]
    fn announce_message_06(value in announce_message()) {
        roundtrip(&value, Version::Lite06)?;
    }

    #[test]
    fn subscribe_msg((version, value) in version().prop_flat_map(|v| (Just(v), subscribe(v)))) {
        roundtrip(&value, version)?;
    }

    #[test]
    fn subscribe_update_msg((version, value) in versions(Version::Lite03).prop_flat_map(|v| (Just(v), subscribe_update(v)))) {
        roundtrip(&value, version)?;
    }

    #[test]
    fn subscribe_response_msg((version, value) in version().prop_flat_map(|v| (Just(v), subscribe_response(v)))) {
        prop_assert!(value.allowed(version));
        roundtrip(&value, version)?;
    }

    #[test]
    fn track_request(broadcast in broadcast(), track in text()) {
        roundtrip(&TrackRequest { broadcast, track }, Version::Lite05)?;
    }

    #[test]
    fn track_info(priority in any::<u8>(), ordered in any::<bool>(), max_latency_ms in varint(), timescale in 1..=MAX_VARINT) {
        roundtrip(&TrackInfo { priority, ordered, max_latency_ms, timescale }, Version::Lite05)?;
        roundtrip(&TrackInfo { priority, ordered: false, max_latency_ms, timescale }, Version::Lite06)?;
    }

    #[test]
    fn fetch(broadcast in broadcast(), track in text(), priority in any::<u8>(), group in varint(), start_frame in varint(), len in proptest::option::of(0..1000u64)) {
        roundtrip(&Fetch { broadcast: broadcast.clone(), track: track.clone(), priority, group, start_frame: 0, end_frame: None }, Version::Lite05)?;
        let end_frame = len.map(|n| start_frame.saturating_add(n).min(MAX_VARINT - 1));
        roundtrip(&Fetch { broadcast, track, priority, group, start_frame, end_frame }, Version::Lite06)?;
    }

    #[test]
    fn probe(bitrate in varint(), rtt in varint(), version in versions(Version::Lite03)) {
        let rtt_ms = if version >= Version::Lite04 { rtt } else { 0 };
        roundtrip(&Probe { bitrate, rtt_ms }, version)?;
    }

    #[test]
    fn goaway(uri in text(), version in versions(Version::Lite04)) {
        roundtrip(&Goaway { uri }, version)?;
    }

    #[test]
    fn group_header(subscribe_id in varint(), sequence in varint(), frame_start in varint(), version in version()) {
        let frame_start = if version.is_lite06() { frame_start } else { 0 };
        roundtrip(&GroupHeader { subscribe_id, sequence, frame_start }, version)?;
    }

    #[test]
    fn frame_header(delta in -MAX_ZIGZAG..=MAX_ZIGZAG, size in 0..=MAX_FRAME_SIZE, version in version()) {
        let timestamp_delta = if version >= Version::Lite05 { delta } else { 0 };
        roundtrip(&FrameHeader { timestamp_delta, size }, version)?;
    }

    #[test]
    fn datagram_lite05(value in datagram()) {
        // No length: the payload runs to the end, so no trailing bytes here.
        let encoded = value.encode_to_vec(Version::Lite05);
        prop_assert!(encoded.len() <= MAX_DATAGRAM_SIZE);
        prop_assert_eq!(Datagram::decode(&mut &encoded[..], Version::Lite05), Ok(value));
    }

    #[test]
    fn zigzag(v in -MAX_ZIGZAG..=MAX_ZIGZAG) {
        let u = zigzag_encode(v);
        prop_assert!(u <= MAX_VARINT);
        prop_assert_eq!(zigzag_decode(u), v);
    }

    #[test]
    fn varint_minimal(v in 0..=MAX_VARINT) {
        let mut buf = Vec::new();
        put_varint(&mut buf, v);
        prop_assert_eq!(buf.len(), varint_len(v));
        prop_assert_eq!(get_varint(&mut &buf[..]), Ok(v));
    }
}
