//! Set-up bounds on the server: a connection that never finishes its set-up is closed at the
//! handshake deadline, and connections hold a slot of the connection limit from their first
//! packet, so half-open ones count.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use moq_native::{QuicClient, QuicClientConfig, QuicServer, QuicServerConfig, ServerTlsConfig};
use tokio::sync::Semaphore;

/// A server on a free port with these set-up bounds.
fn bounded_server(handshake_timeout: Duration, limit: Option<Arc<Semaphore>>) -> QuicServer {
    QuicServer::new(QuicServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        tls: ServerTlsConfig {
            generate: vec!["localhost".into()],
            ..Default::default()
        },
        handshake_timeout,
        connection_limit: limit,
        ..Default::default()
    })
    .unwrap()
}

/// A client that completes the QUIC handshake with ALPN `h3` and then sends nothing: no
/// HTTP/3 SETTINGS, no CONNECT (raw QUIC offering `h3`).
fn silent_h3_client(server: &QuicServer) -> QuicClient {
    QuicClient::new(QuicClientConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        fingerprints: vec![server.fingerprints()[0].clone()],
        protocols: vec!["h3".into()],
        ..Default::default()
    })
    .unwrap()
}

/// A URL on the server's port at 127.0.0.1 (`localhost` would race `[::1]`, where nothing
/// listens).
fn url(port: u16, scheme: &str) -> url::Url {
    format!("{scheme}://127.0.0.1:{port}/").parse().unwrap()
}

#[tokio::test]
async fn a_connection_without_connect_is_closed_at_the_deadline() {
    let deadline = Duration::from_millis(400);
    let mut server = bounded_server(deadline, None);
    let silent = silent_h3_client(&server);
    let port = server.local_addr().unwrap().port();
    let start = tokio::time::Instant::now();
    let connection = silent.connect(url(port, "moql")).await.unwrap();
    assert_eq!(connection.protocol.as_deref(), Some("h3"));

    let closed = tokio::select! {
        err = connection.session.closed() => err,
        request = server.accept() => panic!("a request without CONNECT: {request:?}"),
        _ = tokio::time::sleep(TEST_TIMEOUT) => panic!("still open after {TEST_TIMEOUT:?}"),
    };
    let elapsed = start.elapsed();
    assert!(elapsed >= deadline, "closed after {elapsed:?}");
    let text = closed.to_string();
    assert!(text.contains("handshake timeout"), "{text}");
    // H3_REQUEST_INCOMPLETE.
    assert!(text.contains("269") || text.contains("0x10d"), "{text}");
}

#[tokio::test]
async fn half_open_connections_hold_a_slot_until_their_deadline() {
    let limit = Arc::new(Semaphore::new(1));
    let mut server = bounded_server(Duration::from_millis(500), Some(limit.clone()));
    let silent = silent_h3_client(&server);
    let port = server.local_addr().unwrap().port();
    let half_open = silent.connect(url(port, "moql")).await.unwrap();
    assert_eq!(
        limit.available_permits(),
        0,
        "the half-open connection holds the slot"
    );

    // A second connection is refused at once, before any handshake.
    let client = client(&server, &[]);
    let err = client.connect(url(port, "https")).await.unwrap_err();
    assert!(
        matches!(err, moq_native::Error::Refused { status: None, .. }),
        "{err}"
    );

    // Once the half-open one is closed at its deadline, the slot is free again.
    let _ = tokio::time::timeout(TEST_TIMEOUT, half_open.session.closed())
        .await
        .expect("the half-open connection was never closed");
    let accepting = tokio::spawn(async move {
        let mut request = next(&mut server).await;
        let permit = request.take_permit();
        let session = request.ok().await.unwrap();
        (server, session, permit)
    });
    let connected = client.connect(url(port, "https")).await;
    let session = connected.expect("a slot after the deadline").session;
    let (_server, accepted, permit) = accepting.await.unwrap();
    let permit = permit.expect("a permit for a limited server");
    assert_eq!(limit.available_permits(), 0);

    // The application holds the slot with the permit, not with the request.
    drop(permit);
    assert_eq!(limit.available_permits(), 1);
    drop((session, accepted));
}
