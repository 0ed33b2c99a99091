//! Fan-out through the real relay binary: one upstream subscription however many viewers, late
//! joiners served from the cache, and what viewers see when the publisher goes away and comes back.

mod common;

use std::time::Duration;

use common::*;
use moq_lite::{Track, TrackInfo};

const GROUPS: u64 = 30;
const FRAMES: usize = 5;
const VIEWERS: usize = 50;

/// 1 publisher → 50 viewers (25 over WebTransport, 25 over raw QUIC): every viewer gets every frame
/// of every group (groups in any order, frames in order), and the relay holds exactly one upstream
/// subscription meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publisher_fans_out_to_fifty_viewers_through_one_upstream_subscription() {
    let relay = Relay::open().await;
    let (origin, broadcast) = origin_with("cam");
    let track = patient_video_track(&broadcast);
    let _publisher = relay.publisher(Via::Quic, "/live", &origin).await;

    // Every viewer subscribes before the first group is written, so each must get all of them.
    let native = relay.client();
    let connects = (0..VIEWERS).map(|i| {
        let via = if i % 2 == 0 {
            Via::WebTransport
        } else {
            Via::Quic
        };
        let (relay, native) = (&relay, &native);
        async move {
            let origin = moq_lite::OriginProducer::new();
            let client = moq_lite::Client::new().subscribe(origin.clone());
            let session = relay
                .try_connect(native, via, "/live", client)
                .await
                .unwrap_or_else(|e| panic!("viewer {i} ({via:?}): {e:#}"));
            let mut consumer = wait_broadcast(&origin, "cam")
                .await
                .subscribe_track(&Track::new("video"));
            consumer.set_max_latency(Duration::from_secs(60));
            // Group streams may reach a viewer out of order (a newer group's stream overtakes an
            // older one's when the machine is loaded); every group must still arrive.
            consumer.set_late_groups(true);
            (session, consumer)
        }
    });
    let viewers = futures::future::join_all(connects).await;
    let metrics = relay
        .wait_metrics("50 viewers", |m| {
            m.get("moq_relay_viewers", &[("broadcast", "live/cam")]) == Some(VIEWERS as f64)
        })
        .await;
    assert_eq!(
        metrics.value("moq_relay_subscriptions_upstream"),
        1.0,
        "one upstream subscription for 50 viewers\n{}",
        metrics.text
    );

    let mut readers = Vec::new();
    let mut sessions = Vec::new();
    for (i, (session, mut consumer)) in viewers.into_iter().enumerate() {
        sessions.push(session);
        readers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < GROUPS as usize {
                let group = match tokio::time::timeout(TIMEOUT, consumer.next_group()).await {
                    Ok(Ok(Some(group))) => group,
                    outcome => {
                        let mut seen: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
                        seen.sort();
                        let outcome = match outcome {
                            Err(_) => "no group in time".to_string(),
                            Ok(Ok(_)) => "track ended".to_string(),
                            Ok(Err(err)) => format!("track failed: {err}"),
                        };
                        panic!("viewer {i}: {outcome} after groups {seen:?}");
                    }
                };
                let sequence = group.info().sequence;
                let frames = read_group(group)
                    .await
                    .unwrap_or_else(|e| panic!("viewer {i}: group {sequence} failed: {e}"));
                got.push((sequence, frames));
            }
            got.sort_by_key(|(sequence, _)| *sequence);
            (got, consumer.skipped())
        }));
    }

    // A steady pace: a group every 30 ms, five distinct frames each.
    for g in 0..GROUPS {
        let mut group = track.append_group().unwrap();
        assert_eq!(group.info().sequence, g);
        for f in 0..FRAMES {
            group
                .write_frame(g * 1000 + f as u64, payload("fanout", g, f, 200))
                .unwrap();
        }
        group.finish();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }

    for (i, reader) in readers.into_iter().enumerate() {
        let (got, skipped) = match tokio::time::timeout(TIMEOUT, reader).await {
            Ok(Ok(result)) => result,
            outcome => {
                let metrics = relay.metrics().await;
                panic!(
                    "viewer {i}: {}; relay dropped {} groups\n{}",
                    match outcome {
                        Err(_) => "stalled".to_string(),
                        Ok(Err(err)) => format!("reader failed: {err}"),
                        Ok(Ok(_)) => unreachable!(),
                    },
                    metrics.value("moq_relay_groups_dropped_total"),
                    relay.log_tail(30)
                )
            }
        };
        assert_eq!(skipped, 0, "viewer {i} skipped groups");
        for (g, (sequence, frames)) in got.iter().enumerate() {
            assert_eq!(*sequence, g as u64, "viewer {i}: a group missing or twice");
            let want: Vec<_> = (0..FRAMES)
                .map(|f| payload("fanout", g as u64, f, 200))
                .collect();
            assert_eq!(frames, &want, "viewer {i}: group {g}");
        }
    }
    let metrics = relay.metrics().await;
    assert_eq!(
        metrics.value("moq_relay_subscriptions_upstream"),
        1.0,
        "{}",
        metrics.text
    );
    assert_eq!(
        metrics.get("moq_relay_viewers", &[("broadcast", "live/cam")]),
        Some(VIEWERS as f64),
        "{}",
        metrics.text
    );
    assert!(
        metrics.value("moq_relay_frames_out_total") >= (VIEWERS * GROUPS as usize * FRAMES) as f64,
        "{}",
        metrics.text
    );
    drop(sessions);
}

/// A viewer joining mid-group gets that group from its first frame at once, from the relay's cache
/// (no new upstream subscription), and then the rest of it live.
#[tokio::test]
async fn late_joiner_gets_the_current_group_from_its_first_frame() {
    let relay = Relay::open().await;
    let (origin, broadcast) = origin_with("cam");
    let track = broadcast.create_track(Track::new("video"), TrackInfo::default());
    let _publisher = relay.publisher(Via::WebTransport, "/", &origin).await;

    let (_early, early_origin) = relay.subscriber(Via::Quic, "/").await;
    let mut early = wait_broadcast(&early_origin, "cam")
        .await
        .subscribe_track(&Track::new("video"));
    relay
        .wait_metrics("the early viewer", |m| {
            m.value("moq_relay_subscriptions_upstream") == 1.0
        })
        .await;

    let mut g0 = track.append_group().unwrap();
    for f in 0..3 {
        g0.write_frame(f as u64, payload("late", 0, f, 100))
            .unwrap();
    }
    g0.finish();
    let mut g1 = track.append_group().unwrap();
    g1.write_frame(1000, payload("late", 1, 0, 100)).unwrap();
    g1.write_frame(1001, payload("late", 1, 1, 100)).unwrap();
    // The relay has group 1 up to frame 1 once the early viewer has read it.
    let mut first = next_group(&mut early).await;
    if first.info().sequence == 0 {
        first = next_group(&mut early).await;
    }
    assert_eq!(first.info().sequence, 1);
    for f in 0..2 {
        let (_, got) = tokio::time::timeout(TIMEOUT, first.read_frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(got, payload("late", 1, f, 100));
    }

    for via in Via::BOTH {
        let (_late, late_origin) = relay.subscriber(via, "/").await;
        let mut late = wait_broadcast(&late_origin, "cam")
            .await
            .subscribe_track(&Track::new("video"));
        let mut group = next_group(&mut late).await;
        assert_eq!(
            group.info().sequence,
            1,
            "{via:?}: joins at the current group"
        );
        // Both frames are there although the publisher has written nothing since.
        for f in 0..2 {
            let (_, got) = tokio::time::timeout(Duration::from_secs(2), group.read_frame())
                .await
                .expect("cached frame not served at once")
                .unwrap()
                .unwrap();
            assert_eq!(got, payload("late", 1, f, 100), "{via:?}");
        }
        let metrics = relay.metrics().await;
        assert_eq!(
            metrics.value("moq_relay_subscriptions_upstream"),
            1.0,
            "served from the cache\n{}",
            metrics.text
        );
        assert_eq!(
            metrics.get("moq_relay_viewers", &[("broadcast", "cam")]),
            Some(2.0),
            "{}",
            metrics.text
        );
        drop(group);
    }

    // The rest of the group arrives live.
    g1.write_frame(1002, payload("late", 1, 2, 100)).unwrap();
    g1.finish();
    let (_, got) = tokio::time::timeout(TIMEOUT, first.read_frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got, payload("late", 1, 2, 100));
    assert!(tokio::time::timeout(TIMEOUT, first.read_frame())
        .await
        .unwrap()
        .unwrap()
        .is_none());
}

/// Subscribe `n` viewers (alternating transports) at `/` to `cam/video` and read one group each.
async fn viewers(
    relay: &Relay,
    n: usize,
) -> Vec<(
    moq_lite::Session,
    moq_lite::OriginProducer,
    moq_lite::TrackConsumer,
)> {
    let mut out = Vec::new();
    for i in 0..n {
        let via = Via::BOTH[i % 2];
        let (session, origin) = relay.subscriber(via, "/").await;
        let mut consumer = wait_broadcast(&origin, "cam")
            .await
            .subscribe_track(&Track::new("video"));
        consumer.set_max_latency(Duration::from_secs(10));
        out.push((session, origin, consumer));
    }
    out
}

/// Every viewer's track ends (finished or failed, not hanging) within a few seconds, and the
/// broadcast disappears from every viewer's origin and from `/announced`.
async fn assert_all_ended(
    relay: &Relay,
    viewers: &mut [(
        moq_lite::Session,
        moq_lite::OriginProducer,
        moq_lite::TrackConsumer,
    )],
) {
    for (i, (_, origin, consumer)) in viewers.iter_mut().enumerate() {
        let ended = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match consumer.next_group().await {
                    Ok(Some(_)) => continue, // groups still cached before the end
                    Ok(None) | Err(_) => return,
                }
            }
        })
        .await;
        assert!(
            ended.is_ok(),
            "viewer {i}: the track did not end after the publisher left"
        );
        wait_unannounced(origin, "cam").await;
    }
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let (status, body) = relay.http_get("/announced").await.unwrap();
        assert_eq!(status, 200);
        if !body.lines().any(|l| l == "cam") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/announced still lists cam: {body:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    relay
        .wait_metrics("no announcement and no upstream subscription", |m| {
            m.value("moq_relay_announcements") == 0.0
                && m.value("moq_relay_subscriptions_upstream") == 0.0
        })
        .await;
}

/// Read the next group and check it is the new publisher's.
async fn assert_new_data(
    viewers: &mut [(
        moq_lite::Session,
        moq_lite::OriginProducer,
        moq_lite::TrackConsumer,
    )],
    track: &moq_lite::TrackProducer,
    tag: &str,
) {
    // Re-subscribe: the old broadcast is gone; the new one is announced under the same path.
    for (_, origin, consumer) in viewers.iter_mut() {
        *consumer = wait_broadcast(origin, "cam")
            .await
            .subscribe_track(&Track::new("video"));
    }
    // Keep writing until every viewer has seen a group of the new publisher (they may join at any).
    let writer = {
        let track = track.clone();
        let tag = tag.to_string();
        tokio::spawn(async move {
            for g in 0.. {
                let mut group = track.append_group().unwrap();
                group.write_frame(g, payload(&tag, g, 0, 50)).unwrap();
                group.finish();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    for (i, (_, _, consumer)) in viewers.iter_mut().enumerate() {
        let group = next_group(consumer).await;
        let g = group.info().sequence;
        let frames = read_group(group).await.unwrap();
        assert_eq!(
            frames,
            vec![payload(tag, g, 0, 50)],
            "viewer {i} got the new publisher's group {g}"
        );
    }
    writer.abort();
}

/// The publisher's connection drops: every viewer's subscription ends cleanly and the broadcast is
/// unannounced; a publisher reconnecting with the same path replaces it for viewers that
/// re-subscribe.
#[tokio::test]
async fn publisher_loss_ends_viewers_and_a_reconnecting_publisher_replaces_it() {
    let relay = Relay::open().await;
    let (origin, broadcast) = origin_with("cam");
    let track = broadcast.create_track(Track::new("video"), TrackInfo::default());
    let publisher = relay.publisher(Via::WebTransport, "/", &origin).await;
    let mut viewers = viewers(&relay, 4).await;
    track.write_frame(0, payload("first", 0, 0, 50)).unwrap();
    for (i, (_, _, consumer)) in viewers.iter_mut().enumerate() {
        let frames = read_group(next_group(consumer).await).await.unwrap();
        assert_eq!(frames, vec![payload("first", 0, 0, 50)], "viewer {i}");
    }

    // The connection goes; the broadcast and track producers stay alive in this process, so only
    // the session's end can tell the relay.
    drop(publisher);
    assert_all_ended(&relay, &mut viewers).await;

    let (origin2, broadcast2) = origin_with("cam");
    let track2 = broadcast2.create_track(Track::new("video"), TrackInfo::default());
    let _publisher2 = relay.publisher(Via::Quic, "/", &origin2).await;
    assert_new_data(&mut viewers, &track2, "second").await;
    drop((broadcast, track));
}

/// The publisher ends its broadcast but keeps its session: same outcome for viewers, and the same
/// session can publish the path again.
#[tokio::test]
async fn publisher_ending_its_broadcast_ends_viewers_and_can_publish_it_again() {
    let relay = Relay::open().await;
    let origin = moq_lite::OriginProducer::new();
    let broadcast = moq_lite::BroadcastProducer::new();
    origin
        .publish_broadcast(&path("cam"), broadcast.consume())
        .unwrap();
    let track = broadcast.create_track(Track::new("video"), TrackInfo::default());
    let publisher = relay.publisher(Via::Quic, "/", &origin).await;
    let mut viewers = viewers(&relay, 2).await;
    track.write_frame(0, payload("first", 0, 0, 50)).unwrap();
    for (_, _, consumer) in viewers.iter_mut() {
        read_group(next_group(consumer).await).await.unwrap();
    }

    drop(track);
    drop(broadcast);
    assert_all_ended(&relay, &mut viewers).await;

    let again = moq_lite::BroadcastProducer::new();
    let track = again.create_track(Track::new("video"), TrackInfo::default());
    origin
        .publish_broadcast(&path("cam"), again.consume())
        .unwrap();
    assert_new_data(&mut viewers, &track, "again").await;
    drop(publisher);
}

/// A viewer watching 40 tracks at once over WebTransport, each group held open until the viewer
/// has its frame: the relay's default stream allowances start at 16 (`--quic-initial-streams`) and
/// must grow, for the viewer's subscriptions (bidi) and for the publisher's group streams (uni).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_tracks_at_once_grow_the_stream_allowances() {
    const TRACKS: usize = 40;
    let relay = Relay::open().await;
    let (origin, broadcast) = origin_with("cam");
    let tracks: Vec<_> = (0..TRACKS)
        .map(|i| broadcast.create_track(Track::new(format!("t{i}")), TrackInfo::default()))
        .collect();
    let _publisher = relay.publisher(Via::Quic, "/live", &origin).await;
    let (_viewer, viewer_origin) = relay.subscriber(Via::WebTransport, "/live").await;
    let watched = wait_broadcast(&viewer_origin, "cam").await;
    let mut consumers: Vec<_> = (0..TRACKS)
        .map(|i| {
            let mut consumer = watched.subscribe_track(&Track::new(format!("t{i}")));
            consumer.set_max_latency(Duration::from_secs(60));
            consumer
        })
        .collect();
    relay
        .wait_metrics("40 subscriptions", |m| {
            m.get("moq_relay_viewers", &[("broadcast", "live/cam")]) == Some(TRACKS as f64)
        })
        .await;

    // One group per track, left open: 40 group streams in flight at once on each hop.
    let mut open_groups = Vec::new();
    for (i, track) in tracks.iter().enumerate() {
        let mut group = track.append_group().unwrap();
        group
            .write_frame(0, payload(&format!("t{i}"), 0, 0, 100))
            .unwrap();
        open_groups.push(group);
    }
    for (i, consumer) in consumers.iter_mut().enumerate() {
        let mut group = next_group(consumer).await;
        let frame = tokio::time::timeout(TIMEOUT, group.read_frame())
            .await
            .unwrap_or_else(|_| panic!("track t{i}: no frame in time"))
            .unwrap()
            .expect("a frame");
        assert_eq!(frame.1, payload(&format!("t{i}"), 0, 0, 100), "track t{i}");
    }
    drop(open_groups);
}

/// `/metrics` carries the QUIC transport's counters, summed over sessions: they count what was
/// sent (packets, UDP sends, bytes) and received (ACKs), never go down when a session ends, and
/// each live session has its RTT.
#[tokio::test]
async fn quic_counters_in_metrics_cover_ended_sessions() {
    let relay = Relay::open().await;
    let (origin, broadcast) = origin_with("cam");
    let track = broadcast.create_track(Track::new("video"), TrackInfo::default());
    let _publisher = relay.publisher(Via::Quic, "/", &origin).await;
    let (viewer, viewer_origin) = relay.subscriber(Via::WebTransport, "/").await;
    let mut consumer = wait_broadcast(&viewer_origin, "cam")
        .await
        .subscribe_track(&Track::new("video"));
    relay
        .wait_metrics("the subscription", |m| {
            m.value("moq_relay_subscriptions_upstream") == 1.0
        })
        .await;
    // 20 KB per group: several full packets each, to the viewer and from the publisher.
    for g in 0..5 {
        let mut group = track.append_group().unwrap();
        group.write_frame(g, payload("quic", g, 0, 20_000)).unwrap();
        group.finish();
        let got = read_group(next_group(&mut consumer).await).await.unwrap();
        assert_eq!(got, vec![payload("quic", g, 0, 20_000)]);
    }

    let live = relay.metrics().await;
    let sent = live.value("moq_relay_quic_udp_bytes_sent_total");
    let received = live.value("moq_relay_quic_udp_bytes_received_total");
    assert!(sent >= 100_000.0, "5 × 20 KB went out\n{}", live.text);
    assert!(received >= 100_000.0, "5 × 20 KB came in\n{}", live.text);
    let datagrams = live.value("moq_relay_quic_udp_datagrams_sent_total");
    let sends = live.value("moq_relay_quic_udp_sends_total");
    assert!(sends >= 1.0 && sends <= datagrams, "{}", live.text);
    assert!(
        live.value("moq_relay_quic_packets_sent_total") >= datagrams,
        "{}",
        live.text
    );
    // ACKs both ways, and at least one STREAM frame per group stream.
    for (name, least) in [
        ("moq_relay_quic_acks_received_total", 1.0),
        ("moq_relay_quic_acks_sent_total", 1.0),
        ("moq_relay_quic_stream_frames_sent_total", 5.0),
    ] {
        assert!(live.value(name) >= least, "{name}\n{}", live.text);
    }
    assert!(
        live.text
            .contains("\nmoq_relay_quic_credit_frames_received_total "),
        "{}",
        live.text
    );
    let rtts: Vec<f64> = live
        .all("moq_relay_session_rtt_seconds")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(rtts.len(), 2, "one RTT per live session\n{}", live.text);
    assert!(rtts.iter().all(|r| *r > 0.0 && *r < 1.0), "{rtts:?}");

    // The viewer leaves: its counters stay in the totals.
    viewer.close(moq_lite::Error::Cancel);
    let ended = relay
        .wait_metrics("the viewer gone", |m| m.sessions().len() == 1)
        .await;
    for name in [
        "moq_relay_quic_udp_bytes_sent_total",
        "moq_relay_quic_udp_datagrams_sent_total",
        "moq_relay_quic_packets_sent_total",
        "moq_relay_quic_acks_received_total",
        "moq_relay_quic_acks_sent_total",
        "moq_relay_quic_stream_frames_sent_total",
        "moq_relay_quic_credit_frames_received_total",
    ] {
        assert!(
            ended.value(name) >= live.value(name),
            "{name} went down when a session ended\n{}",
            ended.text
        );
    }
    assert!(ended.value("moq_relay_quic_udp_bytes_sent_total") >= sent);
}
