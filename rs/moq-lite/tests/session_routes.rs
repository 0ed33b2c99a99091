//! A relay's served subscription follows its broadcast from route to route (a link that dies, a
//! relay that drains, a publisher that moves), so the viewer keeps one subscription and sees one
//! increasing sequence of groups. Real QUIC on loopback; the routes are broadcasts published into
//! the test relay's origin with hop chains, as a cluster link would.

mod common;

use std::time::Duration;

use common::*;
use moq_lite::{BroadcastProducer, Error, Track, TrackConsumer, TrackInfo, TrackProducer};

/// A route to `cam` through `hops`, with its `video` track.
fn route(relay: &Relay, hops: Vec<u64>) -> (BroadcastProducer, TrackProducer) {
    let broadcast = BroadcastProducer::new();
    let track = broadcast.create_track(Track::new("video"), TrackInfo::default());
    relay
        .origin
        .publish_with_hops(&path("cam"), broadcast.consume(), hops)
        .unwrap();
    (broadcast, track)
}

/// Write group `sequence` (one frame naming its route) to each of `tracks`.
fn write(tracks: &[&TrackProducer], sequence: u64, from: &str) {
    for track in tracks {
        let mut group = track
            .create_group(moq_lite::Group { sequence })
            .expect("group");
        group
            .write_frame(sequence, bytes::Bytes::from(format!("{from}{sequence}")))
            .unwrap();
        group.finish();
    }
}

/// The viewer's next group: its sequence and first frame.
async fn next(viewer: &mut TrackConsumer) -> (u64, String) {
    let mut group = tokio::time::timeout(TIMEOUT, viewer.next_group())
        .await
        .expect("a group in time")
        .expect("the subscription is alive")
        .expect("the subscription did not end");
    let sequence = group.info().sequence;
    let frame = tokio::time::timeout(TIMEOUT, group.read_frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .1;
    (sequence, String::from_utf8_lossy(&frame).into_owned())
}

/// Resolves when the relay asks `track` for something (it subscribed to it).
async fn subscribed(track: &TrackProducer) {
    tokio::time::timeout(TIMEOUT, track.requested_changed(track.requested()))
        .await
        .expect("the relay subscribed to the other route");
}

#[tokio::test(start_paused = true)]
async fn a_withdrawn_route_hands_over_without_a_gap_or_a_repeat() {
    let relay = relay(&[]);
    // Two routes; the shorter chain is used.
    let (near, near_track) = route(&relay, vec![7]);
    let (_far, far_track) = route(&relay, vec![8, 9]);
    let (_session, broadcast) = relay.watch(Via::Memory, "cam").await;
    let mut viewer = broadcast.subscribe_track(&Track::new("video"));
    for sequence in 0..3 {
        write(&[&near_track, &far_track], sequence, "x");
        assert_eq!(next(&mut viewer).await.0, sequence);
    }
    assert!(!near_track.is_unused(), "the shorter route is subscribed");
    assert!(far_track.is_unused(), "the longer route is not subscribed");

    // The near route is withdrawn (its relay drains) while its track still delivers.
    near.finish();
    subscribed(&far_track).await;
    for sequence in 3..6 {
        write(&[&near_track, &far_track], sequence, "x");
        assert_eq!(next(&mut viewer).await.0, sequence, "each group once");
    }
    // The drained relay closes: the far route carries on alone.
    near_track.finish();
    for sequence in 6..9 {
        write(&[&far_track], sequence, "far");
        assert_eq!(
            next(&mut viewer).await,
            (sequence, format!("far{sequence}"))
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_route_moves_the_subscription_to_the_next() {
    let relay = relay(&[]);
    let (near, near_track) = route(&relay, vec![7]);
    let (_far, far_track) = route(&relay, vec![8, 9]);
    let (_session, broadcast) = relay.watch(Via::Memory, "cam").await;
    let mut viewer = broadcast.subscribe_track(&Track::new("video"));
    for sequence in 0..3 {
        write(&[&near_track, &far_track], sequence, "x");
        assert_eq!(next(&mut viewer).await.0, sequence);
    }
    // The link behind the near route dies: its track fails and its broadcast closes.
    near_track.abort(Error::Transport("connection lost".into()));
    drop(near);
    subscribed(&far_track).await;
    for sequence in 3..6 {
        write(&[&far_track], sequence, "far");
        assert_eq!(
            next(&mut viewer).await,
            (sequence, format!("far{sequence}"))
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_moved_publisher_counting_from_zero_continues_the_sequence() {
    let relay = relay(&[]);
    let (first, first_track) = route(&relay, vec![]);
    let (_session, broadcast) = relay.watch(Via::Memory, "cam").await;
    let mut viewer = broadcast.subscribe_track(&Track::new("video"));
    for sequence in 0..10 {
        write(&[&first_track], sequence, "a");
        assert_eq!(next(&mut viewer).await.0, sequence);
    }
    // The publisher leaves this relay and comes back through another one, numbering from 0.
    first_track.abort(Error::Transport("publisher gone".into()));
    drop(first);
    let (_moved, moved_track) = route(&relay, vec![4]);
    subscribed(&moved_track).await;
    for sequence in 0..3 {
        write(&[&moved_track], sequence, "d");
        assert_eq!(
            next(&mut viewer).await,
            (10 + sequence, format!("d{sequence}")),
            "shifted to follow on from group 9"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_route_without_a_replacement_fails_the_subscription_after_the_wait() {
    let relay = relay(&[]);
    let (only, only_track) = route(&relay, vec![7]);
    let (_session, broadcast) = relay.watch(Via::Memory, "cam").await;
    let mut viewer = broadcast.subscribe_track(&Track::new("video"));
    write(&[&only_track], 0, "x");
    assert_eq!(next(&mut viewer).await.0, 0);
    only_track.abort(Error::Transport("connection lost".into()));
    drop(only);
    let started = tokio::time::Instant::now();
    let ended = tokio::time::timeout(TIMEOUT, viewer.next_group())
        .await
        .expect("the subscription ends");
    assert!(!matches!(ended, Ok(Some(_))), "no group: {ended:?}");
    // It waited for a route (2 s) first, and not much longer.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

/// A publishing client with origin id `id` (its routes reach the relay as `[id]`) serving `cam`.
async fn publisher(
    relay: &Relay,
    id: u64,
    via: Via,
) -> (moq_lite::Session, BroadcastProducer, TrackProducer) {
    let (origin, broadcast, track) = common::broadcast("cam", "video");
    let session = relay
        .connect(
            via,
            &[],
            moq_lite::Client::new()
                .with_origin_id(id)
                .publish(origin.consume()),
        )
        .await;
    (session, broadcast, track)
}

// Over QUIC: in memory, on paused time, the viewer's first group is written before the relay's
// upstream subscription reaches the publisher, and this test reads group 0.
#[tokio::test]
async fn goaway_withdraws_the_peers_routes_and_its_subscriptions_move_and_end() {
    let relay = relay(&[]);
    let (first, _b1, first_track) = publisher(&relay, 7, Via::Quic).await;
    let (_session, broadcast) = relay.watch(Via::Quic, "cam").await;
    // The second publisher's route is the newer, so it is the one used.
    let (second, _b2, second_track) = publisher(&relay, 8, Via::Quic).await;
    let mut viewer = {
        // Wait until the relay has the second route: the viewer's announcement changes to it.
        let mut routes = relay.origin.consume();
        loop {
            let routes_now = routes.routes();
            if routes_now.get(&path("cam")).is_some_and(|r| r.len() == 2) {
                break;
            }
            tokio::time::timeout(TIMEOUT, routes.announced())
                .await
                .unwrap();
        }
        broadcast.subscribe_track(&Track::new("video"))
    };
    let _ = &broadcast;
    for sequence in 0..3 {
        write(&[&first_track, &second_track], sequence, "x");
        assert_eq!(next(&mut viewer).await.0, sequence);
    }
    assert!(!second_track.is_unused() && first_track.is_unused());

    // The carrying publisher's side leaves: GOAWAY. Its route is withdrawn at once, the
    // subscription moves to the other, and the one it had there ends.
    tokio::time::timeout(TIMEOUT, second.goaway(""))
        .await
        .unwrap()
        .unwrap();
    subscribed(&first_track).await;
    for sequence in 3..8 {
        write(&[&first_track, &second_track], sequence, "x");
        assert_eq!(
            next(&mut viewer).await.0,
            sequence,
            "each group once, none missed"
        );
    }
    tokio::time::timeout(TIMEOUT, second_track.unused())
        .await
        .expect("the subscription through the leaving peer ends");
    drop(first);
}
