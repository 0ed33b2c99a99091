//! WebTransport sessions: protocol negotiation, `http://` fingerprint pinning, rejection, SNI.

mod common;

use common::{client, roundtrip, serve, server, TEST_TIMEOUT};
use moq_native::{
    serve_fingerprint, QuicClient, QuicClientConfig, QuicServer, QuicServerConfig, ServerTlsConfig,
    Transport,
};
use tokio::time::timeout;
use url::Url;

/// Connect over WebTransport offering `offered`; return (client's protocol, server's protocol).
async fn negotiate(
    server_protocols: &[&str],
    offered: &[&str],
) -> (Option<String>, Option<String>) {
    let server = server(server_protocols);
    let port = server.local_addr().unwrap().port();
    let client = client(&server, offered);
    let serving = serve(server, 1);

    let url: Url = format!("https://localhost:{port}/").parse().unwrap();
    let conn = client.connect(url).await.unwrap();
    assert_eq!(roundtrip(&conn.session, b"ping").await, b"ping");
    conn.session.close(0, b"done");

    let (_, seen) = serving.await.unwrap();
    (conn.protocol, seen[0].protocol.clone())
}

#[tokio::test]
async fn webtransport_selects_first_offered_protocol_and_echoes() {
    timeout(TEST_TIMEOUT, async {
        let server = server(&[]);
        let port = server.local_addr().unwrap().port();
        let client = client(&server, &["moq-lite-05", "moql"]);
        let serving = serve(server, 1);

        let url: Url = format!("https://localhost:{port}/anon?jwt=abc")
            .parse()
            .unwrap();
        let conn = client.connect(url).await.unwrap();
        assert_eq!(conn.protocol.as_deref(), Some("moq-lite-05"));
        assert_eq!(conn.session.protocol(), Some("moq-lite-05"));
        assert_eq!(
            conn.setup_path, None,
            "WebTransport carries the path in the URL"
        );
        assert_eq!(roundtrip(&conn.session, b"hello moq").await, b"hello moq");
        conn.session.close(0, b"done");

        let (_, seen) = serving.await.unwrap();
        assert_eq!(seen[0].protocol.as_deref(), Some("moq-lite-05"));
        assert_eq!(seen[0].transport, Transport::WebTransport);
        assert_eq!(
            seen[0].url.as_str(),
            format!("https://localhost:{port}/anon?jwt=abc")
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn webtransport_client_order_beats_server_order() {
    timeout(TEST_TIMEOUT, async {
        let (client, server) = negotiate(&[], &["moq-lite-03", "moq-lite-05"]).await;
        assert_eq!(client.as_deref(), Some("moq-lite-03"));
        assert_eq!(server.as_deref(), Some("moq-lite-03"));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn webtransport_offering_only_moql_selects_moql() {
    timeout(TEST_TIMEOUT, async {
        let (client, server) = negotiate(&[], &["moql"]).await;
        assert_eq!(client.as_deref(), Some("moql"));
        assert_eq!(server.as_deref(), Some("moql"));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn webtransport_offering_only_unknown_protocols_is_legacy() {
    timeout(TEST_TIMEOUT, async {
        // spec §1.3: no match still accepts, with no WT-Protocol.
        let (client, server) = negotiate(&["moq-lite-05"], &["moq-lite-04", "moq-lite-99"]).await;
        assert_eq!(client, None);
        assert_eq!(server, None);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn webtransport_offering_nothing_is_legacy() {
    timeout(TEST_TIMEOUT, async {
        let server = server(&[]);
        let port = server.local_addr().unwrap().port();
        let hash: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&server.fingerprints()[0][2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let serving = serve(server, 1);

        // A plain WebTransport client sends no WT-Available-Protocols header at all.
        let plain = moq_native::web_transport_quinn::ClientBuilder::new()
            .with_server_certificate_hashes(vec![hash])
            .unwrap();
        let url: Url = format!("https://127.0.0.1:{port}/legacy").parse().unwrap();
        let session = plain.connect(url).await.unwrap();
        assert_eq!(session.protocol(), None);
        assert_eq!(roundtrip(&session, b"old").await, b"old");
        session.close(0, b"done");

        let (_, seen) = serving.await.unwrap();
        assert_eq!(seen[0].protocol, None);
        assert_eq!(seen[0].url.path(), "/legacy");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn http_url_fetches_and_pins_the_fingerprint() {
    timeout(TEST_TIMEOUT, async {
        // The same port number on TCP (fingerprint) and UDP (QUIC); retry if TCP's is taken.
        let (server, listener) = loop {
            let server = server(&[]);
            let port = server.local_addr().unwrap().port();
            if let Ok(listener) = tokio::net::TcpListener::bind(("::", port)).await {
                break (server, listener);
            }
        };
        let port = server.local_addr().unwrap().port();
        let http = tokio::spawn(serve_fingerprint(
            listener,
            server.fingerprints()[0].clone(),
        ));
        let serving = serve(server, 1);

        // Nothing pinned up front: the only way to trust the self-signed cert is the fetch.
        let client = QuicClient::new(QuicClientConfig::default()).unwrap();
        let url: Url = format!("http://localhost:{port}/dev?jwt=x")
            .parse()
            .unwrap();
        let conn = client.connect(url).await.unwrap();
        assert_eq!(conn.protocol.as_deref(), Some("moq-lite-06"));
        assert_eq!(roundtrip(&conn.session, b"dev").await, b"dev");
        conn.session.close(0, b"done");

        let (_, seen) = serving.await.unwrap();
        assert_eq!(
            seen[0].url.as_str(),
            format!("https://localhost:{port}/dev?jwt=x")
        );
        http.abort();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn https_without_pin_or_root_is_refused() {
    timeout(TEST_TIMEOUT, async {
        let server = server(&[]);
        let port = server.local_addr().unwrap().port();
        let serving = serve(server, 1);

        let client = QuicClient::new(QuicClientConfig::default()).unwrap();
        let url: Url = format!("https://127.0.0.1:{port}/").parse().unwrap();
        let err = client.connect(url).await.unwrap_err();
        let text = format!("{:#}", anyhow::Error::from(err));
        assert!(text.contains("TLS handshake"), "{text}");
        assert!(text.contains("invalid peer certificate"), "{text}");

        // --tls-disable-verify gets through, and the server never saw the refused attempt.
        let insecure = QuicClient::new(QuicClientConfig {
            disable_verify: true,
            ..Default::default()
        })
        .unwrap();
        let url: Url = format!("https://127.0.0.1:{port}/ok").parse().unwrap();
        let conn = insecure.connect(url).await.unwrap();
        assert_eq!(roundtrip(&conn.session, b"ok").await, b"ok");
        conn.session.close(0, b"done");

        let (_, seen) = serving.await.unwrap();
        assert_eq!(seen[0].url.path(), "/ok");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn webtransport_reject_reaches_the_client_as_http_status() {
    timeout(TEST_TIMEOUT, async {
        let mut server = server(&[]);
        let port = server.local_addr().unwrap().port();
        let client = client(&server, &[]);
        let rejecting = tokio::spawn(async move {
            let request = common::next(&mut server).await;
            assert_eq!(request.url().path(), "/private");
            request.reject(403).await;
        });

        let url: Url = format!("https://localhost:{port}/private").parse().unwrap();
        let err = client.connect(url).await.unwrap_err();
        assert!(
            matches!(
                err,
                moq_native::Error::Refused {
                    status: Some(403),
                    ..
                }
            ),
            "{err:?}"
        );
        rejecting.await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn sni_selects_the_matching_certificate() {
    timeout(TEST_TIMEOUT, async {
        // A PEM certificate for another name comes first, the generated one second.
        let dir = std::env::temp_dir().join(format!("moq-native-sni-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["other.test".to_string()]).unwrap();
        std::fs::write(dir.join("cert.pem"), other.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), other.signing_key.serialize_pem()).unwrap();

        let server = QuicServer::new(QuicServerConfig {
            bind: "[::]:0".parse().unwrap(),
            tls: ServerTlsConfig {
                cert: vec![dir.join("cert.pem")],
                key: vec![dir.join("key.pem")],
                generate: vec!["localhost".into()],
            },
            ..Default::default()
        })
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();

        let port = server.local_addr().unwrap().port();
        let fingerprints = server.fingerprints().to_vec();
        assert_eq!(fingerprints.len(), 2);
        let serving = serve(server, 2);

        // SNI "localhost" picks the generated certificate: pin only that one.
        let by_name = QuicClient::new(QuicClientConfig {
            fingerprints: vec![fingerprints[1].clone()],
            ..Default::default()
        })
        .unwrap();
        let conn = by_name
            .connect(format!("https://localhost:{port}/").parse().unwrap())
            .await
            .unwrap();
        assert_eq!(roundtrip(&conn.session, b"a").await, b"a");
        conn.session.close(0, b"done");

        // An IP literal sends no SNI: the first certificate is served.
        let by_default = QuicClient::new(QuicClientConfig {
            fingerprints: vec![fingerprints[0].clone()],
            ..Default::default()
        })
        .unwrap();
        let conn = by_default
            .connect(format!("https://127.0.0.1:{port}/").parse().unwrap())
            .await
            .unwrap();
        assert_eq!(roundtrip(&conn.session, b"b").await, b"b");
        conn.session.close(0, b"done");

        serving.await.unwrap();
    })
    .await
    .unwrap();
}
