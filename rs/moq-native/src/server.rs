//! The server: one QUIC endpoint for WebTransport and raw QUIC.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use url::Url;
use web_transport_quinn::{http::StatusCode, proto::ConnectResponse, Session};

use crate::{
    error::report, protocols_or_default, tls::ServerCerts, Error, QuicConfig, ServerTlsConfig,
    ALPN_H3,
};

/// Default [`QuicServerConfig::handshake_timeout`].
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`Request::reject`] waits for the client to read the rejection and hang up
/// before closing the connection itself.
const REJECT_LINGER: Duration = Duration::from_secs(2);

/// HTTP/3's "no error" code, for closing a WebTransport connection ourselves.
const H3_NO_ERROR: quinn::VarInt = quinn::VarInt::from_u32(0x100);

/// HTTP/3's H3_REQUEST_INCOMPLETE: the close code when no CONNECT arrived in time.
const H3_REQUEST_INCOMPLETE: quinn::VarInt = quinn::VarInt::from_u32(0x10d);

/// Server configuration (clap flags).
#[derive(clap::Args, Clone, Debug)]
pub struct QuicServerConfig {
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

    /// QUIC endpoints sharing the port: with N > 1, N sockets bound with `SO_REUSEPORT`, each
    /// driven by its own single-threaded Tokio runtime on its own thread, which also runs the
    /// sessions it accepts (Linux spreads peers over the sockets by address). 0 = one per CPU.
    /// 1 = one endpoint on the application's runtime. A peer whose address changes (NAT
    /// rebinding) may land on another worker, which does not know its connection: with N > 1
    /// that worker ends it with a stateless reset (the workers share the key) and the peer
    /// reconnects, where one endpoint would migrate it.
    #[arg(
        id = "server-workers",
        long = "server-workers",
        alias = "workers",
        default_value_t = 1,
        env = "MOQ_SERVER_WORKERS"
    )]
    pub workers: usize,

    /// QUIC transport tuning.
    #[command(flatten)]
    pub quic: QuicConfig,

    /// Time from a connection's first packet to the end of its set-up: the QUIC handshake, for
    /// WebTransport the CONNECT, and whatever the application does before [`Request::deadline`]
    /// (the relay: the moq SETUP). A connection still in its QUIC handshake or without a
    /// CONNECT then is closed (H3_REQUEST_INCOMPLETE for WebTransport) and logged. Keep-alives
    /// would otherwise let a silent client hold its slot for ever. Not a flag here: binaries
    /// declare their own.
    #[arg(skip = DEFAULT_HANDSHAKE_TIMEOUT)]
    pub handshake_timeout: Duration,

    /// Slots for connections, counted from a connection's first packet, before its handshake,
    /// until its [`Request`] is dropped, or the permit taken from it with
    /// [`Request::take_permit`]. A connection arriving when none is left is refused at once
    /// (QUIC CONNECTION_REFUSED), without spending a handshake on it. `None`: no limit.
    /// Shared by every worker; the application keeps the other end to size and watch it.
    #[arg(skip)]
    pub connection_limit: Option<Arc<Semaphore>>,
}

impl Default for QuicServerConfig {
    /// The flags' defaults: `[::]:443`, no certificates, [`DEFAULT_PROTOCOLS`](crate::DEFAULT_PROTOCOLS).
    fn default() -> Self {
        Self {
            bind: "[::]:443".parse().expect("valid literal"),
            tls: ServerTlsConfig::default(),
            protocols: Vec::new(),
            workers: 1,
            quic: QuicConfig::default(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            connection_limit: None,
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
/// server, so a slow client never delays others; [`QuicServer::accept`] yields them as they
/// complete. Dropping the server aborts pending handshakes; sessions already handed out
/// live on until [`QuicServer::close`] or their own end.
///
/// With [`QuicServerConfig::workers`] > 1 the port is served by that many endpoints, each on its own
/// thread and single-threaded runtime; run each accepted session on its worker's runtime
/// ([`Request::runtime`]), so a connection's driver and its session's tasks share a thread.
pub struct QuicServer {
    endpoints: Vec<quinn::Endpoint>,
    fingerprints: Vec<String>,
    /// TLS for HTTPS with the same certificates (ALPN `http/1.1`).
    https: Arc<rustls::ServerConfig>,
    requests: mpsc::Receiver<Request>,
    /// Accept loops on the application's runtime (one worker), aborted on drop.
    accept_loops: Vec<tokio::task::AbortHandle>,
    /// Dropped with the server: each worker thread then waits for its connections to end and exits.
    _stop_workers: Vec<oneshot::Sender<()>>,
}

/// Most server workers (threads, each with a socket and a runtime).
pub const MAX_WORKERS: usize = 1024;

/// Completed handshakes waiting for [`QuicServer::accept`], per server: beyond this the accept loops
/// wait (and new handshakes queue in quinn).
const ACCEPT_QUEUE: usize = 64;

impl QuicServer {
    /// Bind the endpoint (or start the workers, each with its own) and load or generate the
    /// certificates. Needs a Tokio runtime: with one worker the endpoint and its accept loop run
    /// on it.
    ///
    /// Fails with [`Error::Certificate`] for certificates that cannot be read or used,
    /// [`Error::Io`] when the port cannot be bound, [`Error::Config`] for settings that cannot
    /// work.
    pub fn new(config: QuicServerConfig) -> Result<Self, Error> {
        crate::install_crypto_provider();

        let protocols = protocols_or_default(&config.protocols);
        if protocols.iter().any(|p| p == ALPN_H3) {
            return Err(Error::config(format!(
                "{ALPN_H3:?} is WebTransport's ALPN, not a moq protocol"
            )));
        }
        let alpns: Vec<String> = std::iter::once(ALPN_H3.to_string())
            .chain(protocols.iter().cloned())
            .collect();

        let certs = ServerCerts::load(&config.tls)?;
        let fingerprints = certs.fingerprints();
        // The same certificates for HTTPS (and `wss://`) on TCP.
        let https = Arc::new(certs.clone().server_config(&["http/1.1".to_string()])?);
        let tls = certs.server_config(&alpns)?;
        let tls = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|err| {
            Error::Config {
                what: "TLS configuration unusable for QUIC".into(),
                source: Some(err.into()),
            }
        })?;

        let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(tls));
        server_config.transport_config(config.quic.transport()?);

        warn_if_not_dual_stack(config.bind);
        let (tx, requests) = mpsc::channel(ACCEPT_QUEUE);
        let accept = Accept {
            protocols: Arc::new(protocols),
            requests: tx,
            worker: 0,
            timeout: config.handshake_timeout,
            limit: config.connection_limit.clone(),
        };
        let workers = match config.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        if workers > MAX_WORKERS {
            return Err(Error::config(format!(
                "{workers} server workers: at most {MAX_WORKERS} (one per CPU is the point)"
            )));
        }
        let mut server = Self {
            endpoints: Vec::new(),
            https,
            fingerprints,
            requests,
            accept_loops: Vec::new(),
            _stop_workers: Vec::new(),
        };
        if workers == 1 {
            let endpoint = crate::quic::endpoint(config.bind, &config.quic, Some(server_config))
                .map_err(|err| Error::io(format!("failed to bind QUIC on {}", config.bind), err))?;
            let accept = tokio::spawn(accept_loop(endpoint.clone(), accept));
            server.accept_loops.push(accept.abort_handle());
            server.endpoints.push(endpoint);
        } else {
            // A port in use must fail here as it does with one worker: SO_REUSEPORT alone would
            // let this server join another process's sockets and take a share of its clients.
            // So bind it once without the option (which also picks the port when asked for 0),
            // then at once the workers' sockets with it.
            let mut bind = crate::quic::bind_udp(config.bind, 0, false)
                .and_then(|probe| probe.local_addr())
                .map_err(|err| Error::io(format!("failed to bind QUIC on {}", config.bind), err))?;
            let endpoint_config =
                crate::quic::endpoint_config(&config.quic).map_err(|err| Error::Config {
                    what: "invalid QUIC endpoint settings".into(),
                    source: Some(err.into()),
                })?;
            for index in 0..workers {
                let failed = move |err| {
                    Error::io(format!("failed to bind QUIC on {bind} (SO_REUSEPORT)"), err)
                };
                let socket =
                    crate::quic::bind_udp(bind, config.quic.socket_buffer, true).map_err(failed)?;
                bind = socket.local_addr().map_err(failed)?;
                let worker = Worker {
                    index,
                    endpoint_config: endpoint_config.clone(),
                    server_config: server_config.clone(),
                    accept: Accept {
                        worker: index,
                        ..accept.clone()
                    },
                };
                let (endpoint, stop) = worker.start(socket)?;
                server.endpoints.push(endpoint);
                server._stop_workers.push(stop);
            }
        }
        tracing::info!(addr = ?server.local_addr().ok(), ?alpns, workers, "listening");
        Ok(server)
    }

    /// The bound UDP address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoints[0].local_addr()
    }

    /// How many endpoints (workers) serve the port.
    pub fn workers(&self) -> usize {
        self.endpoints.len()
    }

    /// Hex lowercase SHA-256 of each certificate's DER (first = the one served when the
    /// client's SNI matches none, e.g. IP-literal URLs).
    pub fn fingerprints(&self) -> &[String] {
        &self.fingerprints
    }

    /// A TLS configuration for HTTPS on TCP with this server's certificates (TLS 1.3, ALPN
    /// `http/1.1`): an HTTPS listener beside the QUIC port serves `wss://` sessions and the
    /// HTTP endpoints under the same certificate.
    pub fn https_config(&self) -> Arc<rustls::ServerConfig> {
        self.https.clone()
    }

    /// Next accepted session request (logs and skips failed handshakes). None once closed.
    ///
    /// Cancel-safe: a handshake finishing while this future is dropped is kept for the next call.
    pub async fn accept(&mut self) -> Option<Request> {
        self.requests.recv().await
    }

    /// Close the endpoints and every connection on them; [`QuicServer::accept`] then returns `None`.
    pub fn close(&self) {
        for endpoint in &self.endpoints {
            endpoint.close(quinn::VarInt::from_u32(0), b"server closed");
        }
    }

    /// Wait until every connection has finished closing, so the close frames reach the peers;
    /// call it after [`QuicServer::close`] before the process exits (and bound it: a vanished peer
    /// takes a few probe timeouts to give up on).
    pub async fn wait_idle(&self) {
        // The endpoints close in parallel on their own; waiting for them in turn takes as long.
        for endpoint in &self.endpoints {
            endpoint.wait_idle().await;
        }
    }
}

impl Drop for QuicServer {
    fn drop(&mut self) {
        for accept in &self.accept_loops {
            accept.abort();
        }
    }
}

/// One endpoint of a multi-worker server, before its thread starts.
struct Worker {
    index: usize,
    /// Shared by the workers (one stateless-reset key, see [`crate::quic::endpoint_config`]).
    endpoint_config: quinn::EndpointConfig,
    server_config: quinn::ServerConfig,
    accept: Accept,
}

impl Worker {
    /// Start the worker's thread and runtime with an endpoint on `socket`; returns the endpoint
    /// and the sender whose drop tells the worker to finish (once its connections have ended).
    fn start(
        self,
        socket: std::net::UdpSocket,
    ) -> Result<(quinn::Endpoint, oneshot::Sender<()>), Error> {
        let failed = |err| Error::io("cannot start a server worker", err);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let index = self.index;
        std::thread::Builder::new()
            .name(format!("moq-worker-{index}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let endpoint = match crate::quic::endpoint_on(
                        socket,
                        self.endpoint_config,
                        Some(self.server_config),
                    ) {
                        Ok(endpoint) => endpoint,
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(endpoint.clone()));
                    let accept = tokio::spawn(accept_loop(endpoint.clone(), self.accept));
                    // The server is gone: no new sessions, but the ones running here go on
                    // until their connections end.
                    let _ = stop_rx.await;
                    accept.abort();
                    endpoint.wait_idle().await;
                });
            })
            .map_err(failed)?;
        let endpoint = ready_rx
            .recv()
            .map_err(|_| failed(std::io::Error::other("the thread ended during start")))?
            .map_err(failed)?;
        Ok((endpoint, stop_tx))
    }
}

/// What an accept loop needs: one per endpoint (worker).
#[derive(Clone)]
struct Accept {
    protocols: Arc<Vec<String>>,
    requests: mpsc::Sender<Request>,
    worker: usize,
    timeout: Duration,
    limit: Option<Arc<Semaphore>>,
}

/// Accept connections on `endpoint` and run their handshakes (each in its own task, on the
/// current runtime), handing completed ones to the server. Ends when the endpoint is closed or
/// the server dropped.
async fn accept_loop(endpoint: quinn::Endpoint, accept: Accept) {
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            incoming = endpoint.accept() => match incoming {
                Some(incoming) => {
                    // The slot is taken before any work is done for the connection, so half-open
                    // connections count like established ones.
                    let permit = match &accept.limit {
                        None => None,
                        Some(limit) => match limit.clone().try_acquire_owned() {
                            Ok(permit) => Some(permit),
                            Err(_) => {
                                let remote = canonical(incoming.remote_address());
                                tracing::warn!(%remote, "refusing connection: at the connection limit");
                                incoming.refuse();
                                continue;
                            }
                        },
                    };
                    let deadline = tokio::time::Instant::now() + accept.timeout;
                    handshakes.spawn(handshake(incoming, accept.clone(), deadline, permit));
                }
                None => break,
            },
            Some(done) = handshakes.join_next() => match done {
                Ok(Some(request)) => {
                    if accept.requests.send(request).await.is_err() {
                        break;
                    }
                }
                Ok(None) => {}
                Err(err) if err.is_panic() => tracing::error!(%err, "handshake task panicked"),
                Err(_) => {}
            },
        }
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

/// Run one connection's handshake to a [`Request`] by `deadline`; failures are logged and
/// yield `None`.
async fn handshake(
    incoming: quinn::Incoming,
    accept: Accept,
    deadline: tokio::time::Instant,
    permit: Option<OwnedSemaphorePermit>,
) -> Option<Request> {
    let remote = canonical(incoming.remote_address());
    match handshake_inner(incoming, remote, &accept, deadline).await {
        Ok(mut request) => {
            request.worker = accept.worker;
            request.deadline = deadline;
            request.permit = permit;
            Some(request)
        }
        Err(err) => {
            tracing::warn!(%remote, "handshake failed: {}", report(&err));
            None
        }
    }
}

async fn handshake_inner(
    incoming: quinn::Incoming,
    remote: SocketAddr,
    accept: &Accept,
    deadline: tokio::time::Instant,
) -> Result<Request, Error> {
    let timeout = accept.timeout;
    let peer = remote.to_string();
    let connecting = incoming.accept().map_err(|err| Error::quic(&peer, err))?;
    // Dropping an unfinished handshake abandons the connection (quinn closes it).
    let conn = tokio::time::timeout_at(deadline, connecting)
        .await
        .map_err(|_| Error::Timeout {
            what: "handshake timeout: the QUIC handshake".into(),
            after: timeout,
        })?
        .map_err(|err| Error::quic(&peer, err))?;

    let alpn = conn
        .handshake_data()
        .and_then(|data| data.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|data| data.protocol)
        .and_then(|alpn| String::from_utf8(alpn).ok());
    let Some(alpn) = alpn else {
        // rustls refuses QUIC handshakes without ALPN, so this is belt and braces.
        conn.close(quinn::VarInt::from_u32(0), b"no ALPN");
        return Err(Error::Tls {
            peer,
            source: "no ALPN negotiated".into(),
        });
    };
    let server_name = conn
        .handshake_data()
        .and_then(|data| data.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|data| data.server_name);
    tracing::debug!(%remote, %alpn, ?server_name, "QUIC handshake done");

    if alpn == ALPN_H3 {
        let request =
            tokio::time::timeout_at(deadline, web_transport_quinn::Request::accept(conn.clone()))
                .await
                .map_err(|_| {
                    conn.close(H3_REQUEST_INCOMPLETE, b"handshake timeout: no CONNECT");
                    Error::Timeout {
                        what: "handshake timeout: the WebTransport CONNECT".into(),
                        after: timeout,
                    }
                })?
                .map_err(|err| Error::Connect {
                    peer: peer.clone(),
                    source: err.into(),
                })?;

        // spec §1.3: the first of the client's protocols that we support; none = legacy.
        let protocol = request
            .protocols
            .iter()
            .find(|offered| accept.protocols.contains(offered))
            .cloned();
        tracing::debug!(%remote, url = %request.url, offered = ?request.protocols, ?protocol, "WebTransport request");

        return Ok(Request {
            url: request.url.clone(),
            protocol,
            remote,
            kind: Kind::WebTransport(Box::new(request)),
            worker: 0,
            runtime: tokio::runtime::Handle::current(),
            deadline,
            permit: None,
        });
    }

    // rustls only negotiates ALPNs from our list, so anything else is one of `protocols`.
    // spec §1.2: there is no request URI; the path travels in SETUP (lite-05+).
    let url = Url::parse(&format!("moql://{remote}/")).map_err(|err| Error::Url {
        url: format!("moql://{remote}/"),
        reason: err.to_string(),
    })?;
    Ok(Request {
        url,
        protocol: Some(alpn),
        remote,
        kind: Kind::Quic(conn),
        worker: 0,
        runtime: tokio::runtime::Handle::current(),
        deadline,
        permit: None,
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
            .field("worker", &self.worker)
            .finish()
    }
}

/// A completed handshake awaiting the application's decision: [`Request::ok`] or
/// [`Request::reject`]. Dropping it closes the connection (and frees its connection slot,
/// unless the permit was taken).
pub struct Request {
    url: Url,
    protocol: Option<String>,
    remote: SocketAddr,
    kind: Kind,
    worker: usize,
    runtime: tokio::runtime::Handle,
    deadline: tokio::time::Instant,
    permit: Option<OwnedSemaphorePermit>,
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

    /// Which of the server's workers (endpoints) accepted it: 0 to [`QuicServer::workers`] − 1.
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// The runtime that drives this connection: spawn the session's task here
    /// (`request.runtime().spawn(...)`), so it runs on the same thread as its connection. With
    /// one worker this is the runtime the server was created on.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    /// When the connection's set-up must be over: its first packet plus
    /// [`QuicServerConfig::handshake_timeout`]. The QUIC handshake and CONNECT were done by then;
    /// the application bounds the rest of its set-up (e.g. the moq SETUP) by it too.
    pub fn deadline(&self) -> tokio::time::Instant {
        self.deadline
    }

    /// The connection's slot in [`QuicServerConfig::connection_limit`] (`None` without a limit, or
    /// once taken). Keep it for the session's life: the slot is free again when it is dropped.
    pub fn take_permit(&mut self) -> Option<OwnedSemaphorePermit> {
        self.permit.take()
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
    ///
    /// Fails ([`Error::Connect`]) only when the response cannot be sent: the client is gone.
    pub async fn ok(self) -> Result<Session, Error> {
        match self.kind {
            Kind::WebTransport(request) => {
                let mut response = ConnectResponse::new(StatusCode::OK);
                if let Some(protocol) = self.protocol {
                    response = response.with_protocol(protocol);
                }
                request
                    .respond(response)
                    .await
                    .map_err(|err| Error::Connect {
                        peer: self.remote.to_string(),
                        source: err.into(),
                    })
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
