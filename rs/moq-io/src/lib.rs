//! The transport moq sessions run on.
//!
//! A moq-lite session needs little from its transport: ordered, reliable, independently
//! cancellable streams in both directions, opened by either side, with a send priority, and a
//! connection that closes with an application code. This crate says exactly that as a trait,
//! [`Connection`] (with [`SendStream`] and [`RecvStream`]), so the session layer names no QUIC
//! library and runs unchanged over:
//!
//! | transport | type | feature |
//! |---|---|---|
//! | raw QUIC and WebTransport (quinn) | `web_transport_quinn::Session` | `quinn` |
//! | QMux over WebSocket or TCP | `qmux::Session` | `qmux` |
//! | in memory, for tests | [`memory::pair`] | always |
//!
//! A [`Session`] is a shared handle to any of them; every `T: Connection` converts into one.
//!
//! Futures are boxed ([`BoxFuture`]) so the traits stay object-safe: one allocation per
//! read or write call, a few tens of nanoseconds next to the syscalls and crypto behind them.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub mod memory;
#[cfg(feature = "qmux")]
mod qmux_impl;
#[cfg(feature = "quinn")]
mod quinn_impl;

#[cfg(feature = "qmux")]
pub use qmux_impl::{ByteCounters, QmuxSession};
#[cfg(feature = "quinn")]
pub use quinn_impl::quinn_stats;

/// Both halves of a bidirectional stream.
pub type BiStream = (Box<dyn SendStream>, Box<dyn RecvStream>);

/// A boxed, sendable future: what the trait methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a connection or a stream operation failed, as the transport saw it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The connection was closed with an application code (by the peer, or by us).
    #[error("connection closed: code {code}: {reason}")]
    Closed {
        /// The application close code.
        code: u32,
        /// The close reason, as sent.
        reason: String,
    },
    /// The peer reset the stream we read (RESET_STREAM) or stopped the one we write
    /// (STOP_SENDING), with an application code.
    #[error("stream cancelled by the peer: code {0}")]
    Stream(u32),
    /// Anything else: an idle timeout, a transport-level protocol error, a dead socket.
    #[error("transport: {0}")]
    Other(String),
}

/// What kind of transport carries a connection (for logs, metrics and `stats.transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Raw QUIC (the moq ALPN in TLS).
    Quic,
    /// WebTransport over HTTP/3.
    WebTransport,
    /// QMux over a WebSocket (`ws://`, `wss://`).
    WebSocket,
    /// QMux over a plain TCP connection (`moql+tcp://`).
    Tcp,
    /// The in-memory pair ([`memory::pair`]).
    Memory,
}

impl Kind {
    /// Every kind, in the order metrics list them.
    pub const ALL: [Kind; 5] = [
        Kind::Quic,
        Kind::WebTransport,
        Kind::WebSocket,
        Kind::Tcp,
        Kind::Memory,
    ];

    /// A short lowercase name: `quic`, `webtransport`, `websocket`, `tcp`, `memory`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Quic => "quic",
            Kind::WebTransport => "webtransport",
            Kind::WebSocket => "websocket",
            Kind::Tcp => "tcp",
            Kind::Memory => "memory",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A connection's counters, as far as its transport knows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// The smoothed round-trip time.
    pub rtt: Option<Duration>,
    /// The congestion window in bytes (QUIC), if known.
    pub cwnd: Option<u64>,
    /// The transport's estimate of what it can send, in bits per second, if it has one.
    pub send_rate: Option<u64>,
    /// Bytes sent on the wire (UDP payload, or WebSocket/TCP bytes).
    pub bytes_sent: u64,
    /// Bytes received on the wire.
    pub bytes_received: u64,
}

/// One connection: streams in both directions, opened by either side.
pub trait Connection: Send + Sync + 'static {
    /// Open a unidirectional stream (waits while the peer's stream limit is reached).
    fn open_uni(&self) -> BoxFuture<'_, Result<Box<dyn SendStream>, Error>>;
    /// Open a bidirectional stream.
    fn open_bi(&self) -> BoxFuture<'_, Result<BiStream, Error>>;
    /// The next unidirectional stream the peer opened.
    fn accept_uni(&self) -> BoxFuture<'_, Result<Box<dyn RecvStream>, Error>>;
    /// The next bidirectional stream the peer opened.
    fn accept_bi(&self) -> BoxFuture<'_, Result<BiStream, Error>>;
    /// Close the connection with an application code and reason.
    fn close(&self, code: u32, reason: &[u8]);
    /// Resolves when the connection is closed, with why.
    fn closed(&self) -> BoxFuture<'_, Error>;
    /// The application protocol the transport negotiated (TLS ALPN, WebTransport protocol,
    /// WebSocket subprotocol without its `qmux-0N.` prefix), if any.
    fn protocol(&self) -> Option<String>;
    /// What carries this connection.
    fn kind(&self) -> Kind;
    /// The connection's counters now.
    fn stats(&self) -> Stats;
    /// Allow the peer `n` streams of one direction open at once, where the transport lets us
    /// change that after the handshake (QUIC); a no-op elsewhere.
    fn set_max_streams(&self, bidi: bool, n: u64) {
        let _ = (bidi, n);
    }
    /// The concrete connection, for transport-specific access (e.g. [`quinn_stats`]).
    fn as_any(&self) -> &dyn Any;
}

/// The sending half of a stream. Dropping it without [`SendStream::finish`] leaves the stream
/// unfinished; callers reset or finish explicitly.
pub trait SendStream: Send + 'static {
    /// Write all of `buf`, waiting for flow control and the send queue.
    fn write_all<'a>(&'a mut self, buf: &'a [u8]) -> BoxFuture<'a, Result<(), Error>>;
    /// Write one chunk without copying it where the transport allows.
    fn write_chunk(&mut self, chunk: Bytes) -> BoxFuture<'_, Result<(), Error>>;
    /// Write several chunks in order (one call, where the transport can take them at once).
    fn write_chunks<'a>(&'a mut self, chunks: &'a mut [Bytes]) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            for chunk in chunks.iter_mut() {
                self.write_chunk(std::mem::take(chunk)).await?;
            }
            Ok(())
        })
    }
    /// Set the send priority: a higher value is sent first (quinn's and the W3C `sendOrder`
    /// convention). Transports with fewer levels map it down, keeping the order of the common
    /// cases (see the transport's notes).
    fn set_priority(&mut self, priority: i32);
    /// Finish the stream (FIN) after what was written.
    fn finish(&mut self);
    /// Reset the stream with an application code, discarding what was not sent.
    fn reset(&mut self, code: u32);
    /// Resolves when the peer has everything written (after [`SendStream::finish`]), stopped
    /// the stream, or the connection is gone.
    fn stopped(&mut self) -> BoxFuture<'_, ()>;
}

/// The receiving half of a stream.
pub trait RecvStream: Send + 'static {
    /// Up to `max` bytes, in order; `None` at the end of the stream.
    fn read_chunk(&mut self, max: usize) -> BoxFuture<'_, Result<Option<Bytes>, Error>>;
    /// Ask the peer to stop sending (STOP_SENDING) with an application code.
    fn stop(&mut self, code: u32);
}

/// A shared handle to a connection of any transport.
#[derive(Clone)]
pub struct Session(Arc<dyn Connection>);

impl Session {
    /// Wrap a connection.
    pub fn new<T: Connection>(connection: T) -> Self {
        Self(Arc::new(connection))
    }

    /// The connection, as the concrete type it was made from (e.g. `web_transport_quinn::Session`).
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref()
    }
}

impl<T: Connection> From<T> for Session {
    fn from(connection: T) -> Self {
        Self::new(connection)
    }
}

impl std::ops::Deref for Session {
    type Target = dyn Connection;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("kind", &self.kind())
            .field("protocol", &self.protocol())
            .finish()
    }
}
