//! The accept loop: authorise each connection, scope it, and run its session against the shared origin.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use moq_lite::{Error, Handshake, Metric, OriginProducer, Path, Session, Stats, StreamWindow};
use moq_native::{Request, Transport};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::auth::{split_path_and_token, Auth, Scope};

/// A live session, as seen by metrics and shutdown.
pub struct Live {
    /// The session.
    pub session: Arc<Session>,
    /// Its root.
    pub root: Path,
    /// The server worker (QUIC endpoint and thread) it runs on.
    pub worker: usize,
}

/// A cluster link's session in [`Relay::sessions`]: removed (its QUIC counters kept) and closed
/// when dropped, however [`Relay::run_link`] ends.
struct Registered<'a> {
    relay: &'a Relay,
    id: u64,
    live: Arc<Live>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.live.session.close(Error::Cancel);
        let mut sessions = self.relay.sessions();
        sessions.remove(&self.id);
        lock(&self.relay.closed_quic).add_session(&self.live.session);
    }
}

/// QUIC counters summed over sessions (see [`Relay::quic_totals`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QuicTotals {
    /// UDP datagrams sent (QUIC packets, coalesced ones counted once).
    pub udp_datagrams_sent: u64,
    /// UDP send calls: with GSO one call carries several datagrams.
    pub udp_sends: u64,
    /// UDP payload bytes sent.
    pub udp_bytes_sent: u64,
    /// UDP datagrams received.
    pub udp_datagrams_received: u64,
    /// UDP payload bytes received.
    pub udp_bytes_received: u64,
    /// QUIC packets sent.
    pub packets_sent: u64,
    /// QUIC packets declared lost (and retransmitted if they carried data still wanted).
    pub packets_lost: u64,
    /// Bytes in the packets declared lost.
    pub bytes_lost: u64,
    /// Congestion events (the congestion window shrank).
    pub congestion_events: u64,
    /// ACK frames received from peers.
    pub acks_received: u64,
    /// ACK frames sent to peers (alone in a packet or riding on data).
    pub acks_sent: u64,
    /// STREAM frames sent.
    pub stream_frames_sent: u64,
    /// Flow-control credit frames received (MAX_DATA, MAX_STREAM_DATA, MAX_STREAMS): each is
    /// ack-eliciting, so the relay owes the peer an ACK for it.
    pub credit_frames_received: u64,
}

impl QuicTotals {
    /// Add a session's counters, if QUIC carries it (WebSocket and TCP sessions have none).
    pub fn add_session(&mut self, session: &moq_lite::Session) {
        if let Some(stats) = moq_io::quinn_stats(session.transport()) {
            self.add(&stats);
        }
    }

    /// Add one connection's counters.
    pub fn add(&mut self, stats: &quinn::ConnectionStats) {
        self.udp_datagrams_sent += stats.udp_tx.datagrams;
        self.udp_sends += stats.udp_tx.ios;
        self.udp_bytes_sent += stats.udp_tx.bytes;
        self.udp_datagrams_received += stats.udp_rx.datagrams;
        self.udp_bytes_received += stats.udp_rx.bytes;
        self.packets_sent += stats.path.sent_packets;
        self.packets_lost += stats.path.lost_packets;
        self.bytes_lost += stats.path.lost_bytes;
        self.congestion_events += stats.path.congestion_events;
        self.acks_received += stats.frame_rx.acks;
        self.acks_sent += stats.frame_tx.acks;
        self.stream_frames_sent += stats.frame_tx.stream;
        let rx = &stats.frame_rx;
        self.credit_frames_received +=
            rx.max_data + rx.max_stream_data + rx.max_streams_uni + rx.max_streams_bidi;
    }
}

/// Everything the connection tasks share.
pub struct Relay {
    /// Every broadcast, by absolute path.
    pub origin: OriginProducer,
    /// Totals over all sessions.
    pub stats: Arc<Stats>,
    /// Who may do what.
    pub auth: Auth,
    /// Our origin (hop) ID.
    pub origin_id: u64,
    /// Connection limit (`--max-sessions`): the size of [`Relay::connections`].
    pub max_sessions: usize,
    /// One permit per connection, from its first packet (before the QUIC handshake) to the end
    /// of its session, so connections still in their set-up count too. Shared with the server,
    /// which refuses connections when none is left.
    pub connections: Arc<Semaphore>,
    /// The set-up deadline (`--handshake-timeout`), for the log line when it passes.
    pub handshake_timeout: Duration,
    /// Server workers (QUIC endpoints) sessions arrive on, for metrics.
    pub workers: usize,
    /// Live sessions by ID.
    pub sessions: Mutex<HashMap<u64, Arc<Live>>>,
    next_id: AtomicU64,
    /// Sessions accepted since start, by transport (indexed like [`moq_io::Kind::ALL`]).
    accepted: [AtomicU64; 5],
    /// Flips to true when shutting down.
    pub shutdown: watch::Sender<bool>,
    /// Peer stream allowances that start small and grow with use (`--quic-initial-streams`).
    streams: Option<StreamWindow>,
    /// QUIC counters of the sessions that have ended (locked after `sessions`).
    closed_quic: Mutex<QuicTotals>,
    /// This relay's cluster links, for `GET /cluster` and the metrics, by name: the peer's URL
    /// (token hidden), followed by ` (address)` for each address of a host name.
    pub links: Mutex<std::collections::BTreeMap<String, LinkStatus>>,
    /// `--cluster-node`: this relay's advertised address, if given.
    pub node: Option<String>,
}

/// What a cluster link is doing now.
#[derive(Clone)]
pub struct LinkStatus {
    /// The peer's URL as given (`--cluster-connect`), token hidden.
    pub peer: String,
    /// The address dialed: the URL's own for an IP literal, one of the name's for a host name.
    pub address: Option<SocketAddr>,
    /// `connecting`, `up`, `down` (waiting to redial) or `self` (the peer is this relay: not
    /// redialed).
    pub state: &'static str,
    /// The moq-lite version while up.
    pub version: Option<String>,
    /// When the link entered this state, in milliseconds since the Unix epoch.
    pub since_unix_ms: u64,
    /// Sessions set up with this peer since the relay started.
    pub sessions: u64,
    /// Why the last session ended or failed.
    pub last_error: Option<String>,
    /// The session while up: its QUIC and moq-lite counters feed [`LinkStatus::view`].
    pub session: Option<Arc<Session>>,
    /// UDP payload bytes received over the link's ended sessions.
    pub ended_bytes_in: u64,
    /// UDP payload bytes sent over the link's ended sessions.
    pub ended_bytes_out: u64,
    /// ANNOUNCE messages received over the link's ended sessions.
    pub ended_announce_messages: u64,
}

/// A cluster link as `GET /cluster` and the metrics show it: its status and its live session's
/// counters.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkView {
    /// See [`LinkStatus::peer`].
    pub peer: String,
    /// See [`LinkStatus::address`].
    pub address: Option<String>,
    /// See [`LinkStatus::state`].
    pub state: &'static str,
    /// See [`LinkStatus::version`].
    pub version: Option<String>,
    /// When the link entered its state (RFC 3339, UTC).
    pub since: String,
    /// The same instant in milliseconds since the Unix epoch.
    pub since_unix_ms: u64,
    /// See [`LinkStatus::sessions`].
    pub sessions: u64,
    /// See [`LinkStatus::last_error`].
    pub last_error: Option<String>,
    /// The live session's smoothed QUIC round-trip time, in milliseconds (`None` while not up).
    pub rtt_ms: Option<f64>,
    /// UDP payload bytes received over the link since the relay started (all its sessions).
    pub bytes_in: u64,
    /// UDP payload bytes sent over the link since the relay started (all its sessions).
    pub bytes_out: u64,
    /// Broadcasts the peer announces to us over the live session (whether or not they are the
    /// route in use for their path).
    pub routes: u64,
    /// Subscriptions this relay holds on the peer over the live session (one per track).
    pub upstream_subscriptions: u64,
    /// ANNOUNCE messages received over the link since the relay started (all its sessions):
    /// steady once the cluster has converged, growing while a route flaps.
    pub announce_messages: u64,
}

impl LinkStatus {
    /// A link to `peer` (its display URL) at `address`, about to dial for the first time.
    pub fn connecting(peer: &str, address: Option<SocketAddr>) -> Self {
        Self {
            peer: peer.to_string(),
            address,
            state: "connecting",
            version: None,
            since_unix_ms: unix_ms(),
            sessions: 0,
            last_error: None,
            session: None,
            ended_bytes_in: 0,
            ended_bytes_out: 0,
            ended_announce_messages: 0,
        }
    }

    /// The status with the live session's counters read now.
    pub fn view(&self) -> LinkView {
        let transport = self.session.as_ref().map(|s| s.transport_stats());
        let stats = self.session.as_ref().map(|s| s.stats());
        let since = SystemTime::UNIX_EPOCH + Duration::from_millis(self.since_unix_ms);
        LinkView {
            peer: self.peer.clone(),
            address: self.address.map(|a| a.to_string()),
            state: self.state,
            version: self.version.clone(),
            since: humantime::format_rfc3339_millis(since).to_string(),
            since_unix_ms: self.since_unix_ms,
            sessions: self.sessions,
            last_error: self.last_error.clone(),
            rtt_ms: transport
                .and_then(|t| t.rtt)
                .map(|rtt| rtt.as_secs_f64() * 1e3),
            bytes_in: self.ended_bytes_in + transport.map_or(0, |t| t.bytes_received),
            bytes_out: self.ended_bytes_out + transport.map_or(0, |t| t.bytes_sent),
            routes: stats.map_or(0, |s| s.get(Metric::Announcements)),
            upstream_subscriptions: stats.map_or(0, |s| s.get(Metric::SubscriptionsUpstream)),
            announce_messages: self.ended_announce_messages
                + stats.map_or(0, |s| s.get(Metric::AnnounceMessagesIn)),
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Relay {
    /// A relay with an empty origin, admitting up to `max_sessions` connections (at most
    /// [`Semaphore::MAX_PERMITS`]).
    pub fn new(auth: Auth, max_sessions: usize) -> Self {
        Self {
            origin: OriginProducer::new(),
            stats: Stats::new(),
            auth,
            origin_id: random_origin_id(),
            max_sessions,
            connections: Arc::new(Semaphore::new(max_sessions)),
            handshake_timeout: moq_native::DEFAULT_HANDSHAKE_TIMEOUT,
            workers: 1,
            sessions: Mutex::default(),
            next_id: AtomicU64::new(0),
            accepted: Default::default(),
            shutdown: watch::channel(false).0,
            streams: None,
            closed_quic: Mutex::default(),
            links: Mutex::default(),
            node: None,
        }
    }

    /// Update the status of the link named `name` (see [`Relay::links`]); a link not listed yet
    /// starts as [`LinkStatus::connecting`] to `name` itself.
    pub fn set_link(&self, name: &str, update: impl FnOnce(&mut LinkStatus)) {
        let mut links = lock(&self.links);
        let status = links
            .entry(name.to_string())
            .or_insert_with(|| LinkStatus::connecting(name, None));
        update(status);
        status.since_unix_ms = unix_ms();
    }

    /// Forget the link named `name` (its task ended: the address vanished from DNS, or shutdown).
    pub fn remove_link(&self, name: &str) {
        lock(&self.links).remove(name);
    }

    /// Every cluster link as seen now, by name.
    pub fn link_views(&self) -> std::collections::BTreeMap<String, LinkView> {
        let links: Vec<(String, LinkStatus)> = lock(&self.links)
            .iter()
            .map(|(name, status)| (name.clone(), status.clone()))
            .collect();
        // Read the sessions' counters outside the lock (quinn locks each connection).
        links
            .into_iter()
            .map(|(name, status)| (name, status.view()))
            .collect()
    }

    /// Log `timeout` as the set-up deadline (the server enforces it: [`Request::deadline`]).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Connections holding a slot of [`Relay::connections`]: in their set-up or in session.
    pub fn connection_count(&self) -> usize {
        self.max_sessions
            .saturating_sub(self.connections.available_permits())
    }

    /// Sessions arrive on `workers` server workers (for the per-worker session gauge).
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Grow each session's peer stream allowance from the connection's initial one (see
    /// [`StreamWindow`]); `None` leaves the connections' limits as they are.
    pub fn with_stream_window(mut self, streams: Option<StreamWindow>) -> Self {
        self.streams = streams;
        self
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Live>>> {
        lock(&self.sessions)
    }

    /// Serve one incoming connection until its session ends.
    pub async fn handle(self: Arc<Self>, mut request: Request) {
        let remote = request.remote_addr();
        let worker = request.worker();
        // The connection's slot, taken by the server at its first packet: held until the
        // session ends, released on every way out of this function.
        let _slot = request.take_permit();
        // The set-up (WebTransport CONNECT, SETUP exchange, auth) is a large future that is done
        // after a few round trips; boxed, it is freed then instead of staying inline in this
        // task for the session's whole life (~2 KB less per connected viewer).
        let Some((handshake, scope)) = Box::pin(self.accept(request)).await else {
            return;
        };
        if let Err(err) = self.run(handshake, scope, remote, worker).await {
            tracing::debug!(%remote, %err, "session ended");
        }
    }

    /// Serve a session over a WebSocket the HTTP listener upgraded: `scope` was authorised on the
    /// upgrade request (its URL path and `?jwt=`), `permit` is the connection's `--max-sessions`
    /// slot, held until the session ends.
    pub async fn handle_websocket(
        self: Arc<Self>,
        transport: moq_io::Session,
        scope: Scope,
        remote: SocketAddr,
        permit: OwnedSemaphorePermit,
    ) {
        let _slot = permit;
        let deadline = Instant::now() + self.handshake_timeout;
        let Some(handshake) = Box::pin(self.setup(transport, deadline, remote)).await else {
            return;
        };
        if let Err(err) = self.run(handshake, scope, remote, 0).await {
            tracing::debug!(%remote, %err, "WebSocket session ended");
        }
    }

    /// Serve a session over an accepted plain-TCP connection (`--tcp-listen`, QMux with the moq
    /// version negotiated in-band). Like raw QUIC there is no URL: the path and token come in
    /// the client's SETUP (lite-05+), older versions get the root.
    pub async fn handle_tcp(
        self: Arc<Self>,
        stream: tokio::net::TcpStream,
        protocols: Arc<Vec<String>>,
        permit: OwnedSemaphorePermit,
    ) {
        let _slot = permit;
        let remote = stream
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let deadline = Instant::now() + self.handshake_timeout;
        let transport =
            match moq_native::accept_tcp(stream, &protocols, self.handshake_timeout).await {
                Ok(transport) => transport,
                Err(err) => {
                    tracing::debug!(%remote, %err, "QMux over TCP handshake failed");
                    return;
                }
            };
        let Some(handshake) = Box::pin(self.setup(transport, deadline, remote)).await else {
            return;
        };
        let (path, token) = split_path_and_token(handshake.setup_path().unwrap_or("/"));
        let scope = match self.auth.verify(&path, token.as_deref()) {
            Ok(scope) => scope,
            Err(err) => {
                tracing::warn!(%remote, %path, %err, "refusing TCP session: unauthorized");
                handshake.reject(Error::Unauthorized);
                return;
            }
        };
        if let Err(err) = self.run(handshake, scope, remote, 0).await {
            tracing::debug!(%remote, %err, "TCP session ended");
        }
    }

    /// Authorise a connection and run the moq-lite handshake by the connection's deadline;
    /// `None` if it was refused, failed or ran out of time.
    async fn accept(&self, request: Request) -> Option<(Handshake, Scope)> {
        let remote = request.remote_addr();
        let deadline = request.deadline();
        Some(match request.transport() {
            Transport::WebTransport => {
                let url = request.url().clone();
                let token = url
                    .query_pairs()
                    .find(|(k, _)| k == "jwt")
                    .map(|(_, v)| v.into_owned());
                let scope = match self.auth.verify(url.path(), token.as_deref()) {
                    Ok(scope) => scope,
                    Err(err) => {
                        tracing::warn!(%remote, path = url.path(), %err, "refusing WebTransport session: 401");
                        request.reject(401).await;
                        return None;
                    }
                };
                let transport = match tokio::time::timeout_at(deadline, request.ok()).await {
                    Ok(Ok(t)) => t,
                    Ok(Err(err)) => {
                        tracing::debug!(%remote, %err, "WebTransport accept failed");
                        return None;
                    }
                    Err(_) => {
                        // The request, dropped with the future, closed the connection.
                        tracing::warn!(%remote, timeout = ?self.handshake_timeout, "handshake timeout: the CONNECT response was not sent in time");
                        return None;
                    }
                };
                (self.setup(transport, deadline, remote).await?, scope)
            }
            Transport::Quic => {
                let transport = match request.ok().await {
                    Ok(t) => t,
                    Err(err) => {
                        tracing::debug!(%remote, %err, "QUIC accept failed");
                        return None;
                    }
                };
                let handshake = self.setup(transport, deadline, remote).await?;
                // Raw QUIC has no URL: lite-05 carries it in SETUP; older versions get the root.
                let (path, token) = split_path_and_token(handshake.setup_path().unwrap_or("/"));
                match self.auth.verify(&path, token.as_deref()) {
                    Ok(scope) => (handshake, scope),
                    Err(err) => {
                        tracing::warn!(%remote, %path, %err, "refusing QUIC session: unauthorized");
                        handshake.reject(Error::Unauthorized);
                        return None;
                    }
                }
            }
        })
    }

    /// The moq-lite SETUP exchange, by `deadline`. Past it the connection is closed with
    /// [`Error::Timeout`] (code 3) and the reason `handshake timeout: no SETUP`.
    async fn setup(
        &self,
        transport: impl Into<moq_io::Session>,
        deadline: Instant,
        remote: std::net::SocketAddr,
    ) -> Option<Handshake> {
        let transport = transport.into();
        let connection = transport.clone();
        match tokio::time::timeout_at(deadline, Handshake::accept(transport)).await {
            // A relay dialing the addresses of its own host name (a headless Service lists every
            // pod, this one too) may reach itself where its address check could not tell: the
            // SETUP's origin id (lite-05) can.
            Ok(Ok(handshake))
                if handshake.peer_setup().and_then(|s| s.origin) == Some(self.origin_id) =>
            {
                tracing::warn!(%remote, origin_id = self.origin_id, "refusing a cluster link from this relay to itself");
                handshake.reject(crate::cluster::SELF_LINK);
                None
            }
            Ok(Ok(handshake)) => Some(handshake),
            Ok(Err(err)) => {
                tracing::debug!(%remote, %err, "handshake failed");
                None
            }
            Err(_) => {
                tracing::warn!(%remote, timeout = ?self.handshake_timeout, "handshake timeout: no SETUP in time, closing the connection");
                connection.close(Error::Timeout.code(), b"handshake timeout: no SETUP");
                // Over WebTransport the close is a capsule written by a background task: let it
                // out (bounded: the peer may be gone) before the connection is dropped.
                let _ = tokio::time::timeout(Duration::from_secs(1), connection.closed()).await;
                None
            }
        }
    }

    async fn run(
        &self,
        handshake: Handshake,
        scope: Scope,
        remote: std::net::SocketAddr,
        worker: usize,
    ) -> Result<(), Error> {
        let version = handshake.version();
        let root = self.origin.with_root(&scope.root)?;
        let mut server = moq_lite::Server::new()
            .with_origin_id(self.origin_id)
            .with_stats(self.stats.clone());
        if let Some(window) = self.streams {
            server = server.with_stream_window(window);
        }
        if !scope.subscribe.is_empty() {
            server = server.publish(root.consume().consume_only(&scope.subscribe)?);
        }
        if !scope.publish.is_empty() {
            server = server.subscribe(root.publish_only(&scope.publish)?);
        }
        let session = handshake.start(server)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let transport = session.transport_kind();
        if let Some(i) = moq_io::Kind::ALL.iter().position(|k| *k == transport) {
            self.accepted[i].fetch_add(1, Ordering::Relaxed);
        }
        tracing::info!(id, %remote, %version, %transport, root = %scope.root, publish = ?scope.publish, subscribe = ?scope.subscribe, worker, "session accepted");
        let live = Arc::new(Live {
            session: Arc::new(session),
            root: scope.root.clone(),
            worker,
        });
        self.sessions().insert(id, live.clone());

        let expires = scope.expires.map(|at| {
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        });
        let mut shutdown = self.shutdown.subscribe();
        let result = tokio::select! {
            err = live.session.closed() => Err(err),
            // spec: the token's exp holds for the whole session, not just at connect.
            _ = sleep_or_forever(expires) => {
                tracing::info!(id, %remote, "token expired: closing session");
                live.session.close(Error::Unauthorized);
                Ok(())
            }
            // The peer is leaving (GOAWAY) and nothing we subscribe to comes from it any more.
            () = live.session.drained() => {
                tracing::info!(id, %remote, "peer sent GOAWAY and its subscriptions moved: closing");
                live.session.close(Error::Cancel);
                Ok(())
            }
            _ = async { shutdown.wait_for(|s| *s).await.map(|_| ()) } => {
                // Ask the peer to leave; it gets the drain time to do so.
                let _ = live.session.goaway("").await;
                Err(live.session.closed().await)
            }
        };
        {
            // Under the sessions lock, so a metrics scrape sees it either live or closed.
            let mut sessions = self.sessions();
            sessions.remove(&id);
            lock(&self.closed_quic).add_session(&live.session);
        }
        let transport = live.session.transport_stats();
        let quic = moq_io::quinn_stats(live.session.transport()).unwrap_or_default();
        tracing::info!(
            id,
            %remote,
            transport = %live.session.transport_kind(),
            rtt_ms = transport.rtt.unwrap_or_default().as_secs_f64() * 1e3,
            bytes_sent = transport.bytes_sent,
            packets_sent = quic.path.sent_packets,
            packets_lost = quic.path.lost_packets,
            congestion_events = quic.path.congestion_events,
            "session closed"
        );
        result
    }

    /// Run a cluster link this relay dialed until it ends, with the reason: counted and drained
    /// like an accepted session (on shutdown the peer gets GOAWAY and the drain time to move its
    /// subscriptions), and closed once the peer itself sent GOAWAY and our subscriptions moved off.
    pub async fn run_link(&self, session: Arc<Session>) -> Error {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let live = Arc::new(Live {
            session,
            root: Path::ROOT,
            worker: 0,
        });
        self.sessions().insert(id, live.clone());
        // Also when the link's task is aborted (its address left the DNS answer): the session is
        // closed and leaves the table, not kept alive by it.
        let _registered = Registered {
            relay: self,
            id,
            live: live.clone(),
        };
        let mut shutdown = self.shutdown.subscribe();
        tokio::select! {
            err = live.session.closed() => err,
            () = live.session.drained() => {
                tracing::info!(id, "cluster peer sent GOAWAY and our subscriptions moved: closing the link");
                live.session.close(Error::Cancel);
                Error::Closed
            }
            _ = async { shutdown.wait_for(|s| *s).await.map(|_| ()) } => {
                let _ = live.session.goaway("").await;
                live.session.closed().await
            }
        }
    }

    /// Stop: GOAWAY to every session, then wait up to `timeout` for them to leave.
    pub async fn drain(&self, timeout: Duration) {
        self.shutdown.send_replace(true);
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.sessions().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let left: Vec<_> = self.sessions().values().cloned().collect();
        for live in &left {
            live.session.close(Error::Cancel);
        }
        // A WebTransport close is a capsule written by a background task: let it out (bounded,
        // the peer may be gone) before the endpoint is closed under it.
        let closed = futures::future::join_all(left.iter().map(|live| live.session.closed()));
        let _ = tokio::time::timeout(Duration::from_secs(1), closed).await;
    }

    /// QUIC counters over every accepted session since start, ended ones included (connections
    /// refused or failing their set-up are not counted).
    pub fn quic_totals(&self) -> QuicTotals {
        let sessions = self.sessions();
        let mut totals = *lock(&self.closed_quic);
        for live in sessions.values() {
            totals.add_session(&live.session);
        }
        totals
    }

    /// Sessions accepted since start over `kind` (cluster links this relay dialed excluded).
    pub fn accepted(&self, kind: moq_io::Kind) -> u64 {
        moq_io::Kind::ALL
            .iter()
            .position(|k| *k == kind)
            .map_or(0, |i| self.accepted[i].load(Ordering::Relaxed))
    }

    /// Live sessions (for metrics).
    pub fn live(&self) -> Vec<(u64, Arc<Live>)> {
        self.sessions()
            .iter()
            .map(|(id, l)| (*id, l.clone()))
            .collect()
    }
}

/// Lock a mutex whose data stays valid after any panic point (plain maps and counters).
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

async fn sleep_or_forever(duration: Option<Duration>) {
    match duration {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// A random origin ID in [1, 2^53) (browsers read hop IDs as JS numbers).
fn random_origin_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    (hasher.finish() % ((1 << 53) - 1)) + 1
}
