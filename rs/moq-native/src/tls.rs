//! TLS: server certificates (PEM files or self-signed), SNI selection, fingerprints, and the
//! client's certificate verifier (roots, pinned fingerprints, or none).

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};

use rustls::{
    client::{
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
        WebPkiServerVerifier,
    },
    crypto::CryptoProvider,
    pki_types::{
        pem::PemObject, CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime,
    },
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
    DigitallySignedStruct, SignatureScheme,
};

use crate::Error;

/// Server certificates: PEM chain + key pairs, and/or self-signed ones generated at start-up.
///
/// Flags: `--tls-cert PATH --tls-key PATH` (repeatable, in pairs) and `--tls-generate HOSTNAME`
/// (repeatable). With several certificates the one matching the client's SNI is served,
/// else the first (PEM pairs come before generated ones).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ServerTlsConfig {
    /// PEM certificate chain (leaf first); pairs with the --tls-key at the same position.
    #[arg(
        long = "tls-cert",
        value_name = "PATH",
        env = "MOQ_TLS_CERT",
        value_delimiter = ','
    )]
    pub cert: Vec<PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for the --tls-cert at the same position.
    #[arg(
        long = "tls-key",
        value_name = "PATH",
        env = "MOQ_TLS_KEY",
        value_delimiter = ','
    )]
    pub key: Vec<PathBuf>,

    /// Generate a self-signed ECDSA P-256 certificate valid for these hostnames (or IP
    /// addresses) for under 14 days, as browsers require for `serverCertificateHashes`.
    /// All hostnames go into one certificate; a new one is made at every start (and only
    /// then: a server up for more than 13 days needs a restart).
    #[arg(
        long = "tls-generate",
        value_name = "HOSTNAME",
        env = "MOQ_TLS_GENERATE",
        value_delimiter = ','
    )]
    pub generate: Vec<String>,
}

/// Validity of generated certificates: Chromium rejects pinned (`serverCertificateHashes`)
/// certificates valid for more than 14 days.
pub(crate) const GENERATED_VALIDITY: Duration = Duration::from_secs(14 * 24 * 3600 - 3600);

/// How far in the past generated certificates start, to tolerate client clock skew.
/// Counted inside [`GENERATED_VALIDITY`], so the total stays under 14 days.
const GENERATED_BACKDATE: Duration = Duration::from_secs(3600);

/// The ring provider, used for every TLS config this crate builds.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// One servable certificate.
#[derive(Debug, Clone)]
struct Entry {
    key: Arc<CertifiedKey>,
    /// Hostnames to match SNI against, for generated certificates. `None`: ask webpki.
    names: Option<Vec<String>>,
}

/// The server's certificates, chosen by SNI.
#[derive(Debug, Clone)]
pub(crate) struct ServerCerts {
    entries: Vec<Entry>,
}

impl ServerCerts {
    /// Load and generate the configured certificates; at least one is required.
    pub(crate) fn load(config: &ServerTlsConfig) -> Result<Self, Error> {
        if config.cert.len() != config.key.len() {
            return Err(Error::config(format!(
                "--tls-cert and --tls-key must come in pairs ({} certs, {} keys)",
                config.cert.len(),
                config.key.len()
            )));
        }

        let provider = provider();
        let mut entries = Vec::new();

        for (cert, key) in config.cert.iter().zip(&config.key) {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|err| {
                    Error::certificate(
                        format!("failed to read certificates from {}", cert.display()),
                        err,
                    )
                })?;
            if chain.is_empty() {
                return Err(Error::Certificate {
                    what: format!("no certificate in {}", cert.display()),
                    source: None,
                });
            }
            let der = PrivateKeyDer::from_pem_file(key).map_err(|err| {
                Error::certificate(
                    format!("failed to read private key from {}", key.display()),
                    err,
                )
            })?;
            let certified = CertifiedKey::from_der(chain, der, &provider).map_err(|err| {
                let what = format!(
                    "{} and {} do not form a usable pair",
                    cert.display(),
                    key.display()
                );
                Error::certificate(what, err)
            })?;
            entries.push(Entry {
                key: Arc::new(certified),
                names: None,
            });
        }

        if !config.generate.is_empty() {
            let (chain, der) = generate(&config.generate)?;
            let certified = CertifiedKey::from_der(chain, der, &provider)
                .map_err(|err| Error::certificate("generated certificate unusable", err))?;
            let names = config
                .generate
                .iter()
                .map(|name| name.to_ascii_lowercase())
                .collect();
            entries.push(Entry {
                key: Arc::new(certified),
                names: Some(names),
            });
        }

        if entries.is_empty() {
            return Err(Error::config(
                "no TLS certificate: use --tls-cert/--tls-key or --tls-generate",
            ));
        }
        Ok(Self { entries })
    }

    /// Hex SHA-256 of each leaf certificate, in serving-preference order.
    pub(crate) fn fingerprints(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|entry| fingerprint(&entry.key.cert[0]))
            .collect()
    }

    /// The rustls server config: TLS 1.3 only (QUIC), these certificates, these ALPNs.
    pub(crate) fn server_config(self, alpns: &[String]) -> Result<rustls::ServerConfig, Error> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(rustls_config)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(self));
        config.alpn_protocols = alpns.iter().map(|alpn| alpn.as_bytes().to_vec()).collect();
        Ok(config)
    }
}

impl ResolvesServerCert for ServerCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let by_sni = hello.server_name().and_then(|sni| {
            let sni = sni.to_ascii_lowercase();
            self.entries.iter().find(|entry| matches_name(entry, &sni))
        });
        // No SNI (IP-literal URLs never send one) or no match: the first certificate.
        Some(by_sni.unwrap_or(&self.entries[0]).key.clone())
    }
}

/// Whether a certificate is valid for a (lowercase) SNI hostname.
fn matches_name(entry: &Entry, sni: &str) -> bool {
    if let Some(names) = &entry.names {
        return names.iter().any(|name| name == sni);
    }
    let Ok(name) = ServerName::try_from(sni) else {
        return false;
    };
    let Ok(cert) = webpki::EndEntityCert::try_from(&entry.key.cert[0]) else {
        return false;
    };
    cert.verify_is_valid_for_subject_name(&name).is_ok()
}

/// A self-signed ECDSA P-256 certificate for `hostnames` (IP SANs for those that parse as
/// IP addresses), valid from one hour ago for [`GENERATED_VALIDITY`].
pub(crate) fn generate(
    hostnames: &[String],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
    let failed = |err: rcgen::Error| {
        Error::certificate(
            format!("cannot generate a certificate for {hostnames:?}"),
            err,
        )
    };
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(failed)?;

    // `new` makes IP address SANs out of the names that parse as IP addresses.
    let mut params = rcgen::CertificateParams::new(hostnames.to_vec()).map_err(failed)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostnames[0].clone());
    let start = SystemTime::now() - GENERATED_BACKDATE;
    params.not_before = start.into();
    params.not_after = (start + GENERATED_VALIDITY).into();

    let cert = params.self_signed(&key).map_err(failed)?;
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((vec![cert.der().clone()], der))
}

/// Lowercase hex SHA-256 of a certificate's DER, as browsers' `serverCertificateHashes` use.
pub(crate) fn fingerprint(cert: &CertificateDer<'_>) -> String {
    hex(web_transport_quinn::crypto::sha256(&provider(), cert).as_ref())
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parse a hex SHA-256 fingerprint (64 hex digits; `:` separators and case are ignored).
pub(crate) fn parse_fingerprint(hex: &str) -> Result<Vec<u8>, Error> {
    let invalid = |what: String| Error::Certificate { what, source: None };
    let digits: Vec<u8> = hex.trim().bytes().filter(|b| *b != b':').collect();
    if digits.len() != 64 {
        return Err(invalid(format!(
            "a SHA-256 fingerprint has 64 hex digits, got {hex:?}"
        )));
    }
    // Digits only: `u8::from_str_radix` would also take a sign ("+1").
    let nibble = |digit: u8| char::from(digit).to_digit(16);
    digits
        .chunks(2)
        .map(|pair| match (nibble(pair[0]), nibble(pair[1])) {
            (Some(high), Some(low)) => Ok((high * 16 + low) as u8),
            _ => Err(invalid(format!("invalid hex in fingerprint {hex:?}"))),
        })
        .collect()
}

/// A rustls configuration error (a protocol version or ALPN the provider refuses).
fn rustls_config(err: rustls::Error) -> Error {
    Error::Config {
        what: "invalid TLS configuration".into(),
        source: Some(err.into()),
    }
}

/// Client certificate verification: pinned fingerprints, then the root store.
#[derive(Debug)]
pub(crate) struct Verifier {
    provider: Arc<CryptoProvider>,
    /// Accept a certificate whose SHA-256 is one of these, whatever its issuer or names.
    pub(crate) fingerprints: Vec<Vec<u8>>,
    /// Standard WebPKI verification; `None` when there are no roots at all.
    roots: Option<Arc<WebPkiServerVerifier>>,
    /// Accept any certificate (`--tls-disable-verify`).
    disabled: bool,
}

impl Verifier {
    /// System roots plus the PEM files in `extra`.
    pub(crate) fn new(
        extra: &[PathBuf],
        fingerprints: &[String],
        disabled: bool,
    ) -> Result<Self, Error> {
        let provider = provider();
        let mut roots = rustls::RootCertStore::empty();

        let native = rustls_native_certs::load_native_certs();
        for err in native.errors {
            tracing::warn!(%err, "failed to load system root certificates");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "loaded system root certificates");

        for path in extra {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|err| {
                    let what = format!("failed to read root certificates from {}", path.display());
                    Error::certificate(what, err)
                })?;
            if certs.is_empty() {
                return Err(Error::Certificate {
                    what: format!("no certificate in {}", path.display()),
                    source: None,
                });
            }
            for cert in certs {
                roots.add(cert).map_err(|err| {
                    let what = format!("invalid root certificate in {}", path.display());
                    Error::certificate(what, err)
                })?;
            }
        }

        let roots = match roots.is_empty() {
            true => None,
            false => Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|err| Error::certificate("unusable root certificates", err))?,
            ),
        };
        let fingerprints = fingerprints
            .iter()
            .map(|hex| parse_fingerprint(hex))
            .collect::<Result<_, _>>()?;

        Ok(Self {
            provider,
            fingerprints,
            roots,
            disabled,
        })
    }

    /// The same verifier with one more pinned fingerprint.
    pub(crate) fn with_fingerprint(&self, fingerprint: Vec<u8>) -> Self {
        let mut fingerprints = self.fingerprints.clone();
        fingerprints.push(fingerprint);
        Self {
            provider: self.provider.clone(),
            fingerprints,
            roots: self.roots.clone(),
            disabled: self.disabled,
        }
    }

    /// A rustls client config using this verifier, offering `alpns`.
    pub(crate) fn client_config(
        self: &Arc<Self>,
        alpns: &[String],
    ) -> Result<rustls::ClientConfig, Error> {
        let mut config = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(rustls_config)?
            .dangerous()
            .with_custom_certificate_verifier(self.clone())
            .with_no_client_auth();
        config.alpn_protocols = alpns.iter().map(|alpn| alpn.as_bytes().to_vec()).collect();
        Ok(config)
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.disabled {
            return Ok(ServerCertVerified::assertion());
        }

        let hash = web_transport_quinn::crypto::sha256(&self.provider, end_entity);
        if self
            .fingerprints
            .iter()
            .any(|pin| pin.as_slice() == hash.as_ref())
        {
            return Ok(ServerCertVerified::assertion());
        }

        match &self.roots {
            Some(roots) => {
                roots.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        }
    }

    // The handshake signature is checked even when verification is disabled or pinned:
    // it proves the peer holds the certificate's key.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_round_trip() {
        let (chain, _) = generate(&["localhost".into()]).unwrap();
        let hex = fingerprint(&chain[0]);
        assert_eq!(hex.len(), 64);
        assert_eq!(hex, hex.to_lowercase());
        let bytes = parse_fingerprint(&hex.to_uppercase()).unwrap();
        assert_eq!(bytes.len(), 32);
        assert!(parse_fingerprint("abcd").is_err());
        assert!(parse_fingerprint(&"zz".repeat(32)).is_err());
        assert!(
            parse_fingerprint(&"+1".repeat(32)).is_err(),
            "a sign is not a digit"
        );
    }

    #[test]
    fn generated_is_selected_by_sni_and_first_is_fallback() {
        let config = ServerTlsConfig {
            generate: vec!["Example.com".into(), "127.0.0.1".into()],
            ..Default::default()
        };
        let certs = ServerCerts::load(&config).unwrap();
        assert!(matches_name(&certs.entries[0], "example.com"));
        assert!(!matches_name(&certs.entries[0], "other.com"));
    }

    #[test]
    fn cert_and_key_must_pair() {
        let config = ServerTlsConfig {
            cert: vec!["a.pem".into()],
            ..Default::default()
        };
        assert!(ServerCerts::load(&config).is_err());
        assert!(ServerCerts::load(&ServerTlsConfig::default()).is_err());
    }

    #[test]
    fn pem_pairs_load_and_match_their_names() {
        let dir = std::env::temp_dir().join(format!("moq-native-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let names = vec!["other.test".to_string(), "*.wild.test".to_string()];
        let generated = rcgen::generate_simple_self_signed(names).unwrap();
        std::fs::write(dir.join("cert.pem"), generated.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), generated.signing_key.serialize_pem()).unwrap();

        let config = ServerTlsConfig {
            cert: vec![dir.join("cert.pem")],
            key: vec![dir.join("key.pem")],
            ..Default::default()
        };
        let loaded = ServerCerts::load(&config);
        std::fs::remove_dir_all(&dir).unwrap();
        let certs = loaded.unwrap();

        assert_eq!(certs.fingerprints(), [fingerprint(generated.cert.der())]);
        let entry = &certs.entries[0];
        assert!(matches_name(entry, "other.test"));
        assert!(matches_name(entry, "a.wild.test"));
        assert!(!matches_name(entry, "localhost"));
    }
}
