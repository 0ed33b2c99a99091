//! Generated certificates: what browsers require for `serverCertificateHashes`.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{client, roundtrip, serve, server, TEST_TIMEOUT};
use rustls::pki_types::CertificateDer;
use tokio::time::timeout;
use x509_parser::{extensions::GeneralName, prelude::*};

/// The certificate chain the server presents to a client.
async fn served_chain() -> (Vec<CertificateDer<'static>>, String) {
    let server = server(&[]);
    let port = server.local_addr().unwrap().port();
    let fingerprint = server.fingerprints()[0].clone();
    let client = client(&server, &[]);
    let serving = serve(server, 1);

    let conn = client
        .connect(format!("https://localhost:{port}/").parse().unwrap())
        .await
        .unwrap();
    let chain = conn
        .session
        .peer_identity()
        .unwrap()
        .downcast::<Vec<CertificateDer<'static>>>()
        .unwrap();
    assert_eq!(roundtrip(&conn.session, b"x").await, b"x");
    conn.session.close(0, b"done");
    serving.await.unwrap();
    (*chain, fingerprint)
}

#[tokio::test]
async fn generated_certificate_is_p256_valid_at_most_14_days_with_all_names() {
    timeout(TEST_TIMEOUT, async {
        let (chain, fingerprint) = served_chain().await;
        assert_eq!(chain.len(), 1, "self-signed: no intermediates");

        let digest: String = {
            let hash = moq_native::web_transport_quinn::crypto::sha256(
                &std::sync::Arc::new(rustls::crypto::ring::default_provider()),
                &chain[0],
            );
            hash.as_ref().iter().map(|b| format!("{b:02x}")).collect()
        };
        assert_eq!(
            digest, fingerprint,
            "fingerprint = SHA-256 of the served DER"
        );

        let (_, cert) = X509Certificate::from_der(&chain[0]).unwrap();

        let validity = cert.validity();
        let seconds = validity.not_after.timestamp() - validity.not_before.timestamp();
        assert!(seconds <= 14 * 24 * 3600, "valid for {seconds} s");
        assert!(seconds >= 13 * 24 * 3600, "valid for {seconds} s");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(validity.not_before.timestamp() <= now && now < validity.not_after.timestamp());

        // ECDSA over P-256, signed with SHA-256.
        let spki = cert.public_key();
        assert_eq!(
            spki.algorithm.algorithm,
            x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY
        );
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .unwrap()
            .as_oid()
            .unwrap();
        assert_eq!(curve, x509_parser::oid_registry::OID_EC_P256);
        assert_eq!(
            cert.signature_algorithm.algorithm,
            x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA256
        );

        let names = &cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names;
        assert!(
            names.contains(&GeneralName::DNSName("localhost")),
            "{names:?}"
        );
        assert!(
            names.contains(&GeneralName::IPAddress(&[127, 0, 0, 1])),
            "{names:?}"
        );
        let v6 = "::1".parse::<std::net::Ipv6Addr>().unwrap().octets();
        assert!(names.contains(&GeneralName::IPAddress(&v6)), "{names:?}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_new_certificate_is_generated_at_every_start() {
    timeout(TEST_TIMEOUT, async {
        let a = server(&[]);
        let b = server(&[]);
        assert_ne!(a.fingerprints(), b.fingerprints());
    })
    .await
    .unwrap();
}
