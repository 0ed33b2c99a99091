//! One server bound to `[::]:0` serves IPv4 and IPv6 clients, over WebTransport and raw QUIC.

mod common;

use std::net::IpAddr;

use common::{client, roundtrip, serve, server, TEST_TIMEOUT};
use moq_native::{QuicClient, QuicClientConfig};
use tokio::time::timeout;

#[tokio::test]
async fn ipv4_and_ipv6_clients_reach_a_dual_stack_server() {
    timeout(TEST_TIMEOUT, async {
        let server = server(&[]);
        let port = server.local_addr().unwrap().port();
        let client = client(&server, &[]);
        let serving = serve(server, 4);

        for url in [
            format!("https://127.0.0.1:{port}/v4"),
            format!("https://[::1]:{port}/v6"),
            format!("moql://127.0.0.1:{port}/v4"),
            format!("moql://[::1]:{port}/v6"),
        ] {
            let conn = client.connect(url.parse().unwrap()).await.unwrap();
            assert_eq!(
                roundtrip(&conn.session, url.as_bytes()).await,
                url.as_bytes()
            );
            conn.session.close(0, b"done");
        }

        let (_, seen) = serving.await.unwrap();
        let families: Vec<bool> = seen.iter().map(|s| s.remote.is_ipv4()).collect();
        // IPv4 peers of the dual-stack socket are reported as plain IPv4, not ::ffff:a.b.c.d.
        assert_eq!(families, [true, false, true, false]);
        assert_eq!(seen[0].remote.ip(), "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(seen[1].remote.ip(), "::1".parse::<IpAddr>().unwrap());
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn ipv4_only_client_reaches_localhost() {
    timeout(TEST_TIMEOUT, async {
        let server = server(&[]);
        let port = server.local_addr().unwrap().port();
        let client = QuicClient::new(QuicClientConfig {
            bind: "0.0.0.0:0".parse().unwrap(),
            fingerprints: server.fingerprints().to_vec(),
            ..Default::default()
        })
        .unwrap();
        let serving = serve(server, 1);

        // `localhost` may resolve to ::1 first; an IPv4 socket skips it.
        let conn = client
            .connect(format!("https://localhost:{port}/").parse().unwrap())
            .await
            .unwrap();
        assert_eq!(roundtrip(&conn.session, b"v4").await, b"v4");
        conn.session.close(0, b"done");

        let (_, seen) = serving.await.unwrap();
        assert!(seen[0].remote.is_ipv4());
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn localhost_reaches_an_ipv4_only_server() {
    timeout(TEST_TIMEOUT, async {
        // A server on 127.0.0.1 only, reached by name whether `localhost` lists ::1 first or not.
        let mut server = moq_native::QuicServer::new(moq_native::QuicServerConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            tls: moq_native::ServerTlsConfig {
                generate: vec!["localhost".into()],
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
        let port = server.local_addr().unwrap().port();
        let client = client(&server, &[]);
        let accepting = tokio::spawn(async move {
            let request = common::next(&mut server).await;
            let session = request.ok().await.unwrap();
            common::echo_once(session).await;
        });

        let conn = client
            .connect(format!("https://localhost:{port}/").parse().unwrap())
            .await
            .unwrap();
        assert_eq!(roundtrip(&conn.session, b"fallback").await, b"fallback");
        conn.session.close(0, b"done");
        accepting.await.unwrap();
    })
    .await
    .unwrap();
}
