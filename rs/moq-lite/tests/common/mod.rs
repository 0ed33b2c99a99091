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
use moq_native::{ClientConfig, ServerConfig, ServerTlsConfig};
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
}

/// A server whose sessions all share one origin; dropped → stopped.
pub struct Relay {
    pub origin: OriginProducer,
    pub fingerprint: String,
    pub port: u16,
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
    init_log();
    let mut server = moq_native::Server::new(ServerConfig {
        bind: "[::]:0".parse().unwrap(),
        tls: ServerTlsConfig {
            generate: vec!["localhost".into()],
            ..Default::default()
        },
        protocols: protocols.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    })
    .unwrap();
    let port = server.local_addr().unwrap().port();
    let fingerprint = server.fingerprints()[0].clone();
    let origin = OriginProducer::new();
    let shared = origin.clone();
    let task = tokio::spawn(async move {
        let mut sessions: Vec<Session> = Vec::new();
        while let Some(request) = server.accept().await {
            let Ok(transport) = request.ok().await else {
                continue;
            };
            let server = Server::new()
                .publish(shared.consume())
                .subscribe(shared.clone())
                .with_origin_id(1000);
            match server.accept(transport).await {
                Ok(session) => sessions.push(session),
                Err(err) => tracing::warn!(%err, "test relay: session failed"),
            }
        }
    });
    Relay {
        origin,
        fingerprint,
        port,
        task,
    }
}

impl Relay {
    /// Connect a client offering `protocols`.
    pub async fn connect(&self, via: Via, protocols: &[&str], client: Client) -> Session {
        let url = match via {
            Via::WebTransport => format!("https://localhost:{}/", self.port),
            Via::Quic => format!("moql://localhost:{}/", self.port),
        };
        self.connect_url(&url, protocols, client).await
    }

    /// Connect a client to `url` (e.g. through a proxy) pinning this relay's certificate.
    pub async fn connect_url(&self, url: &str, protocols: &[&str], client: Client) -> Session {
        let native = moq_native::Client::new(ClientConfig {
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
