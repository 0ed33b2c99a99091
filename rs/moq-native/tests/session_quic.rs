//! Raw QUIC sessions: ALPN negotiation, SETUP path, rejection, handshake failures.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{client, next, roundtrip, serve, server, TEST_TIMEOUT};
use moq_native::{web_transport_quinn::WebTransportError, Transport};
use tokio::time::timeout;
use url::Url;

#[tokio::test]
async fn raw_quic_negotiates_the_offered_alpn_and_carries_the_path() {
    timeout(TEST_TIMEOUT, async {
        let server = server(&[]);
        let port = server.local_addr().unwrap().port();
        let client = client(&server, &["moq-lite-04"]);
        let serving = serve(server, 1);

        let url: Url = format!("moql://localhost:{port}/anon?jwt=abc")
            .parse()
            .unwrap();
        let conn = client.connect(url).await.unwrap();
        assert_eq!(conn.protocol.as_deref(), Some("moq-lite-04"));
        assert_eq!(conn.setup_path.as_deref(), Some("/anon?jwt=abc"));
        assert_eq!(roundtrip(&conn.session, b"raw").await, b"raw");
        conn.session.close(0, b"done");

        let (_, seen) = serving.await.unwrap();
        assert_eq!(seen[0].protocol.as_deref(), Some("moq-lite-04"));
        assert_eq!(seen[0].transport, Transport::Quic);
        // No request URI on raw QUIC: the server's URL names the peer and has no path.
        assert_eq!(seen[0].url.scheme(), "moql");
        assert_eq!(seen[0].url.path(), "/");
        assert_eq!(seen[0].url.port(), Some(seen[0].remote.port()));
        assert!(seen[0].remote.ip().is_loopback());
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn raw_quic_server_preference_picks_among_offered_alpns() {
    timeout(TEST_TIMEOUT, async {
        let server = server(&[]);
        let port = server.local_addr().unwrap().port();
        // The TLS server picks by its own order (spec §1.2), unlike WebTransport.
        let client = client(&server, &["moql", "moq-lite-03", "moq-lite-05"]);
        let serving = serve(server, 1);

        let url: Url = format!("moqt://127.0.0.1:{port}").parse().unwrap();
        let conn = client.connect(url).await.unwrap();
        assert_eq!(conn.protocol.as_deref(), Some("moq-lite-05"));
        assert_eq!(conn.setup_path, None, "no path and no query");
        assert_eq!(roundtrip(&conn.session, b"x").await, b"x");
        conn.session.close(0, b"done");

        let (_, seen) = serving.await.unwrap();
        assert_eq!(seen[0].protocol.as_deref(), Some("moq-lite-05"));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn setup_path_is_none_for_the_root_and_keeps_a_bare_query() {
    timeout(TEST_TIMEOUT, async {
        let server = server(&[]);
        let port = server.local_addr().unwrap().port();
        let client = client(&server, &[]);
        let serving = serve(server, 2);

        let conn = client
            .connect(format!("moql://[::1]:{port}/").parse().unwrap())
            .await
            .unwrap();
        assert_eq!(conn.setup_path, None);
        assert_eq!(roundtrip(&conn.session, b"1").await, b"1");
        conn.session.close(0, b"done");

        let conn = client
            .connect(format!("moql://[::1]:{port}?jwt=t").parse().unwrap())
            .await
            .unwrap();
        assert_eq!(conn.setup_path.as_deref(), Some("/?jwt=t"));
        assert_eq!(roundtrip(&conn.session, b"2").await, b"2");
        conn.session.close(0, b"done");

        serving.await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn raw_quic_reject_closes_the_connection_with_the_status() {
    timeout(TEST_TIMEOUT, async {
        let mut server = server(&[]);
        let port = server.local_addr().unwrap().port();
        let client = client(&server, &[]);
        let rejecting = tokio::spawn(async move {
            let request = next(&mut server).await;
            request.reject(401).await;
            server
        });

        // Raw QUIC has no request to answer, so the rejection arrives on the session.
        let conn = client
            .connect(format!("moql://localhost:{port}/").parse().unwrap())
            .await
            .unwrap();
        let err = conn.session.closed().await;
        match err {
            moq_native::web_transport_quinn::SessionError::WebTransportError(
                WebTransportError::Closed(code, reason),
            ) => {
                assert_eq!(code, 401);
                assert_eq!(reason, "Unauthorized");
            }
            other => panic!("unexpected close: {other:?}"),
        }
        rejecting.await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn handshake_without_a_common_alpn_fails_and_the_server_goes_on() {
    timeout(TEST_TIMEOUT, async {
        let server = server(&["moq-lite-05"]);
        let addr =
            std::net::SocketAddr::from(([127, 0, 0, 1], server.local_addr().unwrap().port()));
        let good = client(&server, &[]);
        let old = client(&server, &["moq-lite-04", "moql"]);
        // Accepting from the start: handshakes only run while the server accepts.
        let serving = serve(server, 1);

        // A raw QUIC client offering no ALPN at all.
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny))
        .with_no_client_auth();
        tls.alpn_protocols = Vec::new();
        let config = quinn::ClientConfig::new(Arc::new(
            quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap(),
        ));
        let endpoint = quinn::Endpoint::client("[::]:0".parse().unwrap()).unwrap();
        let err = endpoint
            .connect_with(config, addr, "localhost")
            .unwrap()
            .await
            .unwrap_err();
        assert!(
            matches!(err, quinn::ConnectionError::ConnectionClosed(_)),
            "{err:?}"
        );

        // A client offering only protocols this server does not accept.
        let err = old
            .connect(
                format!("moql://127.0.0.1:{}/", addr.port())
                    .parse()
                    .unwrap(),
            )
            .await
            .unwrap_err();
        // The server's TLS refuses the ALPNs (no_application_protocol alert).
        assert!(matches!(err, moq_native::Error::Tls { .. }), "{err}");

        // Neither surfaced as a request: the next one accepted is this good client's.
        let conn = good
            .connect(
                format!("moql://127.0.0.1:{}/", addr.port())
                    .parse()
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(roundtrip(&conn.session, b"ok").await, b"ok");
        conn.session.close(0, b"done");

        let (_, seen) = serving.await.unwrap();
        assert_eq!(seen[0].protocol.as_deref(), Some("moq-lite-05"));
    })
    .await
    .unwrap();
}

#[derive(Debug)]
struct AcceptAny;

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `--quic-max-mtu` raises MTU discovery's ceiling and what the endpoint accepts: on loopback
/// (MTU 64 KiB) a connection between two endpoints configured for 9000 bytes grows its packets
/// past the Ethernet-sized default, while one with the defaults stays at or under 1452.
#[tokio::test]
async fn max_mtu_lets_a_path_that_carries_jumbo_packets_use_them() {
    use moq_native::web_transport_quinn::quinn;

    timeout(TEST_TIMEOUT, async {
        let quic = moq_native::QuicConfig {
            max_mtu: 9000,
            ..Default::default()
        };
        let jumbo_server = moq_native::QuicServer::new(moq_native::QuicServerConfig {
            bind: "[::]:0".parse().unwrap(),
            quic: quic.clone(),
            tls: moq_native::ServerTlsConfig {
                generate: vec!["localhost".into()],
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
        let jumbo_client = moq_native::QuicClient::new(moq_native::QuicClientConfig {
            fingerprints: vec![jumbo_server.fingerprints()[0].clone()],
            quic,
            ..Default::default()
        })
        .unwrap();
        let plain_server = server(&[]);
        let plain_client = client(&plain_server, &[]);

        let mut conns = Vec::new();
        let mut serving = Vec::new();
        for (server, client) in [(jumbo_server, jumbo_client), (plain_server, plain_client)] {
            let port = server.local_addr().unwrap().port();
            serving.push(serve(server, 1));
            let url: Url = format!("moql://localhost:{port}").parse().unwrap();
            conns.push(client.connect(url).await.unwrap());
        }
        let mtu = |i: usize| quinn::Connection::stats(&conns[i].session).path.current_mtu;

        // PLPMTUD probes on its own, data or not.
        while mtu(0) <= 1452 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(mtu(0) > 1452 && mtu(0) <= 9000, "jumbo MTU {}", mtu(0));
        // Data flows in the large packets (the server's echo comes back in them too).
        let big = vec![7u8; 60_000];
        let sent = quinn::Connection::stats(&conns[0].session).udp_tx;
        assert_eq!(roundtrip(&conns[0].session, &big).await, big);
        let after = quinn::Connection::stats(&conns[0].session).udp_tx;
        let datagrams = after.datagrams - sent.datagrams;
        assert!(
            datagrams < 60_000 / 1452,
            "60 KB took {datagrams} datagrams at MTU {}",
            mtu(0)
        );
        assert_eq!(roundtrip(&conns[1].session, &big).await, big);
        assert!(mtu(1) <= 1452, "default MTU {}", mtu(1));

        for (conn, serving) in conns.iter().zip(serving) {
            conn.session.close(0, b"done");
            serving.await.unwrap();
        }
    })
    .await
    .unwrap();
}
