//! Shared set-up for the session tests: a server on a free port acting as a tiny relay (one origin,
//! every session publishes into it and is served from it), and clients pinned to its certificate.
#![allow(dead_code)] // each test binary uses a different subset

pub mod proxy;

use std::time::Duration;

use bytes::Bytes;
use moq_lite::{
    BroadcastProducer, Client, OriginProducer, Path, Server, Session, Track, TrackInfo,
    TrackProducer,
};
use moq_native::{QuicClientConfig, QuicServerConfig, ServerTlsConfig};
use tokio::task::JoinHandle;

/// Upper bound for a whole test.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// How a client reaches the server.
#[derive(Debug, Clone, Copy)]
pub enum Via {
    /// WebTransport (`https://`), the protocol offered in WT-Available-Protocols.
    WebTransport,
    /// Raw QUIC (`moql://`), the protocol offered as the TLS ALPN.
    Quic,
    /// The in-memory pair (`moq_io::memory`), the first protocol offered as the negotiated one:
    /// no sockets and no clocks of its own, so a test may run on paused time.
    Memory,
}

/// A server whose sessions all share one origin; dropped → stopped.
pub struct Relay {
    /// Accepts the server side of [`Via::Memory`] connections.
    memory: tokio::sync::mpsc::UnboundedSender<moq_io::memory::MemoryConnection>,
    pub origin: OriginProducer,
    /// Totals over every session the relay accepted.
    pub stats: std::sync::Arc<moq_lite::Stats>,
    pub fingerprint: String,
    pub port: u16,
    sessions: std::sync::Arc<std::sync::Mutex<Vec<Session>>>,
    task: JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn init_log() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Start a relay-like server accepting `protocols` (empty = all defaults).
pub fn relay(protocols: &[&str]) -> Relay {
    relay_with(protocols, moq_native::QuicConfig::default(), None)
}

/// [`relay`] with its own QUIC settings and, optionally, peer stream allowances that grow.
pub fn relay_with(
    protocols: &[&str],
    quic: moq_native::QuicConfig,
    streams: Option<moq_lite::StreamWindow>,
) -> Relay {
    init_log();
    let mut server = moq_native::QuicServer::new(QuicServerConfig {
        bind: "[::]:0".parse().unwrap(),
        tls: ServerTlsConfig {
            generate: vec!["localhost".into()],
            ..Default::default()
        },
        protocols: protocols.iter().map(|p| p.to_string()).collect(),
        quic,
        workers: 1,
        ..Default::default()
    })
    .unwrap();
    let port = server.local_addr().unwrap().port();
    let fingerprint = server.fingerprints()[0].clone();
    let origin = OriginProducer::new();
    let shared = origin.clone();
    let stats = moq_lite::Stats::new();
    let relay_stats = stats.clone();
    let sessions = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Session>::new()));
    let accepted = sessions.clone();
    let (memory, mut memory_rx) =
        tokio::sync::mpsc::unbounded_channel::<moq_io::memory::MemoryConnection>();
    let task = tokio::spawn(async move {
        loop {
            let transport: moq_io::Session = tokio::select! {
                request = server.accept() => {
                    let Some(request) = request else { break };
                    match request.ok().await {
                        Ok(transport) => transport.into(),
                        Err(_) => continue,
                    }
                }
                Some(memory) = memory_rx.recv() => memory.into(),
            };
            let mut server = Server::new()
                .publish(shared.consume())
                .subscribe(shared.clone())
                .with_origin_id(1000)
                .with_stats(relay_stats.clone());
            if let Some(window) = streams {
                server = server.with_stream_window(window);
            }
            // On its own task: a memory client's handshake waits on this accept.
            let accepted = accepted.clone();
            tokio::spawn(async move {
                match server.accept(transport).await {
                    Ok(session) => accepted.lock().unwrap().push(session),
                    Err(err) => tracing::warn!(%err, "test relay: session failed"),
                }
            });
        }
    });
    Relay {
        memory,
        origin,
        stats,
        fingerprint,
        port,
        sessions,
        task,
    }
}

impl Relay {
    /// Payload bytes the relay's sessions hold and have not handed to QUIC yet.
    pub fn queued_bytes(&self) -> u64 {
        self.sessions
            .lock()
            .unwrap()
            .iter()
            .map(Session::queued_bytes)
            .sum()
    }

    /// Connect a client offering `protocols`.
    pub async fn connect(&self, via: Via, protocols: &[&str], client: Client) -> Session {
        let url = match via {
            Via::WebTransport => format!("https://localhost:{}/", self.port),
            Via::Quic => format!("moql://localhost:{}/", self.port),
            Via::Memory => {
                // The legacy `moql` means no negotiated protocol: the compat SETUP (lite-02).
                let protocol = match protocols.first() {
                    Some(&"moql") => None,
                    Some(p) => Some(*p),
                    None => Some("moq-lite-06"),
                };
                let (ours, theirs) = moq_io::memory::pair(protocol);
                self.memory.send(theirs).unwrap();
                return client.connect(ours).await.unwrap();
            }
        };
        self.connect_url(&url, protocols, client).await
    }

    /// Connect a subscribing client and wait for broadcast `name` to be announced to it; keep the
    /// session alive as long as the broadcast is used.
    pub async fn watch(&self, via: Via, name: &str) -> (Session, moq_lite::BroadcastConsumer) {
        let origin = moq_lite::OriginProducer::new();
        let session = self
            .connect(via, &[], Client::new().subscribe(origin.clone()))
            .await;
        let broadcast =
            tokio::time::timeout(TIMEOUT, origin.consume().wait_for_broadcast(&path(name)))
                .await
                .unwrap()
                .unwrap();
        (session, broadcast)
    }

    /// Connect a client to `url` (e.g. through a proxy) pinning this relay's certificate.
    pub async fn connect_url(&self, url: &str, protocols: &[&str], client: Client) -> Session {
        let native = moq_native::QuicClient::new(QuicClientConfig {
            fingerprints: vec![self.fingerprint.clone()],
            protocols: protocols.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        })
        .unwrap();
        let connection = native.connect(url.parse().unwrap()).await.unwrap();
        client
            .with_setup_path(connection.setup_path)
            .connect(connection.session)
            .await
            .unwrap()
    }
}

pub fn path(s: &str) -> Path {
    Path::new(s).unwrap()
}

/// A broadcast with one track, published into a fresh origin; returns (origin, broadcast, track).
pub fn broadcast(name: &str, track: &str) -> (OriginProducer, BroadcastProducer, TrackProducer) {
    let origin = OriginProducer::new();
    let broadcast = BroadcastProducer::new();
    let track = broadcast.create_track(Track::new(track), TrackInfo::default());
    origin
        .publish_broadcast(&path(name), broadcast.consume())
        .unwrap();
    (origin, broadcast, track)
}

/// Write group `n` with `frames` frames of `size` bytes each (timestamps n*1000 + i).
pub fn write_group(track: &TrackProducer, frames: usize, size: usize) -> u64 {
    let mut group = track.append_group().unwrap();
    let seq = group.info().sequence;
    for i in 0..frames {
        group
            .write_frame(
                seq * 1000 + i as u64,
                Bytes::from(vec![(seq % 251) as u8; size]),
            )
            .unwrap();
    }
    group.finish();
    seq
}

/// A hand-driven lite-05 peer over raw QUIC, with its (empty) SETUP already sent: tests speak
/// bytes to the server with it.
pub async fn raw_peer(relay: &Relay) -> moq_native::web_transport_quinn::Session {
    let native = moq_native::QuicClient::new(QuicClientConfig {
        fingerprints: vec![relay.fingerprint.clone()],
        protocols: vec!["moq-lite-05".into()],
        ..Default::default()
    })
    .unwrap();
    let url = format!("moql://localhost:{}/", relay.port).parse().unwrap();
    let transport = native.connect(url).await.unwrap().session;
    let mut setup = transport.open_uni().await.unwrap();
    setup.write_all(&[0x01, 0x01, 0x00]).await.unwrap(); // Setup stream, empty SETUP
    setup.finish().unwrap();
    // The server answers with its own SETUP on a uni stream (spec §1.7).
    let mut server_setup = Wire::new(
        tokio::time::timeout(TIMEOUT, transport.accept_uni())
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(
        server_setup.bytes(1).await,
        [0x01],
        "server SETUP stream first"
    );
    let setup: moq_lite::coding::Setup = server_setup.next().await;
    assert_eq!(setup.origin, Some(1000));
    server_setup.finished().await;
    transport
}

/// Reads messages off a receive stream with the real codec.
pub struct Wire {
    pub recv: moq_native::web_transport_quinn::RecvStream,
    buf: bytes::BytesMut,
}

impl Wire {
    pub fn new(recv: moq_native::web_transport_quinn::RecvStream) -> Self {
        Self {
            recv,
            buf: bytes::BytesMut::new(),
        }
    }

    /// The next message, waiting at most TIMEOUT.
    pub async fn next<T: moq_lite::coding::Decode>(&mut self) -> T {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                let mut cursor = &self.buf[..];
                match T::decode(&mut cursor, moq_lite::Version::Lite05) {
                    Ok(msg) => {
                        let used = self.buf.len() - cursor.len();
                        let _ = self.buf.split_to(used);
                        return msg;
                    }
                    Err(moq_lite::coding::DecodeError::Short) => {}
                    Err(err) => panic!("cannot decode: {err}"),
                }
                let chunk = self
                    .recv
                    .read_chunk(65536, true)
                    .await
                    .unwrap()
                    .expect("stream ended early");
                self.buf.extend_from_slice(&chunk.bytes);
            }
        })
        .await
        .expect("no message")
    }

    /// `n` raw bytes.
    pub async fn bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            let chunk = tokio::time::timeout(TIMEOUT, self.recv.read_chunk(65536, true))
                .await
                .unwrap()
                .unwrap()
                .expect("stream ended early");
            self.buf.extend_from_slice(&chunk.bytes);
        }
        self.buf.split_to(n).to_vec()
    }

    /// Assert the stream finishes with nothing more on it.
    pub async fn finished(&mut self) {
        assert!(self.buf.is_empty(), "unread bytes: {:?}", self.buf);
        let end = tokio::time::timeout(TIMEOUT, self.recv.read_chunk(65536, true))
            .await
            .unwrap()
            .unwrap();
        assert!(end.is_none(), "expected FIN, got more bytes");
    }
}

/// A SUBSCRIBE with default preferences.
pub fn subscribe(id: u64, broadcast: &str, track: &str) -> moq_lite::coding::Subscribe {
    moq_lite::coding::Subscribe {
        id,
        broadcast: path(broadcast),
        track: track.into(),
        priority: 0,
        ordered: false,
        max_latency_ms: 0,
        start_group: None,
        end_group: None,
        start_frame: 0,
        end_frame: None,
    }
}

/// Open a bidi stream of `kind` and send `msg` (lite-05 encoding).
pub async fn open<T: moq_lite::coding::Encode>(
    transport: &moq_native::web_transport_quinn::Session,
    kind: moq_lite::coding::BiStreamType,
    msg: &T,
) -> (moq_native::web_transport_quinn::SendStream, Wire) {
    use moq_lite::coding::Encode;
    let (mut send, recv) = transport.open_bi().await.unwrap();
    let mut bytes = kind.encode_to_vec(moq_lite::Version::Lite05);
    bytes.extend(msg.encode_to_vec(moq_lite::Version::Lite05));
    send.write_all(&bytes).await.unwrap();
    (send, Wire::new(recv))
}
