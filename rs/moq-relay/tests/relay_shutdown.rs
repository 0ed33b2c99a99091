//! Graceful shutdown of the relay binary: SIGTERM → GOAWAY to every session → drain → exit 0.

mod common;

use std::time::{Duration, Instant};

use common::*;
use moq_lite::coding::{BiStreamType, Encode, Goaway, Version};
use moq_lite::{Error, Track, TrackInfo};

/// Wait for the relay's GOAWAY on a raw lite-05 peer and acknowledge it (FIN), as a client does.
/// Other streams the relay opens (its Announce request) are kept open meanwhile.
async fn expect_goaway(raw: &moq_native::web_transport_quinn::Session) {
    let goaway = BiStreamType::Goaway.encode_to_vec(Version::Lite05);
    let mut others = Vec::new();
    loop {
        let (mut send, recv) = tokio::time::timeout(TIMEOUT, raw.accept_bi())
            .await
            .expect("no GOAWAY stream")
            .unwrap();
        let mut wire = Wire::new(recv);
        if wire.bytes(1).await != goaway {
            others.push((send, wire));
            continue;
        }
        let message: Goaway = wire.next().await;
        assert_eq!(message.uri, "", "no new relay to move to");
        send.finish().unwrap();
        return;
    }
}

/// Sessions that stay after GOAWAY are closed when the shutdown timeout runs out, and the process
/// exits 0 then.
#[tokio::test]
async fn sigterm_sends_goaway_then_closes_lingering_sessions_and_exits_zero() {
    let mut relay = Relay::start(RelayArgs::new(&[
        "--auth-public",
        "",
        "--shutdown-timeout",
        "2s",
    ]))
    .await;
    let (origin, broadcast) = origin_with("cam");
    let track = broadcast.create_track(Track::new("video"), TrackInfo::default());
    track.write_frame(0, payload("cam", 0, 0, 10)).unwrap();
    let publisher = relay.publisher(Via::WebTransport, "/", &origin).await;
    let (viewer, seen) = relay.subscriber(Via::Quic, "/").await;
    let mut consumer = wait_broadcast(&seen, "cam")
        .await
        .subscribe_track(&Track::new("video"));
    read_group(next_group(&mut consumer).await).await.unwrap();
    let raw = raw_peer(&relay, None).await;
    relay
        .wait_metrics("three sessions", |m| m.value("moq_relay_sessions") == 3.0)
        .await;

    let start = Instant::now();
    let pid = relay.pid();
    signal(pid, "TERM");
    expect_goaway(&raw).await;
    // The moq-lite clients take note of GOAWAY and stay; the relay closes them at the deadline.
    for (who, session) in [("publisher", &publisher), ("viewer", &viewer)] {
        let err = tokio::time::timeout(Duration::from_secs(5), session.closed())
            .await
            .unwrap_or_else(|_| panic!("the {who} session outlived the shutdown timeout"));
        assert_eq!(err, Error::Cancel, "{who}: a clean close");
        assert!(
            start.elapsed() >= Duration::from_millis(1500),
            "{who}: closed after {:?}, before the 2 s drain",
            start.elapsed()
        );
    }
    let status = relay
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("the relay did not exit within the shutdown timeout");
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        relay.log_tail(20)
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "exited after {:?}",
        start.elapsed()
    );
    assert!(relay.log().contains("shutting down"));
}

/// When every session leaves after GOAWAY, the relay exits at once instead of waiting out the
/// timeout.
#[tokio::test]
async fn sessions_leaving_after_goaway_let_the_relay_exit_early() {
    let mut relay = Relay::start(RelayArgs::new(&[
        "--auth-public",
        "",
        "--shutdown-timeout",
        "30s",
    ]))
    .await;
    let raws = [
        raw_peer(&relay, None).await,
        raw_peer(&relay, Some("/room")).await,
    ];
    relay
        .wait_metrics("two sessions", |m| m.value("moq_relay_sessions") == 2.0)
        .await;

    let start = Instant::now();
    signal(relay.pid(), "TERM");
    for raw in &raws {
        expect_goaway(raw).await;
    }
    for raw in &raws {
        raw.close(0, b"bye");
    }
    let status = relay
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("the relay waited out the 30 s timeout");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "exited after {:?}",
        start.elapsed()
    );
}

/// A raw QUIC session left at the deadline learns of the close at once (the relay lets the close
/// frame out before exiting) instead of waiting for its idle timeout.
#[tokio::test]
async fn a_lingering_raw_quic_session_is_closed_at_the_deadline() {
    let mut relay = Relay::start(RelayArgs::new(&[
        "--auth-public",
        "",
        "--shutdown-timeout",
        "1s",
    ]))
    .await;
    let (viewer, _seen) = relay.subscriber(Via::Quic, "/").await;
    relay
        .wait_metrics("the session", |m| m.value("moq_relay_sessions") == 1.0)
        .await;
    let start = Instant::now();
    signal(relay.pid(), "TERM");
    let err = tokio::time::timeout(Duration::from_secs(4), viewer.closed())
        .await
        .expect("the session was not closed at the deadline");
    assert_eq!(err, Error::Cancel);
    let status = relay
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("the relay did not exit");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "exited after {:?}",
        start.elapsed()
    );
}
