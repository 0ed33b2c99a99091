//! The server: one QUIC endpoint for WebTransport and raw QUIC.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::task::JoinSet;
use url::Url;
use web_transport_quinn::{http::StatusCode, proto::ConnectResponse, Session};

use crate::{protocols_or_default, tls::ServerCerts, QuicConfig, ServerTlsConfig, ALPN_H3};

/// How long a client has, after the QUIC handshake, to send its WebTransport CONNECT.
/// Keep-alives would otherwise let a silent client hold a handshake slot forever.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`Request::reject`] waits for the client to read the rejection and hang up
/// before closing the connection itself.
const REJECT_LINGER: Duration = Duration::from_secs(2);

/// HTTP/3's "no error" code, for closing a WebTransport connection ourselves.
const H3_NO_ERROR: quinn::VarInt = quinn::VarInt::from_u32(0x100);

/// Server configuration (clap flags).
#[derive(clap::Args, Clone, Debug)]
pub struct ServerConfig {
    /// UDP address for QUIC (WebTransport + raw QUIC on one port). Default "[::]:443"
    /// (dual-stack: serves IPv4 and IPv6 unless the OS sets `net.ipv6.bindv6only`).
    #[arg(
        id = "server-bind",
        long = "server-bind",
        alias = "listen",
        default_value = "[::]:443",
        env = "MOQ_SERVER_BIND"
    )]
    pub bind: SocketAddr,

    /// TLS certificates.
    #[command(flatten)]
    pub tls: ServerTlsConfig,

    /// Protocols accepted, most preferred first (default DEFAULT_PROTOCOLS). Each is also
    /// offered as a TLS ALPN for raw QUIC, after `h3`.
    #[arg(
        id = "server-protocol",
        long = "server-protocol",
        value_name = "PROTOCOL",
        env = "MOQ_SERVER_PROTOCOL",
        value_delimiter = ','
    )]
    pub protocols: Vec<String>,

    /// QUIC transport tuning.
    #[command(flatten)]
    pub quic: QuicConfig,
}

impl Default for ServerConfig {
    /// The flags' defaults: `[::]:443`, no certificates, [`DEFAULT_PROTOCOLS`](crate::DEFAULT_PROTOCOLS).
    fn default() -> Self {
        Self {
            bind: "[::]:443".parse().expect("valid literal"),
            tls: ServerTlsConfig::default(),
            protocols: Vec::new(),
            quic: QuicConfig::default(),
        }
    }
}

/// How a session reached the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// WebTransport over HTTP/3 (ALPN `h3`).
    WebTransport,
    /// Raw QUIC with a moq ALPN.
    Quic,
}

/// A QUIC + WebTransport server on one UDP port.
///
/// Handshakes (QUIC, then for `h3` the HTTP/3 SETTINGS and CONNECT) run in tasks owned by the
/// server, so a slow client never delays others; [`Server::accept`] yields them as they
/// complete. Dropping the server aborts pending handshakes; sessions already handed out
/// live on until [`Server::close`] or their own end.
pub struct Server {
    endpoint: quinn::Endpoint,
    fingerprints: Vec<String>,
    handshakes: JoinSet<Option<Request>>,
    protocols: Arc<Vec<String>>,
}

impl Server {
    /// Bind the endpoint and load or generate the certificates. Needs a Tokio runtime.
    pub fn new(config: ServerConfig) -> anyhow::Result<Self> {
        crate::install_crypto_provider();

        let protocols = protocols_or_default(&config.protocols);
        anyhow::ensure!(
            !protocols.iter().any(|p| p == ALPN_H3),
            "{ALPN_H3:?} is WebTransport's ALPN, not a moq protocol"
        );
        let alpns: Vec<String> = std::iter::once(ALPN_H3.to_string())
            .chain(protocols.iter().cloned())
            .collect();

        let certs = ServerCerts::load(&config.tls)?;
        let fingerprints = certs.fingerprints();
        let tls = certs.server_config(&alpns)?;
        let tls = quinn::crypto::rustls::QuicServerConfig::try_from(tls)?;

        let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(tls));
        server_config.transport_config(config.quic.transport()?);

        warn_if_not_dual_stack(config.bind);
        let endpoint = crate::quic::endpoint(config.bind, &config.quic, Some(server_config))
            .with_context(|| format!("failed to bind QUIC on {}", config.bind))?;
        tracing::info!(addr = ?endpoint.local_addr().ok(), ?alpns, "listening");

        Ok(Self {
            endpoint,
            fingerprints,
            handshakes: JoinSet::new(),
            protocols: Arc::new(protocols),
        })
    }

    /// The bound UDP address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Hex lowercase SHA-256 of each certificate's DER (first = the one served when the
    /// client's SNI matches none, e.g. IP-literal URLs).
    pub fn fingerprints(&self) -> &[String] {
        &self.fingerprints
    }

    /// Next accepted session request (logs and skips failed handshakes). None once closed.
    ///
    /// Cancel-safe: a handshake finishing while this future is dropped is kept for the next call.
    pub async fn accept(&mut self) -> Option<Request> {
        loop {
            tokio::select! {
                incoming = self.endpoint.accept() => {
                    let incoming = incoming?;
                    let protocols = self.protocols.clone();
                    self.handshakes.spawn(handshake(incoming, protocols));
                }
                Some(done) = self.handshakes.join_next() => match done {
                    Ok(Some(request)) => return Some(request),
                    Ok(None) => {}
                    Err(err) if err.is_panic() => tracing::error!(%err, "handshake task panicked"),
                    Err(_) => {}
                },
            }
        }
    }

    /// Close the endpoint and every connection on it; [`Server::accept`] then returns `None`.
    pub fn close(&self) {
        self.endpoint
            .close(quinn::VarInt::from_u32(0), b"server closed");
    }

    /// Wait until every connection has finished closing, so the close frames reach the peers;
    /// call it after [`Server::close`] before the process exits (and bound it: a vanished peer
    /// takes a few probe timeouts to give up on).
    pub async fn wait_idle(&self) {
        self.endpoint.wait_idle().await
    }
}

/// `[::]` serves IPv4 too only while Linux's `net.ipv6.bindv6only` is 0 (the default); std
/// cannot set `IPV6_V6ONLY` on the socket itself, so say so when it is not.
fn warn_if_not_dual_stack(bind: SocketAddr) {
    if bind.ip() != std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED) {
        return;
    }
    if let Ok(value) = std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only") {
        if value.trim() == "1" {
            tracing::warn!(%bind, "net.ipv6.bindv6only=1: this socket serves IPv6 only");
        }
    }
}

/// Run one connection's handshake to a [`Request`]; failures are logged and yield `None`.
async fn handshake(incoming: quinn::Incoming, protocols: Arc<Vec<String>>) -> Option<Request> {
    let remote = canonical(incoming.remote_address());
    match handshake_inner(incoming, remote, &protocols).await {
        Ok(request) => Some(request),
        Err(err) => {
            tracing::warn!(%remote, "handshake failed: {err:#}");
            None
        }
    }
}

async fn handshake_inner(
    incoming: quinn::Incoming,
    remote: SocketAddr,
    protocols: &[String],
) -> anyhow::Result<Request> {
    let conn = incoming
        .accept()
        .context("QUIC accept")?
        .await
        .context("QUIC handshake")?;

    let alpn = conn
        .handshake_data()
        .and_then(|data| data.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|data| data.protocol)
        .and_then(|alpn| String::from_utf8(alpn).ok());
    let Some(alpn) = alpn else {
        // rustls refuses QUIC handshakes without ALPN, so this is belt and braces.
        conn.close(quinn::VarInt::from_u32(0), b"no ALPN");
        anyhow::bail!("no ALPN negotiated");
    };
    let server_name = conn
        .handshake_data()
        .and_then(|data| data.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|data| data.server_name);
    tracing::debug!(%remote, %alpn, ?server_name, "QUIC handshake done");

    if alpn == ALPN_H3 {
        let request = tokio::time::timeout(
            CONNECT_TIMEOUT,
            web_transport_quinn::Request::accept(conn.clone()),
        )
        .await
        .map_err(|_| {
            conn.close(quinn::VarInt::from_u32(0), b"no CONNECT");
            anyhow::anyhow!("no WebTransport CONNECT within {CONNECT_TIMEOUT:?}")
        })?
        .context("WebTransport CONNECT")?;

        // spec §1.3: the first of the client's protocols that we support; none = legacy.
        let protocol = request
            .protocols
            .iter()
            .find(|offered| protocols.contains(offered))
            .cloned();
        tracing::debug!(%remote, url = %request.url, offered = ?request.protocols, ?protocol, "WebTransport request");

        return Ok(Request {
            url: request.url.clone(),
            protocol,
            remote,
            kind: Kind::WebTransport(Box::new(request)),
        });
    }

    // rustls only negotiates ALPNs from our list, so anything else is one of `protocols`.
    // spec §1.2: there is no request URI; the path travels in SETUP (lite-05+).
    let url = Url::parse(&format!("moql://{remote}/")).context("URL from peer address")?;
    Ok(Request {
        url,
        protocol: Some(alpn),
        remote,
        kind: Kind::Quic(conn),
    })
}

/// IPv4 clients of a dual-stack socket appear as `::ffff:a.b.c.d`; report them as IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("url", &self.url.as_str())
            .field("transport", &self.transport())
            .field("protocol", &self.protocol)
            .field("remote", &self.remote)
            .finish()
    }
}

/// A completed handshake awaiting the application's decision: [`Request::ok`] or
/// [`Request::reject`]. Dropping it closes the connection.
pub struct Request {
    url: Url,
    protocol: Option<String>,
    remote: SocketAddr,
    kind: Kind,
}

enum Kind {
    // Boxed: the HTTP/3 request is ~40 times the size of a connection handle.
    WebTransport(Box<web_transport_quinn::Request>),
    Quic(quinn::Connection),
}

impl Request {
    /// The URL: WebTransport → the CONNECT URL (https://host/path?query); raw QUIC →
    /// `moql://<peer addr>/` (no path: lite-05 clients send it in SETUP).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// How the session arrived.
    pub fn transport(&self) -> Transport {
        match self.kind {
            Kind::WebTransport(_) => Transport::WebTransport,
            Kind::Quic(_) => Transport::Quic,
        }
    }

    /// The moq protocol chosen: raw QUIC → negotiated ALPN; WebTransport → the first of the
    /// client's WT-Available-Protocols that the server accepts (None if the client offered
    /// none we know: legacy).
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The client's address (IPv4-mapped IPv6 addresses are reported as IPv4).
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    /// The HTTP headers of the WebTransport CONNECT (without pseudo-headers and
    /// `WT-Available-Protocols`); `None` for raw QUIC.
    pub fn headers(&self) -> Option<&web_transport_quinn::http::HeaderMap> {
        match &self.kind {
            Kind::WebTransport(request) => Some(&request.headers),
            Kind::Quic(_) => None,
        }
    }

    /// The underlying QUIC connection.
    pub fn conn(&self) -> &quinn::Connection {
        match &self.kind {
            Kind::WebTransport(request) => request.conn(),
            Kind::Quic(conn) => conn,
        }
    }

    /// Accept: for WebTransport responds 200 with `WT-Protocol` set to protocol() (if Some).
    pub async fn ok(self) -> anyhow::Result<Session> {
        match self.kind {
            Kind::WebTransport(request) => {
                let mut response = ConnectResponse::new(StatusCode::OK);
                if let Some(protocol) = self.protocol {
                    response = response.with_protocol(protocol);
                }
                Ok(request
                    .respond(response)
                    .await
                    .context("WebTransport CONNECT response")?)
            }
            Kind::Quic(conn) => Ok(Session::raw(conn)),
        }
    }

    /// Reject: WebTransport → HTTP status; raw QUIC → CONNECTION_CLOSE with the status as code.
    ///
    /// For WebTransport this waits (at most two seconds) for the client to hang up after
    /// reading the status, because closing at once could discard the response in flight.
    /// A status outside 100..=999 is sent as 500.
    pub async fn reject(self, status: u16) {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let reason = code.canonical_reason().unwrap_or("rejected").as_bytes();
        match self.kind {
            Kind::WebTransport(request) => {
                let conn = request.conn().clone();
                if let Err(err) = request.reject(code).await {
                    tracing::debug!(remote = %self.remote, %err, "failed to send rejection");
                }
                let _ = tokio::time::timeout(REJECT_LINGER, conn.closed()).await;
                conn.close(H3_NO_ERROR, reason);
            }
            Kind::Quic(conn) => conn.close(quinn::VarInt::from_u32(code.as_u16().into()), reason),
        }
    }
}
