//! Delivery behaviour over real QUIC: late join, lagging subscribers, and priorities on a
//! bandwidth-limited link.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::proxy::Proxy;
use common::*;
use moq_lite::{BroadcastProducer, Client, Group, OriginProducer, Track, TrackInfo};

/// Publish a broadcast straight into the relay's origin.
fn publish(relay: &Relay, name: &str) -> BroadcastProducer {
    let broadcast = BroadcastProducer::new();
    relay
        .origin
        .publish_broadcast(&path(name), broadcast.consume())
        .unwrap();
    broadcast
}

#[tokio::test(start_paused = true)]
async fn late_join_starts_at_latest_group_from_its_first_frame() {
    let relay = relay(&[]);
    let broadcast = publish(&relay, "live");
    let track = broadcast.create_track(Track::new("video"), TrackInfo::default());
    for _ in 0..6 {
        write_group(&track, 3, 100);
    }

    let (_session, remote) = relay.watch(Via::Memory, "live").await;
    let mut consumer = remote.subscribe_track(&Track::new("video"));
    consumer.set_max_latency(Duration::from_secs(10));

    let mut group = tokio::time::timeout(TIMEOUT, consumer.next_group())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(group.info().sequence, 5, "joins at the latest group");
    let (frame, _) = group.read_frame().await.unwrap().unwrap();
    assert_eq!(frame.timestamp, 5000, "from its first frame");

    write_group(&track, 3, 100);
    let group = tokio::time::timeout(TIMEOUT, consumer.next_group())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(group.info().sequence, 6);
}

/// Group streams race: a group that reaches a publisher (a relay's upstream side) after a newer
/// one was already served is still forwarded, and reaches a subscriber that asks for late groups.
#[tokio::test(start_paused = true)]
async fn a_group_that_loses_the_race_upstream_is_still_delivered() {
    let relay = relay(&[]);
    let broadcast = publish(&relay, "chat");
    let track = broadcast.create_track(Track::new("messages"), TrackInfo::default());
    let message = |sequence: u64| {
        let mut group = track.create_group(Group { sequence }).unwrap();
        group
            .write_frame(sequence, Bytes::from(vec![sequence as u8; 10]))
            .unwrap();
        group.finish();
    };
    message(0);

    let (_session, remote) = relay.watch(Via::Memory, "chat").await;
    let mut consumer = remote.subscribe_track(&Track::new("messages"));
    consumer.set_max_latency(Duration::from_secs(10));
    consumer.set_late_groups(true);
    let mut next = async || {
        let mut group = tokio::time::timeout(TIMEOUT, consumer.next_group())
            .await
            .expect("a group in time")
            .unwrap()
            .unwrap();
        let (_, payload) = group.read_frame().await.unwrap().unwrap();
        (group.info().sequence, payload[0])
    };
    assert_eq!(next().await, (0, 0));
    message(2);
    assert_eq!(next().await, (2, 2));
    // Group 1 arrives after group 2 was served.
    message(1);
    assert_eq!(next().await, (1, 1), "the late group is forwarded");
    message(3);
    assert_eq!(next().await, (3, 3));
}

#[tokio::test]
async fn stalled_subscriber_skips_groups_and_stays_bounded() {
    let relay = relay(&[]);
    let broadcast = publish(&relay, "live");
    // 200 ms of retention: older groups are evicted everywhere downstream (TRACK_INFO carries it).
    let info = TrackInfo {
        max_latency: Duration::from_millis(200),
        ..Default::default()
    };
    let track = broadcast.create_track(Track::new("video"), info);
    write_group(&track, 1, 10);

    let origin = OriginProducer::new();
    let _session = relay
        .connect(
            Via::Quic,
            &["moq-lite-05"],
            Client::new().subscribe(origin.clone()),
        )
        .await;
    let remote = tokio::time::timeout(TIMEOUT, origin.consume().wait_for_broadcast(&path("live")))
        .await
        .unwrap()
        .unwrap();
    let mut consumer = remote.subscribe_track(&Track::new("video"));
    consumer.set_max_latency(Duration::from_millis(200));
    tokio::time::timeout(TIMEOUT, consumer.next_group())
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    // The application stops reading while 150 groups of 50 kB (7.5 MB) are published.
    const GROUP: usize = 50_000;
    let mut peak = 0;
    for _ in 0..150 {
        write_group(&track, 1, GROUP);
        tokio::time::sleep(Duration::from_millis(10)).await;
        peak = peak.max(consumer.cached_bytes());
    }
    let last = track.append_group().unwrap().info().sequence;
    assert!(
        peak < 2_000_000,
        "subscriber-side track held {peak} bytes while the reader stalled"
    );
    assert!(
        track.cached_bytes() < 2_000_000,
        "publisher cache holds {} bytes",
        track.cached_bytes()
    );

    // When it reads again it lands near the live edge and learns how many groups it missed.
    let group = tokio::time::timeout(TIMEOUT, consumer.next_group())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        group.info().sequence + 30 >= last,
        "resumed at {} of {last}",
        group.info().sequence
    );
    assert!(
        consumer.skipped() >= 100,
        "skipped only {}",
        consumer.skipped()
    );
}

/// Two tracks compete for an 8 Mbit/s link: every group of the high-priority track arrives before
/// almost all of the low-priority track's, although they were written interleaved.
#[tokio::test]
async fn higher_priority_track_arrives_first_under_a_bandwidth_limit() {
    let relay = relay(&[]);
    let broadcast = publish(&relay, "live");
    let high = broadcast.create_track(
        Track::new("high"),
        TrackInfo {
            max_latency: Duration::from_secs(30),
            ..Default::default()
        },
    );
    let low = broadcast.create_track(
        Track::new("low"),
        TrackInfo {
            max_latency: Duration::from_secs(30),
            ..Default::default()
        },
    );
    write_group(&high, 1, 10);
    write_group(&low, 1, 10);

    let upstream = format!("127.0.0.1:{}", relay.port).parse().unwrap();
    let proxy = Proxy::start(upstream, 8_000_000, 256 * 1024).await;
    let origin = OriginProducer::new();
    let url = format!("https://127.0.0.1:{}/", proxy.addr.port());
    let _session = relay
        .connect_url(&url, &[], Client::new().subscribe(origin.clone()))
        .await;
    let remote = tokio::time::timeout(TIMEOUT, origin.consume().wait_for_broadcast(&path("live")))
        .await
        .unwrap()
        .unwrap();

    let order: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let mut readers = Vec::new();
    for (name, priority) in [("high", 200u8), ("low", 10u8)] {
        let mut consumer = remote.subscribe_track(&Track::new(name).with_priority(priority));
        consumer.set_max_latency(Duration::from_secs(30));
        // Wait for the subscription to be live (its first tiny group).
        tokio::time::timeout(TIMEOUT, consumer.next_group())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let order = order.clone();
        readers.push(tokio::spawn(async move {
            let mut pending = Vec::new();
            for _ in 0..8 {
                let Ok(Some(mut group)) = consumer.next_group().await else {
                    break;
                };
                let order = order.clone();
                // Each group is read on its own so completion order is what the wire delivered.
                pending.push(tokio::spawn(async move {
                    while let Ok(Some(_)) = group.read_frame().await {}
                    order.lock().unwrap().push(name);
                }));
            }
            for p in pending {
                p.await.unwrap();
            }
        }));
    }

    // 8 groups of 64 kB on each track, written interleaved, low first: 1 MB over 8 Mbit/s ≈ 1 s.
    for _ in 0..8 {
        write_group(&low, 1, 64 * 1024);
        write_group(&high, 1, 64 * 1024);
    }
    for reader in readers {
        tokio::time::timeout(TIMEOUT, reader)
            .await
            .expect("groups did not all arrive")
            .unwrap();
    }

    let order = order.lock().unwrap().clone();
    let last_high = order.iter().rposition(|n| *n == "high").unwrap();
    let low_before = order[..last_high].iter().filter(|n| **n == "low").count();
    assert!(
        low_before <= 2,
        "low-priority groups finished before the last high one: {order:?}"
    );
}

/// A relay forwards a frame's bytes as they arrive: the subscriber two hops away reads the first
/// half of a frame whose second half has not been written yet.
#[tokio::test(start_paused = true)]
async fn frames_are_forwarded_before_they_are_complete() {
    let relay = relay(&[]);
    let (pub_origin, _broadcast, track) = broadcast("live", "t");
    let _publisher = relay
        .connect(
            Via::Memory,
            &[],
            Client::new().publish(pub_origin.consume()),
        )
        .await;
    let (_subscriber, remote) = relay.watch(Via::Memory, "live").await;
    let mut consumer = remote.subscribe_track(&Track::new("t"));

    // Keep a group open with a frame half written, until the subscriber has its first half.
    let mut group = track.append_group().unwrap();
    let mut frame = group
        .create_frame(moq_lite::Frame {
            timestamp: 0,
            size: 8,
        })
        .unwrap();
    frame
        .write_chunk(bytes::Bytes::from_static(b"half"))
        .unwrap();
    let mut remote_group = tokio::time::timeout(TIMEOUT, consumer.next_group())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let mut remote_frame = tokio::time::timeout(TIMEOUT, remote_group.next_frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(remote_frame.info().size, 8);
    let first = tokio::time::timeout(TIMEOUT, remote_frame.read_chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        first, "half",
        "first half forwarded through the relay before the frame was complete"
    );

    frame
        .write_chunk(bytes::Bytes::from_static(b"done"))
        .unwrap();
    frame.finish().unwrap();
    let second = tokio::time::timeout(TIMEOUT, remote_frame.read_chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(second, "done");
}

/// A subscriber that stops reading, then cancels its subscription: the group the relay was still
/// writing (held back by QUIC flow control) is reset and no longer counted or held.
#[tokio::test(start_paused = true)]
async fn a_cancelled_subscription_leaves_nothing_queued() {
    use moq_lite::coding::{BiStreamType, SubscribeResponse};

    let relay = relay(&[]);
    let broadcast = publish(&relay, "live");
    let info = TrackInfo {
        max_latency: Duration::from_secs(30),
        ..Default::default()
    };
    let track = broadcast.create_track(Track::new("video"), info);
    write_group(&track, 1, 10);

    let peer = raw_peer(&relay).await;
    let (mut send, mut wire) = open(
        &peer,
        BiStreamType::Subscribe,
        &subscribe(1, "live", "video"),
    )
    .await;
    assert_eq!(
        wire.next::<SubscribeResponse>().await,
        SubscribeResponse::Start { group: 0 }
    );
    // 4 MB in one frame: more than a stream's flow-control window, and the peer reads nothing.
    write_group(&track, 1, 4_000_000);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while relay.queued_bytes() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing was ever queued"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let held = relay.queued_bytes();
    assert!(
        held > 1_000_000,
        "only {held} bytes queued behind flow control"
    );

    // FIN on the SUBSCRIBE stream cancels the subscription (spec §3.3).
    send.finish().unwrap();
    while relay.queued_bytes() != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} bytes still queued after the subscription was cancelled ({held} before)",
            relay.queued_bytes()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A frame whose bytes have all arrived is relayed as one chunk, not one per QUIC packet: the relay
/// joins what has arrived once, so its subscribers' streams carry one buffer per frame.
#[tokio::test(start_paused = true)]
async fn an_arrived_frame_is_relayed_as_one_chunk() {
    let relay = relay(&[]);
    let (pub_origin, _broadcast, track) = broadcast("live", "t");
    let _publisher = relay
        .connect(
            Via::Memory,
            &[],
            Client::new().publish(pub_origin.consume()),
        )
        .await;
    let (_subscriber, remote) = relay.watch(Via::Memory, "live").await;
    let mut consumer = remote.subscribe_track(&Track::new("t"));

    // 10 KB written as ten 1 KB chunks: at least 8 QUIC packets on every hop.
    let payload: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let mut group = track.append_group().unwrap();
    let mut frame = group
        .create_frame(moq_lite::Frame {
            timestamp: 0,
            size: payload.len() as u64,
        })
        .unwrap();
    for part in payload.chunks(1000) {
        frame
            .write_chunk(bytes::Bytes::copy_from_slice(part))
            .unwrap();
    }
    frame.finish().unwrap();
    group.finish();

    let mut remote_group = tokio::time::timeout(TIMEOUT, consumer.next_group())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let mut remote_frame = tokio::time::timeout(TIMEOUT, remote_group.next_frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let mut received = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = tokio::time::timeout(TIMEOUT, remote_frame.read_chunk())
        .await
        .unwrap()
        .unwrap()
    {
        chunks += 1;
        received.extend_from_slice(&chunk);
    }
    assert_eq!(received, payload, "the frame's bytes, in order");
    // Without joining, every packet's STREAM frame stays a chunk of its own (8 or more here).
    assert!(chunks <= 4, "relayed in {chunks} chunks");
}

/// Groups published in a burst open their streams in sequence order, so a subscriber that drops a
/// group arriving after a newer one (the default) still gets every group of the burst.
#[tokio::test(start_paused = true)]
async fn a_burst_of_groups_arrives_in_order() {
    let relay = relay(&[]);
    let broadcast = publish(&relay, "live");
    let track = broadcast.create_track(
        Track::new("video"),
        TrackInfo {
            max_latency: Duration::from_secs(30),
            ..Default::default()
        },
    );
    write_group(&track, 1, 10);

    let (_session, remote) = relay.watch(Via::Memory, "live").await;
    let mut consumer = remote.subscribe_track(&Track::new("video"));
    consumer.set_max_latency(Duration::from_secs(30));
    let first = tokio::time::timeout(TIMEOUT, consumer.next_group())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .info()
        .sequence;

    // No await between the groups: the relay's subscription task finds many new groups at once.
    for _ in 0..40 {
        write_group(&track, 1, 100);
    }
    let mut sequences = Vec::new();
    while sequences.len() < 40 {
        let group = tokio::time::timeout(TIMEOUT, consumer.next_group())
            .await
            .unwrap_or_else(|_| panic!("only {sequences:?} arrived"))
            .unwrap()
            .unwrap();
        sequences.push(group.info().sequence);
    }
    assert_eq!(sequences, (first + 1..=first + 40).collect::<Vec<_>>());
    assert_eq!(consumer.skipped(), 0);
}
