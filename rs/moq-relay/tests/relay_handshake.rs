//! Connections that never finish their set-up, on the real relay binary: each is closed at
//! `--handshake-timeout`, holds a `--max-sessions` slot until then, and a thousand of them cost a
//! legitimate viewer no noticeable time.

mod common;

use std::time::Duration;

use common::*;
use moq_lite::{Error, Track};
use moq_native::web_transport_quinn;
use tokio::time::Instant;

/// A connection that completes the QUIC handshake (and, over WebTransport, the CONNECT) and then
/// never sends SETUP: what the relay sees of a slow or hostile client.
async fn half_open(
    relay: &Relay,
    native: &moq_native::QuicClient,
    via: Via,
) -> web_transport_quinn::Session {
    tokio::time::timeout(TIMEOUT, native.connect(relay.url(via, "/")))
        .await
        .expect("connect timed out")
        .unwrap_or_else(|err| panic!("connect over {via:?}: {err:#}\n{}", relay.log_tail(10)))
        .session
}

/// The moq-lite error a session was closed with, from its close code and reason.
async fn close_error(session: &web_transport_quinn::Session) -> (Error, String) {
    use web_transport_quinn::{SessionError, WebTransportError};
    let err = tokio::time::timeout(TIMEOUT, session.closed())
        .await
        .expect("still open long after the handshake deadline");
    match err {
        SessionError::WebTransportError(WebTransportError::Closed(code, reason)) => {
            (Error::from_code(code), reason)
        }
        SessionError::ConnectionError(quinn::ConnectionError::ApplicationClosed(close)) => (
            Error::from_code(u32::try_from(close.error_code.into_inner()).unwrap_or(u32::MAX)),
            String::from_utf8_lossy(&close.reason).into_owned(),
        ),
        other => panic!("closed without a moq-lite code: {other}"),
    }
}

/// Closed with `timeout` (3), saying why.
async fn assert_timed_out(session: &web_transport_quinn::Session, what: &str) {
    let (error, reason) = close_error(session).await;
    assert_eq!(error, Error::Timeout, "{what}: {reason}");
    assert_eq!(reason, "handshake timeout: no SETUP", "{what}");
}

#[tokio::test]
async fn a_connection_that_never_sends_setup_is_closed_at_the_deadline() {
    let deadline = Duration::from_millis(500);
    let relay = Relay::start(RelayArgs::new(&[
        "--auth-public",
        "",
        "--handshake-timeout",
        "500ms",
    ]))
    .await;
    let native = relay.client();
    for via in Via::BOTH {
        let before = relay.log_count("handshake timeout: no SETUP");
        let start = Instant::now();
        let session = half_open(&relay, &native, via).await;
        assert_timed_out(&session, &format!("{via:?}")).await;
        let elapsed = start.elapsed();
        assert!(elapsed >= deadline, "{via:?}: closed after {elapsed:?}");
        relay.wait_log("handshake timeout: no SETUP", before).await;
    }
    relay
        .wait_metrics("no connection left", |m| {
            m.value("moq_relay_connections") == 0.0
        })
        .await;
    assert!(!relay.log().contains("panicked"));
}

#[tokio::test]
async fn half_open_connections_count_against_max_sessions_until_their_deadline() {
    let relay = Relay::start(RelayArgs::new(&[
        "--auth-public",
        "",
        "--max-sessions",
        "3",
        "--handshake-timeout",
        "1s",
    ]))
    .await;
    let native = relay.client();
    let mut held = Vec::new();
    for via in [Via::Quic, Via::WebTransport, Via::Quic] {
        held.push(half_open(&relay, &native, via).await);
    }
    relay
        .wait_metrics("three half-open connections", |m| {
            m.value("moq_relay_connections") == 3.0 && m.value("moq_relay_sessions") == 0.0
        })
        .await;

    // No slot for a legitimate viewer: refused before its handshake.
    for via in Via::BOTH {
        let refused = relay
            .try_connect(&native, via, "/", moq_lite::Client::new())
            .await
            .expect_err("a fourth connection over --max-sessions 3");
        assert!(
            format!("{refused:#}").contains("refused"),
            "{via:?}: {refused:#}"
        );
    }
    relay
        .wait_log("refusing connection: at the connection limit", 1)
        .await;

    // The half-open ones are closed at their deadline, which frees their slots.
    for session in &held {
        assert_timed_out(session, "a half-open connection").await;
    }
    relay
        .wait_metrics("the slots freed", |m| {
            m.value("moq_relay_connections") == 0.0
        })
        .await;
    let (_viewer, _origin) = relay.subscriber(Via::WebTransport, "/").await;
    relay
        .wait_metrics("the viewer's session", |m| {
            m.value("moq_relay_sessions") == 1.0
        })
        .await;
}

/// Half-open connections held during the loaded measurement.
const HALF_OPEN: usize = 1000;
/// Viewers timed on each relay; the medians are compared.
const SAMPLES: usize = 5;
/// How much later the first frame may arrive with the half-open connections present.
const ALLOWED_DELAY: Duration = Duration::from_millis(100);

/// Connect a viewer and time it from the start of its QUIC handshake to its first frame.
async fn time_to_first_frame(relay: &Relay, via: Via) -> Duration {
    let start = Instant::now();
    let (session, origin) = relay.subscriber(via, "/").await;
    let mut track = wait_broadcast(&origin, "cam")
        .await
        .subscribe_track(&Track::new("video"));
    let frames = read_group(next_group(&mut track).await).await.unwrap();
    let elapsed = start.elapsed();
    assert!(!frames.is_empty());
    session.close(Error::Cancel);
    elapsed
}

#[tokio::test]
async fn a_thousand_half_open_connections_do_not_delay_a_viewer() {
    let args = [
        "--auth-public",
        "",
        "--max-sessions",
        "2000",
        "--handshake-timeout",
        "60s",
    ];
    // Two relays with the same broadcast: `relay` gets the half-open connections, `calm` none.
    // Viewers are timed on both in turn, so a busy machine (other tests, other work) delays both
    // alike and only what the half-open connections cost shows in the difference.
    let relay = Relay::start(RelayArgs::new(&args)).await;
    let calm = Relay::start(RelayArgs::new(&args)).await;
    let (origin, broadcast) = origin_with("cam");
    let track = patient_video_track(&broadcast);
    track.write_frame(0, payload("cam", 0, 0, 1000)).unwrap();
    let _publisher = relay.publisher(Via::Quic, "/", &origin).await;
    let _calm_publisher = calm.publisher(Via::Quic, "/", &origin).await;

    // A thousand connections that finished the QUIC handshake and never send SETUP, kept alive
    // by the client's keep-alives; opened a hundred at a time from one client endpoint.
    let native = relay.client();
    let mut held = Vec::with_capacity(HALF_OPEN);
    while held.len() < HALF_OPEN {
        let batch = (0..100).map(|_| half_open(&relay, &native, Via::Quic));
        held.extend(futures::future::join_all(batch).await);
    }
    relay
        .wait_metrics("a thousand half-open connections", |m| {
            m.value("moq_relay_connections") == (HALF_OPEN + 1) as f64
        })
        .await;

    let (mut baseline, mut loaded) = (Vec::new(), Vec::new());
    for i in 0..SAMPLES {
        let via = Via::BOTH[i % 2];
        // Alternate which relay goes first, so neither always gets the warmer caches.
        if i % 2 == 0 {
            loaded.push(time_to_first_frame(&relay, via).await);
            baseline.push(time_to_first_frame(&calm, via).await);
        } else {
            baseline.push(time_to_first_frame(&calm, via).await);
            loaded.push(time_to_first_frame(&relay, via).await);
        }
    }
    baseline.sort();
    loaded.sort();
    let (baseline, loaded) = (baseline[SAMPLES / 2], loaded[SAMPLES / 2]);
    assert!(
        held.iter().all(|s| s.close_reason().is_none()),
        "the half-open connections were open throughout"
    );
    assert!(
        loaded <= baseline + ALLOWED_DELAY,
        "first frame after {loaded:?} with {HALF_OPEN} half-open connections, {baseline:?} without"
    );
    eprintln!("time to first frame (medians of {SAMPLES}): {baseline:?} alone, {loaded:?} next to {HALF_OPEN} half-open connections");
}
