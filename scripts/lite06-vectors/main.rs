//! Prints lite-06 byte vectors, encoded by the reference's own Rust encoder (moq-net 0.3.18, the
//! protocol crate of moq-relay 0.17.10), as JSON in the layout of testdata/moq-lite-vectors.json.
//! Run through gen.sh, which builds it against a copy of that crate; never part of the product.

use std::time::Duration;

use moq_net::coding::Encode;
use moq_net::lite::{self, Version};
use moq_net::origin::Cost;
use moq_net::{Hop, Hops, Path, Timescale};
use serde_json::{json, Value};

const V: Version = Version::Lite06;

fn hops(ids: &[u64]) -> Hops {
    let mut hops = Hops::new();
    for id in ids {
        hops.push(Hop::new(*id).unwrap()).unwrap();
    }
    hops
}

fn case<T: Encode<Version>>(cases: &mut Vec<Value>, message: &str, fields: Value, msg: T) {
    let mut buf = Vec::new();
    msg.encode(&mut buf, V).unwrap();
    cases.push(json!({ "message": message, "version": "DRAFT_06", "fields": fields, "hex": hex::encode(buf) }));
}

fn announce_start(cases: &mut Vec<Value>, suffix: &str, ids: &[u64], warm: u64, cold: u64) {
    case(
        cases,
        "ANNOUNCE_START",
        json!({ "suffix": suffix, "hops": ids, "cost_warm": warm, "cost_cold": cold }),
        lite::AnnounceBroadcast::Active {
            suffix: lite::PathRef::literal(Path::new(suffix)),
            hops: lite::HopsRef::literal(hops(ids)),
            cost: Cost { warm, cold },
        },
    );
}

#[allow(clippy::too_many_arguments)]
fn subscribe(
    cases: &mut Vec<Value>,
    id: u64,
    broadcast: &str,
    track: &str,
    priority: u8,
    max_age_ms: u64,
    start_group: Option<u64>,
    end_group: Option<u64>,
    start_frame: u64,
    end_frame: Option<u64>,
) {
    case(
        cases,
        "SUBSCRIBE",
        json!({ "subscribe_id": id, "broadcast": broadcast, "track": track, "priority": priority,
                "max_age_ms": max_age_ms, "start_group": start_group, "end_group": end_group,
                "start_frame": start_frame, "end_frame": end_frame }),
        lite::Subscribe {
            id,
            broadcast: Path::new(broadcast),
            track: track.into(),
            priority,
            max_age: Duration::from_millis(max_age_ms),
            start_group,
            end_group,
            start_frame,
            end_frame,
        },
    );
}

fn main() {
    let mut cases = Vec::new();
    let c = &mut cases;

    // SETUP (stream type 0x1 not included).
    let setup = |probe, path: Option<&str>, role, cost, hop: Option<u64>| lite::Setup {
        probe,
        path: path.map(str::to_string),
        role,
        cost,
        hop: hop.map(|h| Hop::new(h).unwrap()),
    };
    case(c, "SETUP", json!({}), setup(lite::ProbeLevel::None, None, None, None, None));
    case(c, "SETUP", json!({ "cost": 5 }), setup(lite::ProbeLevel::None, None, None, Some(5), None));
    case(c, "SETUP", json!({ "hop": 12345 }), setup(lite::ProbeLevel::None, None, None, None, Some(12345)));
    case(c, "SETUP", json!({ "cost": 100 }), setup(lite::ProbeLevel::None, None, None, Some(100), None));

    case(c, "ANNOUNCE_REQUEST", json!({ "prefix": "anon" }), lite::AnnounceRequest { prefix: Path::new("anon"), exclude_hop: 42, hidden: false });
    case(c, "ANNOUNCE_REQUEST", json!({ "prefix": "" }), lite::AnnounceRequest { prefix: Path::new(""), exclude_hop: 0, hidden: false });
    case(c, "ANNOUNCE_OK", json!({ "hop_id": 12345, "active_count": 1 }), lite::AnnounceOk { origin: Hop::new(12345).unwrap(), active: 1 });

    announce_start(c, "bbb", &[7], 1, 1);
    announce_start(c, "bbb", &[], 0, 0);
    announce_start(c, "room/alice.hang", &[7, 300, 70000], 12, 30);
    announce_start(c, "", &[1], 4611686018427387903, 4611686018427387903);
    case(c, "ANNOUNCE_END", json!({ "id": 0 }), lite::AnnounceBroadcast::EndedId { id: 0 });
    case(c, "ANNOUNCE_END", json!({ "id": 300 }), lite::AnnounceBroadcast::EndedId { id: 300 });
    case(
        c,
        "ANNOUNCE_UPDATE",
        json!({ "id": 2, "hops": [9, 7], "cost_warm": 0, "cost_cold": 3 }),
        lite::AnnounceBroadcast::Restart { id: 2, hops: lite::HopsRef::literal(hops(&[9, 7])), cost: Cost { warm: 0, cold: 3 } },
    );

    subscribe(c, 0, "anon/bbb", "video", 60, 0, None, None, 0, None);
    subscribe(c, 7, "room/alice.hang", "catalog.json", 100, 30000, Some(10), Some(20), 0, None);
    subscribe(c, 1, "anon/bbb", "video", 60, 500, Some(5), Some(9), 15, Some(3));
    subscribe(c, 2, "anon/bbb", "audio", 80, 0, Some(0), None, 4, None);

    let update = |priority, max_age_ms, start_group, end_group, start_frame, end_frame| lite::SubscribeUpdate {
        priority,
        max_age: Duration::from_millis(max_age_ms),
        start_group,
        end_group,
        start_frame,
        end_frame,
    };
    case(c, "SUBSCRIBE_UPDATE", json!({ "priority": 80, "max_age_ms": 500, "start_group": 10, "end_group": null, "start_frame": 0, "end_frame": null }), update(80, 500, Some(10), None, 0, None));
    case(c, "SUBSCRIBE_UPDATE", json!({ "priority": 1, "max_age_ms": 0, "start_group": null, "end_group": 7, "start_frame": 0, "end_frame": 2 }), update(1, 0, None, Some(7), 0, Some(2)));

    case(c, "SUBSCRIBE_START", json!({ "group": 5 }), lite::SubscribeResponse::Start(lite::SubscribeStart { group: 5 }));
    case(c, "SUBSCRIBE_END", json!({ "group": 9 }), lite::SubscribeResponse::End(lite::SubscribeEnd { group: 9, streams: 0 }));
    case(c, "SUBSCRIBE_DROP", json!({ "start": 6, "end": 7, "error_code": 0 }), lite::SubscribeResponse::Drop(lite::SubscribeDrop { start: 6, end: 7, error: 0 }));

    case(c, "TRACK", json!({ "broadcast": "anon/bbb", "track": "video" }), lite::Track { broadcast: Path::new("anon/bbb"), track: "video".into() });
    let info = |priority, ms, timescale| lite::TrackInfo { priority, max_age: Duration::from_millis(ms), timescale: Timescale::new(timescale).unwrap() };
    case(c, "TRACK_INFO", json!({ "priority": 0, "max_age_ms": 30000, "timescale": 1000000 }), info(0, 30000, 1_000_000));
    case(c, "TRACK_INFO", json!({ "priority": 0, "max_age_ms": 5000, "timescale": 1000 }), info(0, 5000, 1000));

    let fetch = |group, start_frame, end_frame| lite::Fetch { broadcast: Path::new("anon/bbb"), track: "video".into(), priority: 60, group, start_frame, end_frame };
    case(c, "FETCH", json!({ "broadcast": "anon/bbb", "track": "video", "priority": 60, "group": 5, "start_frame": 0, "end_frame": null }), fetch(5, 0, None));
    case(c, "FETCH", json!({ "broadcast": "anon/bbb", "track": "video", "priority": 60, "group": 5, "start_frame": 2, "end_frame": 4 }), fetch(5, 2, Some(4)));

    case(c, "GROUP", json!({ "subscribe_id": 0, "sequence": 5, "frame_start": 0 }), lite::Group { subscribe: 0, sequence: 5, frame_start: 0 });
    case(c, "GROUP", json!({ "subscribe_id": 300, "sequence": 70000, "frame_start": 15 }), lite::Group { subscribe: 300, sequence: 70000, frame_start: 15 });

    case(c, "PROBE", json!({ "bitrate": 2500000, "rtt_ms": 40 }), lite::Probe { bitrate: Some(2_500_000), rtt: Some(40) });
    case(c, "GOAWAY", json!({ "uri": "" }), lite::Goaway { uri: "".into() });

    let doc = json!({
        "about": "moq-lite-06 message bodies (length prefix included, stream-type byte excluded) as moq-relay 0.17.10 puts them on the wire: encoded by its protocol crate, moq-net 0.3.18 (crates.io), with scripts/lite06-vectors/gen.sh. 'fields' lists what is on the wire; null = absent (encoded as 0 where the field is +1 encoded). lite-06 SUBSCRIBE 'start_group' is raw (0 = no floor: null and 0 with start_frame 0 are the same bytes); announce ids are implicit (n-th ANNOUNCE_START = id n).",
        "cases": cases,
    });
    println!("{}", serde_json::to_string_pretty(&doc).unwrap());
}
