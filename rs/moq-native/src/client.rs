//! The client: WebTransport (`https://`, `http://`), raw QUIC (`moql://`, `moqt://`), and QMux
//! over WebSocket (`ws://`, `wss://`) or TCP (`moql+tcp://`) through [`QuicClient::connect_any`].

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use tokio::task::JoinSet;
use url::{Host, Url};
use web_transport_quinn::{proto::ConnectRequest, Session};

use crate::{
    fingerprint::fetch_fingerprint, protocols_or_default, tls::Verifier, Error, QuicConfig, ALPN_H3,
};

/// Head start each resolved address gets over the next one (Happy Eyeballs, RFC 8305):
/// an address that silently drops UDP (nothing listening on `[::1]`, say) would otherwise
/// stall the connect until the idle timeout.
const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Default [`QuicClientConfig::connect_timeout_ms`].
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;

/// Client configuration (clap flags).
///
/// The QUIC tuning is not a set of flags here (see [`QuicConfig`] for why); set it from the
/// binary's own flattened `QuicConfig`.
#[derive(clap::Args, Clone, Debug)]
pub struct QuicClientConfig {
    /// Local UDP address. The default `[::]:0` is dual-stack, reaching IPv4 and IPv6 servers.
    #[arg(
        id = "client-bind",
        long = "client-bind",
        default_value = "[::]:0",
        env = "MOQ_CLIENT_BIND"
    )]
    pub bind: SocketAddr,

    /// Extra root certificates (PEM files), trusted in addition to the system's.
    #[arg(
        long = "tls-root",
        value_name = "PATH",
        env = "MOQ_TLS_ROOT",
        value_delimiter = ','
    )]
    pub roots: Vec<PathBuf>,

    /// Accept any server certificate (danger: anyone on the path can impersonate the server).
    #[arg(long = "tls-disable-verify", env = "MOQ_TLS_DISABLE_VERIFY")]
    pub disable_verify: bool,

    /// Accept a server certificate with this hex SHA-256 fingerprint, whatever its issuer,
    /// names or dates (like browsers' `serverCertificateHashes`). Certificates passing the
    /// normal root verification stay accepted too.
    #[arg(
        long = "tls-fingerprint",
        value_name = "HEX",
        env = "MOQ_TLS_FINGERPRINT",
        value_delimiter = ','
    )]
    pub fingerprints: Vec<String>,

    /// Protocols offered, most preferred first; empty = DEFAULT_PROTOCOLS. Sent as TLS ALPNs
    /// for raw QUIC and as `WT-Available-Protocols` for WebTransport.
    #[arg(
        id = "client-protocol",
        long = "client-protocol",
        value_name = "PROTOCOL",
        env = "MOQ_CLIENT_PROTOCOL",
        value_delimiter = ','
    )]
    pub protocols: Vec<String>,

    /// Give up a connection attempt (name lookup, certificate fetch for `http://`, QUIC and
    /// WebTransport handshakes) after this many milliseconds (0 = never), so a dial to a dead or
    /// unreachable server fails instead of hanging.
    #[arg(
        long = "connect-timeout",
        value_name = "MS",
        default_value_t = DEFAULT_CONNECT_TIMEOUT_MS,
        env = "MOQ_CONNECT_TIMEOUT"
    )]
    pub connect_timeout_ms: u64,

    /// QUIC transport tuning (not flags: see [`QuicConfig`]).
    #[arg(skip)]
    pub quic: QuicConfig,
}

impl Default for QuicClientConfig {
    /// The flags' defaults: `[::]:0`, system roots, [`DEFAULT_PROTOCOLS`](crate::DEFAULT_PROTOCOLS),
    /// [`DEFAULT_CONNECT_TIMEOUT_MS`].
    fn default() -> Self {
        Self {
            bind: "[::]:0".parse().expect("valid literal"),
            roots: Vec::new(),
            disable_verify: false,
            fingerprints: Vec::new(),
            protocols: Vec::new(),
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            quic: QuicConfig::default(),
        }
    }
}

/// A client endpoint; one UDP socket shared by every connection it makes.
#[derive(Clone)]
pub struct QuicClient {
    endpoint: quinn::Endpoint,
    socket_buffer: usize,
    verifier: Arc<Verifier>,
    transport: Arc<quinn::TransportConfig>,
    protocols: Vec<String>,
    /// Bound on [`QuicClient::connect`] (None = unbounded).
    connect_timeout: Option<Duration>,
    /// Offers `h3`, for WebTransport.
    h3: quinn::ClientConfig,
    /// Offers the moq protocols, for raw QUIC.
    raw: quinn::ClientConfig,
}

/// An established session and what was negotiated for it.
#[derive(Debug)]
pub struct Connection {
    /// The session (WebTransport, or raw QUIC behind the same API).
    pub session: Session,
    /// The negotiated moq protocol (WT-Protocol response header, or raw ALPN), None = legacy/compat.
    pub protocol: Option<String>,
    /// For raw QUIC: the URL path + query (e.g. "/anon?jwt=abc") that lite-05 carries in the
    /// SETUP Path parameter, None when it is just "/"; None for WebTransport (the URL carries it).
    pub setup_path: Option<String>,
}

/// An established session over any transport ([`QuicClient::connect_any`]).
#[derive(Debug)]
pub struct AnyConnection {
    /// The session's connection, for `moq_lite::Client::connect`.
    pub session: moq_io::Session,
    /// The negotiated moq protocol (ALPN, WT-Protocol, or the WebSocket subprotocol's moq
    /// part); None = legacy/compat.
    pub protocol: Option<String>,
    /// The URL path + query that lite-05+ carries in the SETUP Path parameter on transports
    /// without a URL (raw QUIC, plain TCP); None when it is just "/" or the URL carries it.
    pub setup_path: Option<String>,
}

/// `connect` to `url` within `timeout` (`None`: unbounded), [`Error::Timeout`] past it.
async fn within<T>(
    timeout: Option<Duration>,
    url: &Url,
    connect: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let Some(timeout) = timeout else {
        return connect.await;
    };
    tokio::time::timeout(timeout, connect)
        .await
        .unwrap_or_else(|_| {
            Err(Error::Timeout {
                what: format!("connecting to {url}"),
                after: timeout,
            })
        })
}

/// The SETUP path for a URL-less transport (spec §1.2): path and query, None for the root.
fn setup_path(url: &Url) -> Option<String> {
    match (url.path(), url.query()) {
        ("" | "/", None) => None,
        ("", Some(query)) => Some(format!("/?{query}")),
        (path, None) => Some(path.to_string()),
        (path, Some(query)) => Some(format!("{path}?{query}")),
    }
}

impl QuicClient {
    /// Connect to any URL a moq client takes: what [`QuicClient::connect`] dials, plus
    /// `ws://` and `wss://` (QMux over a WebSocket to the relay's HTTP(S) listener, same path
    /// and query as WebTransport) and `moql+tcp://host:port/path` (QMux over plain TCP, for
    /// trusted networks). Bounded by the connect timeout like [`QuicClient::connect`].
    pub async fn connect_any(&self, url: Url) -> Result<AnyConnection, Error> {
        self.connect_any_bounded(url, None).await
    }

    /// Like [`QuicClient::connect_any`], dialing `addr` instead of resolving the URL's host
    /// (see [`QuicClient::connect_to`]).
    pub async fn connect_any_to(&self, url: Url, addr: SocketAddr) -> Result<AnyConnection, Error> {
        self.connect_any_bounded(url, Some(addr)).await
    }

    async fn connect_any_bounded(
        &self,
        url: Url,
        addr: Option<SocketAddr>,
    ) -> Result<AnyConnection, Error> {
        let (session, protocol, setup_path) = match url.scheme() {
            "ws" | "wss" => {
                let tls = Arc::new(self.verifier.client_config(&["http/1.1".to_string()])?);
                let connect = crate::over_tcp::connect_websocket(&url, addr, tls, &self.protocols);
                let (session, protocol) = within(self.connect_timeout, &url, connect).await?;
                (session, protocol, None)
            }
            "moql+tcp" => {
                // QMux's own handshake wait: zero is none (the connect timeout bounds it all).
                let handshake = self.connect_timeout.unwrap_or(Duration::ZERO);
                let connect = crate::over_tcp::connect_tcp(&url, addr, &self.protocols, handshake);
                let (session, protocol) = within(self.connect_timeout, &url, connect).await?;
                (session, protocol, setup_path(&url))
            }
            _ => {
                let connection = self.connect_bounded(url, addr).await?;
                (
                    connection.session.into(),
                    connection.protocol,
                    connection.setup_path,
                )
            }
        };
        Ok(AnyConnection {
            session,
            protocol,
            setup_path,
        })
    }

    /// Bind the UDP socket and load the root certificates. Needs a Tokio runtime.
    ///
    /// Fails with [`Error::Certificate`] for an unreadable root file or an invalid pinned
    /// fingerprint, [`Error::Io`] when the socket cannot be bound, [`Error::Config`] for QUIC
    /// settings quinn refuses.
    pub fn new(config: QuicClientConfig) -> Result<Self, Error> {
        crate::install_crypto_provider();

        let verifier = Arc::new(Verifier::new(
            &config.roots,
            &config.fingerprints,
            config.disable_verify,
        )?);
        let transport = config.quic.transport()?;
        let protocols = protocols_or_default(&config.protocols);

        let h3 = quic_config(&verifier, &[ALPN_H3.to_string()], &transport)?;
        let raw = quic_config(&verifier, &protocols, &transport)?;

        let endpoint = crate::quic::endpoint(config.bind, &config.quic, None).map_err(|err| {
            Error::io(
                format!("failed to bind QUIC client on {}", config.bind),
                err,
            )
        })?;

        Ok(Self {
            endpoint,
            socket_buffer: config.quic.socket_buffer,
            verifier,
            transport,
            protocols,
            connect_timeout: match config.connect_timeout_ms {
                0 => None,
                ms => Some(Duration::from_millis(ms)),
            },
            h3,
            raw,
        })
    }

    /// Connect to a `https://` (WebTransport), `http://` (WebTransport, pinning the
    /// certificate hash served at `http://host:port/certificate.sha256`), `moql://` or
    /// `moqt://` (raw QUIC, default port 443) URL.
    ///
    /// A raw QUIC rejection (CONNECTION_CLOSE with the status as code) can only arrive after
    /// this returns: there is no request to answer.
    ///
    /// Fails after [`QuicClientConfig::connect_timeout_ms`] ([`Error::Timeout`]): a dead server
    /// gives no answer to QUIC, only silence, and a TCP connect (the `http://` certificate
    /// fetch) to a host that drops packets takes minutes to fail on its own.
    ///
    /// The other errors: [`Error::Url`] and [`Error::Resolve`] for a URL that cannot be dialled,
    /// [`Error::Tls`] for an untrusted certificate, [`Error::Refused`] for a WebTransport
    /// CONNECT answered with another status than 200 (a refused token) or a server at its
    /// connection limit, [`Error::Http`] and [`Error::Certificate`] when the `http://`
    /// fingerprint fetch fails, [`Error::Connect`] for the rest.
    pub async fn connect(&self, url: Url) -> Result<Connection, Error> {
        self.connect_bounded(url, None).await
    }

    /// Like [`QuicClient::connect`], but dial `addr` instead of resolving the URL's host: the
    /// host name still goes in the TLS SNI, is checked against the certificate and is sent in
    /// the WebTransport CONNECT. For `http://`, the certificate hash is fetched from `addr` too.
    ///
    /// For a name with several addresses (a DNS round robin, a Kubernetes headless Service)
    /// whose every address must be reached, not just the first one that answers.
    pub async fn connect_to(&self, url: Url, addr: SocketAddr) -> Result<Connection, Error> {
        self.connect_bounded(url, Some(addr)).await
    }

    /// [`QuicClient::connect`] or [`QuicClient::connect_to`] within the connect timeout.
    async fn connect_bounded(
        &self,
        url: Url,
        addr: Option<SocketAddr>,
    ) -> Result<Connection, Error> {
        within(
            self.connect_timeout,
            &url.clone(),
            self.connect_unbounded(url, addr),
        )
        .await
    }

    async fn connect_unbounded(
        &self,
        url: Url,
        addr: Option<SocketAddr>,
    ) -> Result<Connection, Error> {
        match url.scheme() {
            "https" => self.connect_webtransport(url, addr, &self.h3).await,
            "http" => {
                let fingerprint = match addr {
                    Some(addr) => {
                        let mut at = url.clone();
                        at.set_ip_host(addr.ip()).map_err(|()| Error::Url {
                            url: url.to_string(),
                            reason: "cannot put the address in the URL".into(),
                        })?;
                        at.set_port(Some(addr.port())).map_err(|()| Error::Url {
                            url: url.to_string(),
                            reason: "cannot put the port in the URL".into(),
                        })?;
                        fetch_fingerprint(&at).await?
                    }
                    None => fetch_fingerprint(&url).await?,
                };
                let verifier = Arc::new(
                    self.verifier
                        .with_fingerprint(crate::tls::parse_fingerprint(&fingerprint)?),
                );
                let config = quic_config(&verifier, &[ALPN_H3.to_string()], &self.transport)?;

                let mut url = url;
                url.set_scheme("https")
                    .expect("http and https are both special schemes");
                self.connect_webtransport(url, addr, &config).await
            }
            "moql" | "moqt" => {
                let conn = self.connect_quic(&url, addr, &self.raw).await?;
                let session = Session::raw(conn);
                let protocol = session.protocol().map(str::to_string);
                tracing::debug!(%url, ?protocol, "raw QUIC session");

                // spec §1.2: lite-05+ clients carry path + query in SETUP's Path parameter.
                let setup_path = setup_path(&url);

                Ok(Connection {
                    session,
                    protocol,
                    setup_path,
                })
            }
            scheme => Err(Error::Url {
                url: url.to_string(),
                reason: format!("unsupported scheme {scheme:?} (use https, http, moql or moqt; ws, wss and moql+tcp through connect_any)"),
            }),
        }
    }

    async fn connect_webtransport(
        &self,
        url: Url,
        addr: Option<SocketAddr>,
        config: &quinn::ClientConfig,
    ) -> Result<Connection, Error> {
        use web_transport_quinn::{proto, ClientError, ConnectError};
        let conn = self.connect_quic(&url, addr, config).await?;
        let request = ConnectRequest::new(url.clone()).with_protocols(self.protocols.clone());
        let session = Session::connect(conn, request)
            .await
            .map_err(|err| match err {
                ClientError::HttpError(
                    ConnectError::ErrorStatus(status)
                    | ConnectError::ProtoError(proto::ConnectError::WrongStatus(Some(status))),
                ) => Error::Refused {
                    peer: url.to_string(),
                    status: Some(status.as_u16()),
                },
                ClientError::Connection(err)
                | ClientError::HttpError(ConnectError::ConnectionError(err)) => {
                    Error::quic(url.as_str(), err)
                }
                err => Error::Connect {
                    peer: url.to_string(),
                    source: err.into(),
                },
            })?;

        let protocol = session.protocol().map(str::to_string);
        tracing::debug!(%url, ?protocol, "WebTransport session");

        Ok(Connection {
            session,
            protocol,
            setup_path: None,
        })
    }

    /// Move every connection of this client to a new UDP socket bound to `bind` (a network
    /// change: the peers see the client's address change and migrate the connections, QUIC
    /// connection migration). The old socket is closed.
    pub fn rebind(&self, bind: SocketAddr) -> Result<(), Error> {
        let socket = crate::quic::bind_udp(bind, self.socket_buffer, false)
            .map_err(|err| Error::io(format!("failed to bind QUIC client on {bind}"), err))?;
        self.endpoint
            .rebind(socket)
            .map_err(|err| Error::io("failed to move the client to the new socket", err))
    }

    /// Wait until every connection made by this client has finished closing (its
    /// CONNECTION_CLOSE sent and the draining period over), so the peers learn of the close at
    /// once instead of at their idle timeout. Call it after closing the sessions and before the
    /// process exits, bounded by a timeout: a vanished peer takes a few probe timeouts.
    pub async fn wait_idle(&self) {
        self.endpoint.wait_idle().await
    }

    /// The QUIC handshake, racing the host's addresses with a staggered start, or to `addr`
    /// alone when given (the host then only names the server for TLS).
    async fn connect_quic(
        &self,
        url: &Url,
        addr: Option<SocketAddr>,
        config: &quinn::ClientConfig,
    ) -> Result<quinn::Connection, Error> {
        let bad_url = |reason: &str| Error::Url {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let host = url.host().ok_or_else(|| bad_url("no host"))?;
        let port = url.port_or_known_default().unwrap_or(443);

        let (name, mut addrs) = match host {
            Host::Domain(domain) => {
                let addrs: Vec<SocketAddr> = match addr {
                    Some(addr) => vec![addr],
                    None => tokio::net::lookup_host((domain, port))
                        .await
                        .map_err(|source| Error::Resolve {
                            host: domain.to_string(),
                            source,
                        })?
                        .collect(),
                };
                (domain.to_string(), addrs)
            }
            Host::Ipv4(ip) => {
                let addr = addr.unwrap_or(SocketAddr::new(IpAddr::V4(ip), port));
                (ip.to_string(), vec![addr])
            }
            Host::Ipv6(ip) => {
                let addr = addr.unwrap_or(SocketAddr::new(IpAddr::V6(ip), port));
                (ip.to_string(), vec![addr])
            }
        };

        // An IPv4 socket cannot reach IPv6 addresses; a dual-stack [::] one reaches both.
        let local = self
            .endpoint
            .local_addr()
            .map_err(|err| Error::io("the client's socket is gone", err))?;
        if local.is_ipv4() {
            addrs.retain(SocketAddr::is_ipv4);
        }
        if addrs.is_empty() {
            return Err(bad_url("no address reachable from the client's socket"));
        }

        self.race(url, &name, &addrs, config).await
    }

    /// Happy Eyeballs (RFC 8305) over QUIC: start with the first address, start the next one
    /// when an attempt fails or every [`ATTEMPT_DELAY`], and keep the first to finish its
    /// handshake. Dropping the losers closes them.
    ///
    /// When every attempt fails, the error is the most telling one: a TLS failure or a refusal
    /// (the server answered) over the network errors of addresses where nobody did.
    async fn race(
        &self,
        url: &Url,
        name: &str,
        addrs: &[SocketAddr],
        config: &quinn::ClientConfig,
    ) -> Result<quinn::Connection, Error> {
        let mut untried = addrs.iter().copied();
        let mut attempts = JoinSet::new();
        let mut best: Option<Error> = None;

        loop {
            if let Some(addr) = untried.next() {
                let connecting = self.endpoint.connect_with(config.clone(), addr, name);
                let peer = format!("{url} ({addr})");
                attempts.spawn(async move {
                    let connecting = connecting.map_err(|err| Error::Connect {
                        peer: peer.clone(),
                        source: err.into(),
                    })?;
                    let conn = connecting.await.map_err(|err| Error::quic(peer, err))?;
                    Ok::<_, Error>((addr, conn))
                });
            }
            if attempts.is_empty() {
                return Err(best.unwrap_or_else(|| Error::Url {
                    url: url.to_string(),
                    reason: "no address to dial".into(),
                }));
            }

            tokio::select! {
                Some(done) = attempts.join_next() => match done {
                    Ok(Ok((addr, conn))) => {
                        tracing::debug!(%addr, "QUIC connected");
                        return Ok(conn);
                    }
                    Ok(Err(err)) => {
                        tracing::debug!("QUIC attempt failed: {err}");
                        let telling = |err: &Error| matches!(err, Error::Tls { .. } | Error::Refused { .. });
                        if best.as_ref().is_none_or(|best| !telling(best) && telling(&err)) {
                            best = Some(err);
                        }
                    }
                    Err(err) => {
                        best.get_or_insert(Error::Connect { peer: url.to_string(), source: err.into() });
                    }
                },
                _ = tokio::time::sleep(ATTEMPT_DELAY) => {}
            }
        }
    }
}

/// A quinn client config offering `alpns`.
fn quic_config(
    verifier: &Arc<Verifier>,
    alpns: &[String],
    transport: &Arc<quinn::TransportConfig>,
) -> Result<quinn::ClientConfig, Error> {
    let tls = verifier.client_config(alpns)?;
    let tls =
        quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|err| Error::Config {
            what: "TLS configuration unusable for QUIC".into(),
            source: Some(err.into()),
        })?;
    let mut config = quinn::ClientConfig::new(Arc::new(tls));
    config.transport_config(transport.clone());
    Ok(config)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::{QuicServer, QuicServerConfig, ServerTlsConfig};

    #[tokio::test]
    async fn a_dial_to_a_server_that_never_answers_times_out() {
        // A bound UDP socket that reads nothing: QUIC hears only silence, as from a dead relay.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let client = QuicClient::new(QuicClientConfig {
            connect_timeout_ms: 200,
            ..Default::default()
        })
        .unwrap();
        let url: Url = format!("moql://127.0.0.1:{port}/").parse().unwrap();
        let err = client.connect(url).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        assert!(err.to_string().contains("timed out after 200ms"), "{err}");
    }

    /// The errors a caller sorts on: a pinned fingerprint that does not match is a TLS failure,
    /// an unknown scheme a bad URL, a server at its connection limit a refusal.
    #[tokio::test]
    async fn failures_are_sorted_by_kind() {
        let limit = Arc::new(tokio::sync::Semaphore::new(0));
        let server = QuicServer::new(QuicServerConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            tls: ServerTlsConfig {
                generate: vec!["localhost".into()],
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
        let port = server.local_addr().unwrap().port();
        let pinned = |fingerprint: String| {
            QuicClient::new(QuicClientConfig {
                fingerprints: vec![fingerprint],
                ..Default::default()
            })
            .unwrap()
        };
        let url: Url = format!("https://127.0.0.1:{port}/").parse().unwrap();

        let err = pinned("00".repeat(32))
            .connect(url.clone())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Tls { .. }), "{err:?}");

        let err = pinned(server.fingerprints()[0].clone())
            .connect(format!("ftp://127.0.0.1:{port}/").parse().unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Url { .. }), "{err:?}");

        let full = QuicServer::new(QuicServerConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            tls: ServerTlsConfig {
                generate: vec!["localhost".into()],
                ..Default::default()
            },
            connection_limit: Some(limit),
            ..Default::default()
        })
        .unwrap();
        let url: Url = format!("moql://127.0.0.1:{}/", full.local_addr().unwrap().port())
            .parse()
            .unwrap();
        let err = pinned(full.fingerprints()[0].clone())
            .connect(url)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Refused { status: None, .. }),
            "{err:?}"
        );
    }

    /// `connect_to` dials the given address, not the URL's host (a name that resolves nowhere
    /// here), and the name still reaches the server as the TLS server name.
    #[tokio::test]
    async fn connect_to_dials_the_address_and_keeps_the_name() {
        let mut server = QuicServer::new(QuicServerConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            tls: ServerTlsConfig {
                generate: vec!["relay.invalid".into()],
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
        let addr = server.local_addr().unwrap();
        let client = QuicClient::new(QuicClientConfig {
            fingerprints: server.fingerprints().to_vec(),
            ..Default::default()
        })
        .unwrap();
        let accepting = tokio::spawn(async move {
            let request = server.accept().await.expect("a connection");
            let sni = request
                .conn()
                .handshake_data()
                .and_then(|data| data.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
                .and_then(|data| data.server_name);
            let host = request.url().host_str().map(str::to_string);
            let session = request.ok().await.expect("CONNECT accepted");
            (sni, host, session)
        });
        // `.invalid` never resolves (RFC 6761): only the given address can be dialled.
        let url: Url = format!("https://relay.invalid:{}/", addr.port())
            .parse()
            .unwrap();
        let err = client.connect(url.clone()).await.unwrap_err();
        assert!(
            matches!(err, Error::Resolve { .. } | Error::Url { .. }),
            "{err:?}"
        );
        let conn = client.connect_to(url, addr).await.unwrap();
        assert_eq!(conn.session.remote_address().port(), addr.port());
        let (sni, host, _session) = accepting.await.unwrap();
        assert_eq!(sni.as_deref(), Some("relay.invalid"), "the TLS server name");
        assert_eq!(
            host.as_deref(),
            Some("relay.invalid"),
            "the CONNECT authority"
        );
    }

    #[tokio::test]
    async fn race_moves_past_an_address_that_never_answers() {
        // Nothing listens on [::1]:port, and QUIC gets no answer there, only silence.
        let mut server = QuicServer::new(QuicServerConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            tls: ServerTlsConfig {
                generate: vec!["localhost".into()],
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
        let port = server.local_addr().unwrap().port();
        let client = QuicClient::new(QuicClientConfig {
            fingerprints: server.fingerprints().to_vec(),
            ..Default::default()
        })
        .unwrap();
        let accepting =
            tokio::spawn(async move { server.accept().await.map(|request| request.remote_addr()) });

        let silent = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
        let live = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let url: Url = format!("moql://localhost:{port}/").parse().unwrap();
        let conn = client
            .race(&url, "localhost", &[silent, live], &client.raw)
            .await
            .unwrap();
        assert_eq!(conn.remote_address().ip().to_canonical(), live.ip());
        assert!(accepting.await.unwrap().unwrap().is_ipv4());
    }
}
