//! Two connected in-memory [`Connection`]s, for tests: no sockets, no TLS, no clocks of their
//! own, so session tests run deterministically under tokio's paused time.
//!
//! What it models: reliable ordered streams opened by either side, FIN, RESET_STREAM,
//! STOP_SENDING, connection close with a code, and per-stream flow control (a writer waits
//! while [`STREAM_WINDOW`] bytes are unread). What it leaves out: priorities (every stream is
//! delivered as soon as it is written, so there is no congestion to order), stream-count
//! limits, loss and delay.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use crate::{BiStream, BoxFuture, Connection, Error, Kind, RecvStream, SendStream, Stats};

/// Unread bytes a stream holds before its writer waits.
pub const STREAM_WINDOW: usize = 1 << 20;

/// Make two connected ends; `protocol` is what both report as negotiated (e.g.
/// `Some("moq-lite-06")`; `None` makes moq-lite use its compat SETUP exchange).
pub fn pair(protocol: Option<&str>) -> (MemoryConnection, MemoryConnection) {
    let closed = Arc::new(watch::channel(None).0);
    let (a_uni_tx, a_uni_rx) = mpsc::unbounded_channel();
    let (a_bi_tx, a_bi_rx) = mpsc::unbounded_channel();
    let (b_uni_tx, b_uni_rx) = mpsc::unbounded_channel();
    let (b_bi_tx, b_bi_rx) = mpsc::unbounded_channel();
    let bytes_ab = Arc::new(AtomicU64::new(0));
    let bytes_ba = Arc::new(AtomicU64::new(0));
    let a = MemoryConnection {
        protocol: protocol.map(str::to_string),
        closed: closed.clone(),
        peer_uni: b_uni_tx,
        peer_bi: b_bi_tx,
        uni: tokio::sync::Mutex::new(a_uni_rx),
        bi: tokio::sync::Mutex::new(a_bi_rx),
        sent: bytes_ab.clone(),
        received: bytes_ba.clone(),
    };
    let b = MemoryConnection {
        protocol: protocol.map(str::to_string),
        closed,
        peer_uni: a_uni_tx,
        peer_bi: a_bi_tx,
        uni: tokio::sync::Mutex::new(b_uni_rx),
        bi: tokio::sync::Mutex::new(b_bi_rx),
        sent: bytes_ba,
        received: bytes_ab,
    };
    (a, b)
}

type Closed = Arc<watch::Sender<Option<Error>>>;
type BiPair = (MemorySend, MemoryRecv);

/// One end of a [`pair`].
pub struct MemoryConnection {
    protocol: Option<String>,
    closed: Closed,
    peer_uni: mpsc::UnboundedSender<MemoryRecv>,
    peer_bi: mpsc::UnboundedSender<BiPair>,
    uni: tokio::sync::Mutex<mpsc::UnboundedReceiver<MemoryRecv>>,
    bi: tokio::sync::Mutex<mpsc::UnboundedReceiver<BiPair>>,
    sent: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
}

impl MemoryConnection {
    fn check(&self) -> Result<(), Error> {
        match &*self.closed.borrow() {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    /// A stream from us to the peer: our writing half, its reading half.
    fn stream(&self, counter: Arc<AtomicU64>) -> (MemorySend, MemoryRecv) {
        let pipe = Arc::new(Pipe {
            state: Mutex::new(PipeState::default()),
            changed: watch::channel(()).0,
            closed: self.closed.clone(),
        });
        (
            MemorySend {
                pipe: pipe.clone(),
                done: false,
                counter,
            },
            MemoryRecv { pipe, done: false },
        )
    }

    /// Wait for a stream from `queue`, or the connection's end.
    async fn accept<T>(
        &self,
        queue: &tokio::sync::Mutex<mpsc::UnboundedReceiver<T>>,
    ) -> Result<T, Error> {
        let mut closed = self.closed.subscribe();
        let mut queue = queue.lock().await;
        tokio::select! {
            biased;
            item = queue.recv() => item.ok_or_else(|| Error::Other("peer gone".into())),
            err = closed.wait_for(Option::is_some) => Err(match err {
                Ok(err) => err.clone().unwrap_or_else(|| Error::Other("closed".into())),
                Err(_) => Error::Other("closed".into()),
            }),
        }
    }
}

impl Connection for MemoryConnection {
    fn open_uni(&self) -> BoxFuture<'_, Result<Box<dyn SendStream>, Error>> {
        Box::pin(async move {
            self.check()?;
            let (send, recv) = self.stream(self.sent.clone());
            self.peer_uni
                .send(recv)
                .map_err(|_| Error::Other("peer gone".into()))?;
            Ok(Box::new(send) as Box<dyn SendStream>)
        })
    }

    fn open_bi(&self) -> BoxFuture<'_, Result<BiStream, Error>> {
        Box::pin(async move {
            self.check()?;
            let (send, peer_recv) = self.stream(self.sent.clone());
            // The peer's bytes sent are our bytes received.
            let (peer_send, recv) = self.stream(self.received.clone());
            self.peer_bi
                .send((peer_send, peer_recv))
                .map_err(|_| Error::Other("peer gone".into()))?;
            Ok((
                Box::new(send) as Box<dyn SendStream>,
                Box::new(recv) as Box<dyn RecvStream>,
            ))
        })
    }

    fn accept_uni(&self) -> BoxFuture<'_, Result<Box<dyn RecvStream>, Error>> {
        Box::pin(async move {
            let recv = self.accept(&self.uni).await?;
            Ok(Box::new(recv) as Box<dyn RecvStream>)
        })
    }

    fn accept_bi(&self) -> BoxFuture<'_, Result<BiStream, Error>> {
        Box::pin(async move {
            let (send, recv) = self.accept(&self.bi).await?;
            Ok((
                Box::new(send) as Box<dyn SendStream>,
                Box::new(recv) as Box<dyn RecvStream>,
            ))
        })
    }

    fn close(&self, code: u32, reason: &[u8]) {
        let err = Error::Closed {
            code,
            reason: String::from_utf8_lossy(reason).into_owned(),
        };
        self.closed.send_if_modified(|closed| {
            if closed.is_some() {
                return false;
            }
            *closed = Some(err);
            true
        });
    }

    fn closed(&self) -> BoxFuture<'_, Error> {
        Box::pin(async move {
            let mut closed = self.closed.subscribe();
            let err = match closed.wait_for(Option::is_some).await {
                Ok(err) => err.clone(),
                Err(_) => None,
            };
            err.unwrap_or_else(|| Error::Other("closed".into()))
        })
    }

    fn protocol(&self) -> Option<String> {
        self.protocol.clone()
    }

    fn kind(&self) -> Kind {
        Kind::Memory
    }

    fn stats(&self) -> Stats {
        Stats {
            bytes_sent: self.sent.load(Ordering::Relaxed),
            bytes_received: self.received.load(Ordering::Relaxed),
            ..Stats::default()
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Drop for MemoryConnection {
    fn drop(&mut self) {
        self.close(0, b"connection dropped");
    }
}

#[derive(Default)]
struct PipeState {
    chunks: VecDeque<Bytes>,
    buffered: usize,
    fin: bool,
    /// RESET_STREAM from the writer.
    reset: Option<u32>,
    /// STOP_SENDING from the reader.
    stopped: Option<u32>,
}

/// One direction of one stream.
struct Pipe {
    state: Mutex<PipeState>,
    /// Bumped on every change of `state`.
    changed: watch::Sender<()>,
    closed: Closed,
}

impl Pipe {
    fn lock(&self) -> std::sync::MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut PipeState)) {
        f(&mut self.lock());
        self.changed.send_replace(());
    }

    /// Wait until `ready` returns something, re-checking after every change of the pipe; fails
    /// once the connection is closed.
    async fn wait<T>(
        &self,
        mut ready: impl FnMut(&mut PipeState) -> Option<T>,
    ) -> Result<T, Error> {
        let mut changed = self.changed.subscribe();
        let mut closed = self.closed.subscribe();
        loop {
            changed.borrow_and_update();
            if let Some(value) = ready(&mut self.lock()) {
                return Ok(value);
            }
            if let Some(err) = &*closed.borrow_and_update() {
                return Err(err.clone());
            }
            tokio::select! {
                _ = changed.changed() => {}
                _ = closed.changed() => {}
            }
        }
    }
}

/// The writing half of an in-memory stream. Dropped unfinished, it finishes (as quinn does).
pub struct MemorySend {
    pipe: Arc<Pipe>,
    done: bool,
    counter: Arc<AtomicU64>,
}

impl MemorySend {
    async fn write(&mut self, chunk: Bytes) -> Result<(), Error> {
        if chunk.is_empty() {
            return Ok(());
        }
        let len = chunk.len();
        let mut chunk = Some(chunk);
        self.pipe
            .wait(|state| {
                if let Some(code) = state.stopped {
                    return Some(Err(Error::Stream(code)));
                }
                if state.fin || state.reset.is_some() {
                    return Some(Err(Error::Other("stream already finished".into())));
                }
                if state.buffered >= STREAM_WINDOW {
                    return None;
                }
                state.buffered += len;
                state.chunks.extend(chunk.take());
                Some(Ok(()))
            })
            .await??;
        self.counter.fetch_add(len as u64, Ordering::Relaxed);
        self.pipe.changed.send_replace(());
        Ok(())
    }
}

impl SendStream for MemorySend {
    fn write_all<'a>(&'a mut self, buf: &'a [u8]) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.write(Bytes::copy_from_slice(buf)))
    }

    fn write_chunk(&mut self, chunk: Bytes) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(self.write(chunk))
    }

    fn set_priority(&mut self, _priority: i32) {}

    fn finish(&mut self) {
        self.done = true;
        self.pipe.update(|state| state.fin = true);
    }

    fn reset(&mut self, code: u32) {
        self.done = true;
        self.pipe.update(|state| {
            if state.reset.is_none() && !(state.fin && state.chunks.is_empty()) {
                state.reset = Some(code);
                state.chunks.clear();
                state.buffered = 0;
            }
        });
    }

    fn stopped(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self
                .pipe
                .wait(|state| {
                    let acked = state.fin && state.chunks.is_empty();
                    (acked || state.stopped.is_some() || state.reset.is_some()).then_some(())
                })
                .await;
        })
    }
}

impl Drop for MemorySend {
    fn drop(&mut self) {
        if !self.done {
            self.pipe.update(|state| state.fin = true);
        }
    }
}

/// The reading half of an in-memory stream. Dropped before its end, it stops the writer (code 0).
pub struct MemoryRecv {
    pipe: Arc<Pipe>,
    done: bool,
}

impl RecvStream for MemoryRecv {
    fn read_chunk(&mut self, max: usize) -> BoxFuture<'_, Result<Option<Bytes>, Error>> {
        Box::pin(async move {
            let max = max.max(1);
            let read = self
                .pipe
                .wait(|state| {
                    if let Some(code) = state.reset {
                        return Some(Err(Error::Stream(code)));
                    }
                    if let Some(chunk) = state.chunks.front_mut() {
                        let chunk = match chunk.len() > max {
                            true => chunk.split_to(max),
                            false => state.chunks.pop_front().unwrap_or_default(),
                        };
                        state.buffered -= chunk.len();
                        return Some(Ok(Some(chunk)));
                    }
                    state.fin.then_some(Ok(None))
                })
                .await??;
            match &read {
                // Room in the window: wake a waiting writer.
                Some(_) => self.pipe.changed.send_replace(()),
                None => self.done = true,
            }
            Ok(read)
        })
    }

    fn stop(&mut self, code: u32) {
        self.done = true;
        self.pipe.update(|state| {
            if state.stopped.is_none() {
                state.stopped = Some(code);
                state.chunks.clear();
                state.buffered = 0;
            }
        });
    }
}

impl Drop for MemoryRecv {
    fn drop(&mut self) {
        if !self.done {
            self.stop(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bytes_fin_reset_and_close_reach_the_peer() {
        let (a, b) = pair(Some("test"));
        let mut send = a.open_uni().await.unwrap();
        send.write_all(b"hello").await.unwrap();
        send.finish();
        let mut recv = b.accept_uni().await.unwrap();
        assert_eq!(recv.read_chunk(3).await.unwrap().unwrap(), &b"hel"[..]);
        assert_eq!(recv.read_chunk(100).await.unwrap().unwrap(), &b"lo"[..]);
        assert_eq!(recv.read_chunk(100).await.unwrap(), None);
        send.stopped().await;

        let (mut send, _recv) = b.open_bi().await.unwrap();
        let (_send, mut recv) = a.accept_bi().await.unwrap();
        send.write_all(b"x").await.unwrap();
        send.reset(7);
        assert_eq!(recv.read_chunk(10).await, Err(Error::Stream(7)));

        let (mut send, _) = a.open_bi().await.unwrap();
        let (_, mut recv) = b.accept_bi().await.unwrap();
        recv.stop(9);
        assert_eq!(send.write_all(b"y").await, Err(Error::Stream(9)));

        // a wrote "hello" (the "y" was refused), b wrote "x".
        assert_eq!((a.stats().bytes_sent, a.stats().bytes_received), (5, 1));
        assert_eq!(b.stats().bytes_received, 5);
        a.close(42, b"bye");
        let expect = Error::Closed {
            code: 42,
            reason: "bye".into(),
        };
        assert_eq!(b.closed().await, expect);
        assert_eq!(b.accept_uni().await.err(), Some(expect));
    }

    #[tokio::test(start_paused = true)]
    async fn a_writer_waits_for_the_reader_past_the_window() {
        let (a, b) = pair(None);
        let mut send = a.open_uni().await.unwrap();
        send.write_chunk(Bytes::from(vec![0; STREAM_WINDOW]))
            .await
            .unwrap();
        let mut blocked = send.write_all(b"more");
        assert!(futures_poll_once(&mut blocked).await.is_none());
        let mut recv = b.accept_uni().await.unwrap();
        recv.read_chunk(STREAM_WINDOW).await.unwrap();
        blocked.await.unwrap();
    }

    /// Poll a future once; `Some` if it finished.
    async fn futures_poll_once<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut *f).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
