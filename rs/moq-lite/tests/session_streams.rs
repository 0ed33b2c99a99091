//! The publisher side of every lite-05 stream, checked byte by byte from a hand-driven peer:
//! announce (OK, hops, restart, ended), track info, subscribe (start, update, end, FIN),
//! fetch, probe and goaway.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use moq_lite::coding::{
    Announce, AnnounceOk, AnnounceRequest, AnnounceStatus, BiStreamType, Fetch, FrameHeader,
    Goaway, GroupHeader, Probe, Subscribe, SubscribeResponse, SubscribeUpdate,
    TrackInfo as WireTrackInfo, TrackRequest, UniStreamType,
};
use moq_lite::{BroadcastProducer, Track, TrackInfo, Version};

#[tokio::test]
async fn announce_ok_snapshot_hops_restart_and_end() {
    let relay = relay(&[]);
    let first = BroadcastProducer::new();
    relay
        .origin
        .publish_with_hops(&path("room/a"), first.consume(), vec![7])
        .unwrap();
    let peer = raw_peer(&relay).await;
    let (_send, mut wire) = open(
        &peer,
        BiStreamType::Announce,
        &AnnounceRequest {
            prefix: path("room"),
            exclude_hop: 42,
        },
    )
    .await;

    let ok: AnnounceOk = wire.next().await;
    assert_eq!(
        ok,
        AnnounceOk {
            hop_id: 1000,
            active_count: 1
        }
    );
    let a: Announce = wire.next().await;
    assert_eq!(
        a,
        Announce {
            status: AnnounceStatus::Active,
            suffix: path("a"),
            hops: vec![7]
        }
    );

    // Excluded: a broadcast whose chain contains the subscriber's own hop is not announced.
    let looped = BroadcastProducer::new();
    relay
        .origin
        .publish_with_hops(&path("room/loop"), looped.consume(), vec![42])
        .unwrap();
    // A replacement at the same path is a second active (restart) on lite-05.
    let second = BroadcastProducer::new();
    relay
        .origin
        .publish_broadcast(&path("room/a"), second.consume())
        .unwrap();
    let restart: Announce = wire.next().await;
    assert_eq!(
        restart,
        Announce {
            status: AnnounceStatus::Active,
            suffix: path("a"),
            hops: vec![]
        }
    );
    // Both gone → ended.
    drop((first, second));
    let ended: Announce = wire.next().await;
    assert_eq!(
        ended,
        Announce {
            status: AnnounceStatus::Ended,
            suffix: path("a"),
            hops: vec![]
        }
    );
}

#[tokio::test]
async fn track_info_then_subscribe_start_update_end_and_fin() {
    let relay = relay(&[]);
    let broadcast = BroadcastProducer::new();
    let info = TrackInfo {
        priority: 3,
        ordered: false,
        max_latency: Duration::from_secs(30),
        timescale: 1_000_000,
    };
    let track = broadcast.create_track(Track::new("video"), info);
    relay
        .origin
        .publish_broadcast(&path("live"), broadcast.consume())
        .unwrap();
    write_group(&track, 2, 4); // group 0
    let peer = raw_peer(&relay).await;

    // TRACK → exactly one TRACK_INFO, then FIN (spec §5.10).
    let request = TrackRequest {
        broadcast: path("live"),
        track: "video".into(),
    };
    let (_tsend, mut twire) = open(&peer, BiStreamType::Track, &request).await;
    let got: WireTrackInfo = twire.next().await;
    assert_eq!(
        got,
        WireTrackInfo {
            priority: 3,
            ordered: false,
            max_latency_ms: 30_000,
            timescale: 1_000_000
        }
    );
    twire.finished().await;

    // SUBSCRIBE → SUBSCRIBE_OK(start = latest group), then the group on its own uni stream.
    let (mut send, mut wire) = open(
        &peer,
        BiStreamType::Subscribe,
        &subscribe(9, "live", "video"),
    )
    .await;
    assert_eq!(
        wire.next::<SubscribeResponse>().await,
        SubscribeResponse::Start { group: 0 }
    );
    let mut group = Wire::new(
        tokio::time::timeout(TIMEOUT, peer.accept_uni())
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(group.bytes(1).await, [UniStreamType::Group.id() as u8]);
    assert_eq!(
        group.next::<GroupHeader>().await,
        GroupHeader {
            subscribe_id: 9,
            sequence: 0,
            frame_start: 0,
        }
    );
    // Timestamps 0 and 1: deltas from 0, then +1.
    assert_eq!(
        group.next::<FrameHeader>().await,
        FrameHeader {
            timestamp_delta: 0,
            size: 4
        }
    );
    group.bytes(4).await;
    assert_eq!(
        group.next::<FrameHeader>().await,
        FrameHeader {
            timestamp_delta: 1,
            size: 4
        }
    );
    group.bytes(4).await;
    group.finished().await;

    // SUBSCRIBE_UPDATE caps the subscription at group 1: group 2 is not served and END says 2.
    // It also raises the priority, which the publisher passes on to the track as soon as it has
    // applied the update: that is the event to wait for before writing groups 1 and 2.
    let before = track.requested_priority();
    assert!(before < 9, "requested priority {before} before the update");
    let update = SubscribeUpdate {
        priority: 9,
        ordered: false,
        max_latency_ms: 0,
        start_group: None,
        end_group: Some(1),
        start_frame: 0,
        end_frame: None,
    };
    use moq_lite::coding::Encode;
    send.write_all(&update.encode_to_vec(Version::Lite05))
        .await
        .unwrap();
    let raised = tokio::time::timeout(TIMEOUT, track.priority_raised(before))
        .await
        .expect("the publisher never applied the SUBSCRIBE_UPDATE");
    assert_eq!(raised, 9);
    write_group(&track, 1, 4); // group 1: served
    let mut g1 = Wire::new(
        tokio::time::timeout(TIMEOUT, peer.accept_uni())
            .await
            .unwrap()
            .unwrap(),
    );
    g1.bytes(1).await;
    assert_eq!(g1.next::<GroupHeader>().await.sequence, 1);
    write_group(&track, 1, 4); // group 2: beyond the end
    assert_eq!(
        wire.next::<SubscribeResponse>().await,
        SubscribeResponse::End { group: 2 }
    );
    wire.finished().await;
}

#[tokio::test]
async fn subscribe_end_when_the_track_finishes() {
    let relay = relay(&[]);
    let broadcast = BroadcastProducer::new();
    let track = broadcast.create_track(Track::new("t"), TrackInfo::default());
    relay
        .origin
        .publish_broadcast(&path("live"), broadcast.consume())
        .unwrap();
    write_group(&track, 1, 1);
    let peer = raw_peer(&relay).await;
    let (_send, mut wire) = open(&peer, BiStreamType::Subscribe, &subscribe(0, "live", "t")).await;
    assert_eq!(
        wire.next::<SubscribeResponse>().await,
        SubscribeResponse::Start { group: 0 }
    );
    track.finish();
    assert_eq!(
        wire.next::<SubscribeResponse>().await,
        SubscribeResponse::End { group: 1 }
    );
    wire.finished().await;
}

#[tokio::test]
async fn fetch_returns_one_cached_group_as_bare_frames() {
    let relay = relay(&[]);
    let broadcast = BroadcastProducer::new();
    let track = broadcast.create_track(Track::new("t"), TrackInfo::default());
    relay
        .origin
        .publish_broadcast(&path("live"), broadcast.consume())
        .unwrap();
    for n in 0..3u64 {
        let mut group = track.append_group().unwrap();
        group
            .write_frame(100 + n, Bytes::from(format!("g{n}a")))
            .unwrap();
        group
            .write_frame(105 + n, Bytes::from(format!("g{n}b")))
            .unwrap();
        group.finish();
    }
    let peer = raw_peer(&relay).await;
    let fetch = Fetch {
        broadcast: path("live"),
        track: "t".into(),
        priority: 0,
        group: 1,
        start_frame: 0,
        end_frame: None,
    };
    let (_send, mut wire) = open(&peer, BiStreamType::Fetch, &fetch).await;
    assert_eq!(
        wire.next::<FrameHeader>().await,
        FrameHeader {
            timestamp_delta: 101,
            size: 3
        }
    );
    assert_eq!(wire.bytes(3).await, b"g1a");
    assert_eq!(
        wire.next::<FrameHeader>().await,
        FrameHeader {
            timestamp_delta: 5,
            size: 3
        }
    );
    assert_eq!(wire.bytes(3).await, b"g1b");
    wire.finished().await;

    // A group that is not cached → reset with code 13.
    let missing = Fetch { group: 99, ..fetch };
    let (_send, mut wire) = open(&peer, BiStreamType::Fetch, &missing).await;
    let err = wire.recv.read_chunk(16, true).await.unwrap_err();
    assert!(err.to_string().contains("13"), "{err}");
}

#[tokio::test]
async fn probe_reports_bitrate_and_rtt_and_goaway_is_accepted() {
    let relay = relay(&[]);
    let peer = raw_peer(&relay).await;
    let (mut send, mut wire) = {
        let (mut send, recv) = peer.open_bi().await.unwrap();
        send.write_all(&[BiStreamType::Probe.id() as u8])
            .await
            .unwrap();
        (send, Wire::new(recv))
    };
    let probe: Probe = wire.next().await;
    assert!(probe.bitrate > 0 && probe.rtt_ms > 0, "{probe:?}");
    send.finish().unwrap();

    let (_gsend, mut gwire) =
        open(&peer, BiStreamType::Goaway, &Goaway { uri: String::new() }).await;
    gwire.finished().await;
    assert!(peer.close_reason().is_none());
}

/// A relay shares one upstream subscription between viewers and raises its priority and max
/// latency with SUBSCRIBE_UPDATE when a viewer asks for more (the aggregate is the maximum).
#[tokio::test]
async fn upstream_subscription_is_shared_and_its_priority_raised() {
    use moq_lite::{Client, OriginProducer};
    let relay = relay(&[]);
    let publisher = raw_peer(&relay).await;
    // The relay asks us for announcements: answer ANNOUNCE_OK + one live broadcast.
    let (mut asend, arecv) = tokio::time::timeout(TIMEOUT, publisher.accept_bi())
        .await
        .unwrap()
        .unwrap();
    let mut awire = Wire::new(arecv);
    assert_eq!(awire.bytes(1).await, [BiStreamType::Announce.id() as u8]);
    let request: AnnounceRequest = awire.next().await;
    assert_eq!(request.exclude_hop, 1000, "the relay excludes its own hop");
    use moq_lite::coding::Encode;
    let mut reply = AnnounceOk {
        hop_id: 77,
        active_count: 1,
    }
    .encode_to_vec(Version::Lite05);
    reply.extend(
        Announce {
            status: AnnounceStatus::Active,
            suffix: path("cam"),
            hops: vec![],
        }
        .encode_to_vec(Version::Lite05),
    );
    asend.write_all(&reply).await.unwrap();

    // Two viewers subscribe to the same track with priorities 10 and 50.
    let mut viewers = Vec::new();
    let mut consumers = Vec::new();
    for priority in [10u8, 50] {
        let origin = OriginProducer::new();
        let session = relay
            .connect(
                Via::WebTransport,
                &[],
                Client::new().subscribe(origin.clone()),
            )
            .await;
        let remote =
            tokio::time::timeout(TIMEOUT, origin.consume().wait_for_broadcast(&path("cam")))
                .await
                .unwrap()
                .unwrap();
        let consumer = remote.subscribe_track(&Track::new("video").with_priority(priority));
        // Each viewer's max latency: the upstream subscription carries the longest.
        consumer.request_max_latency(Duration::from_millis(if priority == 10 {
            300
        } else {
            800
        }));
        consumers.push(consumer);
        viewers.push(session);
        if priority == 10 {
            // Upstream: TRACK → TRACK_INFO, then SUBSCRIBE with the first viewer's priority.
            let (mut tsend, trecv) = tokio::time::timeout(TIMEOUT, publisher.accept_bi())
                .await
                .unwrap()
                .unwrap();
            let mut twire = Wire::new(trecv);
            assert_eq!(twire.bytes(1).await, [BiStreamType::Track.id() as u8]);
            let track: TrackRequest = twire.next().await;
            assert_eq!(
                (track.broadcast, track.track.as_str()),
                (path("cam"), "video")
            );
            tsend
                .write_all(&[0x06, 0x00, 0x00, 0x53, 0x88, 0x43, 0xe8])
                .await
                .unwrap();
            tsend.finish().unwrap();
        }
    }
    let (_ssend, srecv) = tokio::time::timeout(TIMEOUT, publisher.accept_bi())
        .await
        .unwrap()
        .unwrap();
    let mut swire = Wire::new(srecv);
    assert_eq!(swire.bytes(1).await, [BiStreamType::Subscribe.id() as u8]);
    let sub: Subscribe = swire.next().await;
    assert_eq!((sub.broadcast, sub.track.as_str()), (path("cam"), "video"));
    let (mut priority, mut latency) = (sub.priority, sub.max_latency_ms);
    while priority < 50 || latency < 800 {
        let update: SubscribeUpdate = swire.next().await;
        (priority, latency) = (update.priority, update.max_latency_ms);
    }
    assert_eq!((priority, latency), (50, 800));
    // Only one upstream subscription: no second Subscribe stream is opened. (An absence can only
    // be watched for over a window: this timeout is the check, not a wait for an event.)
    let extra = tokio::time::timeout(Duration::from_millis(300), publisher.accept_bi()).await;
    assert!(extra.is_err(), "a second upstream stream was opened");
    // The relay's metrics say the same: one upstream subscription, two viewers of cam.
    use moq_lite::Metric;
    assert_eq!(relay.stats.get(Metric::SubscriptionsUpstream), 1);
    assert_eq!(relay.stats.viewers().get("cam"), Some(&2));
    assert_eq!(relay.stats.get(Metric::Announcements), 1);
}

/// lite-01 through the compat SETUP: a client offering only lite-01 gets it, and SUBSCRIBE_OK
/// carries the priority byte (spec appendix A §1.6).
#[tokio::test]
async fn compat_setup_negotiates_lite01() {
    let relay = relay(&[]);
    let broadcast = BroadcastProducer::new();
    let track = broadcast.create_track(Track::new("t"), TrackInfo::default());
    relay
        .origin
        .publish_broadcast(&path("live"), broadcast.consume())
        .unwrap();
    write_group(&track, 1, 3);

    let native = moq_native::QuicClient::new(moq_native::QuicClientConfig {
        fingerprints: vec![relay.fingerprint.clone()],
        protocols: vec!["moql".into()],
        ..Default::default()
    })
    .unwrap();
    let url = format!("moql://localhost:{}/", relay.port).parse().unwrap();
    let peer = native.connect(url).await.unwrap().session;
    let (mut setup_send, setup_recv) = peer.open_bi().await.unwrap();
    // CLIENT_SETUP offering only lite-01, no parameters.
    setup_send
        .write_all(&[
            0x20, 0x00, 0x0a, 0x01, 0xc0, 0, 0, 0, 0xff, 0x0d, 0xad, 0x01, 0x00,
        ])
        .await
        .unwrap();
    let mut setup = Wire::new(setup_recv);
    assert_eq!(
        setup.bytes(12).await,
        [0x21, 0x00, 0x09, 0xc0, 0, 0, 0, 0xff, 0x0d, 0xad, 0x01, 0x00]
    );

    // SUBSCRIBE (lite-01 layout: id, path, track, priority) → SUBSCRIBE_OK { priority }.
    let (mut send, recv) = peer.open_bi().await.unwrap();
    send.write_all(&[
        0x02, 0x09, 0x05, 0x04, b'l', b'i', b'v', b'e', 0x01, b't', 0x3c,
    ])
    .await
    .unwrap();
    let mut wire = Wire::new(recv);
    assert_eq!(wire.bytes(2).await, [0x01, 0x3c]);
    // Then the group, with lite-01 frames (size only, no timestamp).
    let mut group = Wire::new(
        tokio::time::timeout(TIMEOUT, peer.accept_uni())
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(group.bytes(4).await, [0x00, 0x02, 0x05, 0x00]);
    assert_eq!(group.bytes(4).await, [0x03, 0, 0, 0]);
    group.finished().await;
}

/// A peer stream allowance that starts small grows as the peer uses it: 40 subscriptions held
/// open at once on a connection that allowed 4 bidirectional streams at first (the relay's
/// `--quic-initial-streams`), each served. Without the growth the 5th `open_bi` would wait for
/// credit that never comes.
#[tokio::test]
async fn a_small_initial_stream_allowance_grows_with_use() {
    let quic = moq_native::QuicConfig {
        initial_streams: 4,
        ..Default::default()
    };
    let window = moq_lite::StreamWindow {
        initial: 4,
        max_uni: 64,
        max_bidi: 64,
    };
    let relay = relay_with(&[], quic, Some(window));
    let broadcast = BroadcastProducer::new();
    let track = broadcast.create_track(Track::new("video"), TrackInfo::default());
    relay
        .origin
        .publish_broadcast(&path("live"), broadcast.consume())
        .unwrap();
    write_group(&track, 1, 4);
    let peer = raw_peer(&relay).await;

    let mut open_subscriptions = Vec::new();
    for id in 0..40 {
        let opened = tokio::time::timeout(
            TIMEOUT,
            open(
                &peer,
                BiStreamType::Subscribe,
                &subscribe(id, "live", "video"),
            ),
        )
        .await;
        let (send, mut wire) =
            opened.unwrap_or_else(|_| panic!("no stream credit for subscription {id}"));
        assert_eq!(
            wire.next::<SubscribeResponse>().await,
            SubscribeResponse::Start { group: 0 }
        );
        open_subscriptions.push((send, wire));
    }
    assert_eq!(open_subscriptions.len(), 40);
}
