//! [`Connection`] for QMux (`qmux::Session`): moq over WebSocket or TCP.
//!
//! QMux multiplexes QUIC-style streams over one ordered byte stream. The bytes of the streams
//! share one TCP send buffer, so what matters is which stream's data the session writes next:
//! qmux keeps a bounded send queue and always writes the highest-priority stream first.
//! Its priorities are 256 levels (`u8`), ours are quinn's `i32` send orders; see
//! [`band`] for how one maps onto the other.

use std::any::Any;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use web_transport_trait::{Error as _, Session as _, Stats as _};

use crate::{BiStream, BoxFuture, Connection, Error, Kind, RecvStream, SendStream, Stats};

fn error(err: qmux::Error) -> Error {
    if let Some((code, reason)) = err.session_error() {
        return Error::Closed { code, reason };
    }
    if let Some(code) = err.stream_error() {
        return Error::Stream(code);
    }
    Error::Other(err.to_string())
}

/// Bits of a quinn send order that hold a group's position (see moq-lite's `priority` module).
const POSITION_BITS: u32 = 23;
/// Recency slots per priority class.
const SLOTS: i64 = 8;

/// The priority class (0–30) of a subscriber priority: 0–15 each their own class (the media
/// priorities catalogs use are small: audio 2, video 1), 16–255 in steps of 16.
fn class(priority: i64) -> i64 {
    match priority {
        ..=15 => priority,
        _ => 16 + (priority - 16) / 16,
    }
}

/// The qmux band (0–255, higher first) for a quinn send order.
///
/// Control streams (order ≥ 0) get 255, above all data. A group stream's order is
/// `(subscriber priority − 256) · 2^23 + position`; its band is `class · 8 + position mod 8`
/// ([`class`]: 31 classes, each above the one below), so within a class the newer group
/// (higher position) goes first. The recency order wraps every 8 groups: only groups 8 apart
/// in flight together go out oldest first, and the publisher drops video groups that old long
/// before; for one-frame audio groups the inversion is 8 frames wide at most.
pub fn band(order: i32) -> u8 {
    if order >= 0 {
        return u8::MAX;
    }
    let order = i64::from(order);
    let priority = (order >> POSITION_BITS) + 256; // 0..=255
    let position = order & ((1 << POSITION_BITS) - 1);
    let band = class(priority) * SLOTS + position % SLOTS; // 0..=247
    band.clamp(0, 254) as u8
}

/// Bytes through a connection's socket, and whether it has ended, shared between the socket
/// wrapper and the session.
#[derive(Debug, Clone)]
pub struct ByteCounters {
    sent: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
    ended: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for ByteCounters {
    fn default() -> Self {
        Self {
            sent: Arc::default(),
            received: Arc::default(),
            ended: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }
}

impl ByteCounters {
    /// Wrap `io` so its reads and writes are counted here.
    pub fn wrap<T>(&self, io: T) -> CountingIo<T> {
        CountingIo {
            io,
            counters: self.clone(),
        }
    }

    /// Bytes written so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Bytes read so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Record that the socket (or the message stream over it) ended: end of stream or an error.
    /// The session then ends too, whatever state QMux is in.
    pub fn mark_ended(&self) {
        self.ended.send_replace(true);
    }

    /// Resolves once [`ByteCounters::mark_ended`] was called.
    pub async fn ended(&self) {
        let mut ended = self.ended.subscribe();
        let _ = ended.wait_for(|e| *e).await;
    }
}

/// An async socket whose bytes are counted in [`ByteCounters`].
#[derive(Debug)]
pub struct CountingIo<T> {
    io: T,
    counters: ByteCounters,
}

impl<T: AsyncRead + Unpin> AsyncRead for CountingIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.io).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.counters
            .received
            .fetch_add(read as u64, Ordering::Relaxed);
        match &poll {
            // End of stream (with room to read) or a failed socket.
            Poll::Ready(Ok(())) if read == 0 && buf.remaining() > 0 => self.counters.mark_ended(),
            Poll::Ready(Err(_)) => self.counters.mark_ended(),
            _ => {}
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CountingIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll {
            self.counters.sent.fetch_add(*n as u64, Ordering::Relaxed);
        }
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &poll {
            self.counters.sent.fetch_add(*n as u64, Ordering::Relaxed);
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A QMux session as a [`Connection`], with what carries it and its socket's byte counts.
#[derive(Clone)]
pub struct QmuxSession {
    session: qmux::Session,
    kind: Kind,
    counters: ByteCounters,
}

impl QmuxSession {
    /// Wrap `session`, carried by `kind` ([`Kind::WebSocket`] or [`Kind::Tcp`]), whose socket
    /// counts its bytes in `counters` (see [`ByteCounters::wrap`]).
    pub fn new(session: qmux::Session, kind: Kind, counters: ByteCounters) -> Self {
        Self {
            session,
            kind,
            counters,
        }
    }

    /// The QMux session.
    pub fn inner(&self) -> &qmux::Session {
        &self.session
    }

    /// Resolves when the session ends: QMux closed it, or its socket ended. qmux 0.5.3 does not
    /// always notice the second (found by the `qmux_websocket` fuzz target: a peer's WebSocket
    /// closing after some malformed messages left the session open for good), so the socket's
    /// end closes the session here.
    async fn ended(&self) -> Error {
        tokio::select! {
            biased;
            err = self.session.closed() => error(err),
            () = self.counters.ended() => {
                self.session.close(0, "the transport closed");
                Error::Other("the transport closed".into())
            }
        }
    }
}

fn boxed(send: qmux::SendStream, recv: qmux::RecvStream) -> BiStream {
    (Box::new(send), Box::new(recv))
}

impl Connection for QmuxSession {
    fn open_uni(&self) -> BoxFuture<'_, Result<Box<dyn SendStream>, Error>> {
        Box::pin(async move {
            let send = self.session.open_uni().await.map_err(error)?;
            Ok(Box::new(send) as Box<dyn SendStream>)
        })
    }

    fn open_bi(&self) -> BoxFuture<'_, Result<BiStream, Error>> {
        Box::pin(async move {
            let (send, recv) = self.session.open_bi().await.map_err(error)?;
            Ok(boxed(send, recv))
        })
    }

    // The accepts also watch for the session's end: qmux 0.5.3 can leave an accept pending
    // after the session failed (found by the `qmux_websocket` fuzz target), and a session
    // driver waiting on it would never learn the session is gone.
    fn accept_uni(&self) -> BoxFuture<'_, Result<Box<dyn RecvStream>, Error>> {
        Box::pin(async move {
            let recv = tokio::select! {
                biased;
                recv = self.session.accept_uni() => recv.map_err(error)?,
                err = self.ended() => return Err(err),
            };
            Ok(Box::new(recv) as Box<dyn RecvStream>)
        })
    }

    fn accept_bi(&self) -> BoxFuture<'_, Result<BiStream, Error>> {
        Box::pin(async move {
            let (send, recv) = tokio::select! {
                biased;
                bi = self.session.accept_bi() => bi.map_err(error)?,
                err = self.ended() => return Err(err),
            };
            Ok(boxed(send, recv))
        })
    }

    fn close(&self, code: u32, reason: &[u8]) {
        // qmux 0.5.3 does not get this APPLICATION_CLOSE to the peer before the connection
        // ends (bare qmux sessions show it too): the peer sees the end of stream, not the code.
        self.session.close(code, &String::from_utf8_lossy(reason));
    }

    fn closed(&self) -> BoxFuture<'_, Error> {
        Box::pin(self.ended())
    }

    fn protocol(&self) -> Option<String> {
        self.session.protocol().map(str::to_string)
    }

    fn kind(&self) -> Kind {
        self.kind
    }

    fn stats(&self) -> Stats {
        let stats = self.session.stats();
        Stats {
            rtt: stats.rtt(),
            cwnd: None,
            send_rate: stats.estimated_send_rate(),
            bytes_sent: self.counters.sent(),
            bytes_received: self.counters.received(),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl SendStream for qmux::SendStream {
    fn write_all<'a>(&'a mut self, buf: &'a [u8]) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            web_transport_trait::SendStream::write_all(self, buf)
                .await
                .map_err(error)
        })
    }

    fn write_chunk(&mut self, chunk: Bytes) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            web_transport_trait::SendStream::write_chunk(self, chunk)
                .await
                .map_err(error)
        })
    }

    fn set_priority(&mut self, priority: i32) {
        web_transport_trait::SendStream::set_priority(self, band(priority));
    }

    fn finish(&mut self) {
        let _ = web_transport_trait::SendStream::finish(self);
    }

    fn reset(&mut self, code: u32) {
        web_transport_trait::SendStream::reset(self, code);
    }

    fn stopped(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = web_transport_trait::SendStream::closed(self).await;
        })
    }
}

impl RecvStream for qmux::RecvStream {
    fn read_chunk(&mut self, max: usize) -> BoxFuture<'_, Result<Option<Bytes>, Error>> {
        Box::pin(async move {
            web_transport_trait::RecvStream::read_chunk(self, max)
                .await
                .map_err(error)
        })
    }

    fn stop(&mut self, code: u32) {
        web_transport_trait::RecvStream::stop(self, code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// moq-lite's group send order: `(priority − 256) · 2^23 + position`.
    fn order(priority: u8, position: u64) -> i32 {
        ((priority as i32) - 256) * (1 << POSITION_BITS) + (position & ((1 << 23) - 1)) as i32
    }

    #[test]
    fn control_streams_beat_every_group() {
        assert_eq!(band(0), 255);
        assert!(band(order(255, 30)) < 255);
    }

    #[test]
    fn newer_groups_first_within_a_subscription() {
        for position in 0..7 {
            assert!(band(order(128, position + 1)) > band(order(128, position)));
            assert!(band(order(1, position + 1)) > band(order(1, position)));
        }
    }

    #[test]
    fn a_higher_priority_class_beats_any_group_of_a_lower_one() {
        for position in 0..200 {
            // Small priorities are told apart one by one (a catalog's audio 2 over video 1).
            assert!(band(order(2, 0)) > band(order(1, position)));
            assert!(band(order(1, 0)) > band(order(0, position)));
            assert!(band(order(100, 0)) > band(order(2, position)));
            assert!(band(order(200, 0)) > band(order(100, position)));
        }
        assert_eq!(band(order(255, 7)), 30 * 8 + 7);
    }
}
