//! Helpers shared by the integration tests: servers on free ports, pinned clients, echo.
#![allow(dead_code)] // each test binary uses a different subset

use std::time::Duration;

use moq_native::{
    web_transport_quinn::Session, QuicClient, QuicClientConfig, QuicServer, QuicServerConfig,
    Request, ServerTlsConfig,
};

/// Upper bound for any single test; nothing here should take more than a second.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(15);

/// A server on a free dual-stack port with a generated certificate for `localhost` and the
/// loopback IPs, accepting `protocols` (empty = defaults).
pub fn server(protocols: &[&str]) -> QuicServer {
    QuicServer::new(QuicServerConfig {
        bind: "[::]:0".parse().unwrap(),
        tls: ServerTlsConfig {
            generate: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            ..Default::default()
        },
        protocols: protocols.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    })
    .unwrap()
}

/// A client pinning `server`'s certificate and offering `protocols` (empty = defaults).
pub fn client(server: &QuicServer, protocols: &[&str]) -> QuicClient {
    QuicClient::new(QuicClientConfig {
        fingerprints: vec![server.fingerprints()[0].clone()],
        protocols: protocols.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    })
    .unwrap()
}

/// Accept the next request and return it (failing the test after TEST_TIMEOUT).
pub async fn next(server: &mut QuicServer) -> Request {
    tokio::time::timeout(TEST_TIMEOUT, server.accept())
        .await
        .expect("accept timed out")
        .expect("server closed")
}

/// Echo every byte of the first bidi stream the peer opens.
pub async fn echo_once(session: Session) {
    let (mut send, mut recv) = session.accept_bi().await.unwrap();
    let data = recv.read_to_end(64 * 1024).await.unwrap();
    send.write_all(&data).await.unwrap();
    send.finish().unwrap();
    // Keep the session open until the peer has read the echo and hung up.
    let _ = session.closed().await;
}

/// Open a bidi stream, send `data`, and return what comes back.
pub async fn roundtrip(session: &Session, data: &[u8]) -> Vec<u8> {
    let (mut send, mut recv) = session.open_bi().await.unwrap();
    send.write_all(data).await.unwrap();
    send.finish().unwrap();
    recv.read_to_end(64 * 1024).await.unwrap()
}

/// What the server saw of one request.
#[derive(Debug)]
pub struct Seen {
    pub protocol: Option<String>,
    pub transport: moq_native::Transport,
    pub url: url::Url,
    pub remote: std::net::SocketAddr,
}

/// Accept `count` requests in turn, echo one stream on each, and hand the server back with
/// what was seen once each session has closed.
pub fn serve(
    mut server: QuicServer,
    count: usize,
) -> tokio::task::JoinHandle<(QuicServer, Vec<Seen>)> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..count {
            let request = next(&mut server).await;
            seen.push(Seen {
                protocol: request.protocol().map(str::to_string),
                transport: request.transport(),
                url: request.url().clone(),
                remote: request.remote_addr(),
            });
            echo_once(request.ok().await.unwrap()).await;
        }
        (server, seen)
    })
}
