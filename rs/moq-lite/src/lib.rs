//! moq-lite: live pub/sub over QUIC, WebTransport and QMux (WebSocket, TCP).
//!
//! A publisher announces **broadcasts** (by path) made of **tracks** (by name); a track is a
//! sequence of **groups** (each a QUIC stream, the unit a late or slow subscriber skips) of
//! timestamped **frames**. Relays fan one upstream subscription out to any number of viewers.
//! Any live data works, not only media.
//!
//! ```text
//!   application          OriginProducer / BroadcastProducer / TrackProducer … (model)
//!        │                               ▲ consumers, one per reader
//!   moq-lite session     Client / Server / Session                      (session)
//!        │               messages as bytes, per version                 (coding)
//!   transport            moq_io::Connection: QUIC, WebTransport, QMux over WebSocket or
//!                        TCP (set up by the moq-native crate), or moq_io::memory::pair()
//! ```
//!
//! The wire protocol is moq-lite-05 (and 04, 03, and 01/02 through the compat SETUP), byte for
//! byte as spoken by the public reference; [`coding`] holds the codec, pure functions over bytes.
//!
//! # Example
//! Publish a broadcast with one track on a server, and read it from a client:
//! ```
//! use moq_lite::{BroadcastProducer, OriginProducer, Path, Track, TrackInfo};
//! # #[tokio::main] async fn main() -> anyhow::Result<()> {
//! # let mut server = moq_native::QuicServer::new(moq_native::QuicServerConfig {
//! #     bind: "[::]:0".parse()?,
//! #     tls: moq_native::ServerTlsConfig { generate: vec!["localhost".into()], ..Default::default() },
//! #     ..Default::default() })?;
//! # let (port, fingerprint) = (server.local_addr()?.port(), server.fingerprints()[0].clone());
//!
//! // Publisher: a broadcast "clock" with a track "seconds", served to whoever connects.
//! let origin = OriginProducer::new();
//! let broadcast = BroadcastProducer::new();
//! let track = broadcast.create_track(Track::new("seconds"), TrackInfo::default());
//! origin.publish_broadcast(&Path::new("clock")?, broadcast.consume())?;
//! let publish = origin.consume();
//! tokio::spawn(async move {
//!     let transport = server.accept().await.unwrap().ok().await.unwrap();
//!     let session = moq_lite::Server::new().publish(publish).accept(transport).await.unwrap();
//!     session.closed().await;
//! });
//! track.write_frame(0, "hello".into())?; // a group with one frame
//!
//! // Subscriber: connect, discover the broadcast, read the latest group.
//! let client = moq_native::QuicClient::new(moq_native::QuicClientConfig { fingerprints: vec![fingerprint], ..Default::default() })?;
//! let connection = client.connect(format!("https://localhost:{port}/").parse()?).await?;
//! let remote = OriginProducer::new();
//! let _session = moq_lite::Client::new().subscribe(remote.clone()).connect(connection.session).await?;
//! let clock = remote.consume().wait_for_broadcast(&Path::new("clock")?).await?;
//! let mut seconds = clock.subscribe_track(&Track::new("seconds"));
//! let mut group = seconds.next_group().await?.expect("a group");
//! let (_frame, payload) = group.read_frame().await?.expect("a frame");
//! assert_eq!(payload, "hello");
//! # Ok(()) }
//! ```
//!
//! # What a slow subscriber costs
//! Nothing unbounded: a track keeps its latest group plus older groups only while they are younger
//! than its max latency (and within [`MAX_CACHE_GROUPS`]/[`MAX_CACHE_BYTES`]); a lagging consumer
//! skips to newer groups ([`TrackConsumer::skipped`] tells how many); a publisher resets group
//! streams that fall too far behind (code 2, `Old`) and keeps at most [`MAX_INFLIGHT_GROUPS`] per
//! subscription in flight.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod coding;
mod error;
mod lock;
pub mod model;
mod path;
mod session;
mod stats;

pub use coding::Version;
pub use error::Error;
pub use model::*;
pub use path::{Path, PathError, MAX_PATH_LEN, MAX_PATH_SEGMENTS};
pub use session::{
    Client, Handshake, ProbeReports, Server, Session, StreamWindow, MAX_INFLIGHT_GROUPS,
};
pub use stats::{Metric, Stats};
