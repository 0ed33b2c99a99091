//! A frame: one timestamped payload, streamed in chunks so relays can forward it before it is whole.

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::Error;

/// A frame's fixed properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Presentation timestamp in the track's timescale.
    pub timestamp: u64,
    /// Payload size in bytes, declared up front.
    pub size: u64,
}

/// When a frame's chunks were written: what a reader needs to tell how fast the frame came in
/// over the network (the session writes chunks as they arrive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// When the first chunk was written.
    pub first: Instant,
    /// When the last chunk so far was written.
    pub last: Instant,
    /// Bytes of the first chunk; the rest, `written - first_len`, came between `first` and `last`.
    pub first_len: u64,
    /// Bytes written so far.
    pub written: u64,
}

#[derive(Debug, Default)]
struct State {
    chunks: Vec<Bytes>,
    written: u64,
    closed: Option<Result<(), Error>>,
    arrival: Option<Arrival>,
}

/// Writes one frame's payload in chunks. Dropping it unfinished aborts the frame with [`Error::Dropped`].
#[derive(Debug)]
pub struct FrameProducer {
    info: Frame,
    state: watch::Sender<State>,
}

impl FrameProducer {
    /// A frame of `info.size` bytes, and the first consumer of it.
    pub fn new(info: Frame) -> (Self, FrameConsumer) {
        let (state, rx) = watch::channel(State::default());
        let consumer = FrameConsumer {
            info,
            state: rx,
            index: 0,
        };
        (Self { info, state }, consumer)
    }

    /// The frame's properties.
    pub fn info(&self) -> &Frame {
        &self.info
    }

    /// Append a chunk. Fails with [`Error::WrongSize`] if it would exceed the declared size.
    pub fn write_chunk(&mut self, chunk: Bytes) -> Result<(), Error> {
        let mut result = Ok(());
        self.state.send_if_modified(|state| {
            if state.closed.is_some() {
                result = Err(Error::Closed);
                return false;
            }
            if state.written + chunk.len() as u64 > self.info.size {
                result = Err(Error::WrongSize);
                return false;
            }
            state.written += chunk.len() as u64;
            let now = Instant::now();
            let arrival = state.arrival.get_or_insert(Arrival {
                first: now,
                last: now,
                first_len: chunk.len() as u64,
                written: 0,
            });
            arrival.last = now;
            arrival.written = state.written;
            state.chunks.push(chunk.clone());
            true
        });
        result
    }

    /// Mark the frame complete. Fails with [`Error::WrongSize`] unless exactly `size` bytes were written.
    pub fn finish(&mut self) -> Result<(), Error> {
        let mut result = Ok(());
        self.state.send_if_modified(|state| {
            if state.closed.is_some() {
                return false;
            }
            if state.written != self.info.size {
                result = Err(Error::WrongSize);
                state.closed = Some(Err(Error::WrongSize));
            } else {
                state.closed = Some(Ok(()));
            }
            true
        });
        result
    }

    /// Abort the frame; consumers see `err`.
    pub fn abort(&mut self, err: Error) {
        self.state.send_if_modified(|state| {
            if state.closed.is_some() {
                return false;
            }
            state.closed = Some(Err(err));
            true
        });
    }

    /// Another consumer, reading from the first chunk.
    pub fn consume(&self) -> FrameConsumer {
        FrameConsumer {
            info: self.info,
            state: self.state.subscribe(),
            index: 0,
        }
    }
}

impl Drop for FrameProducer {
    fn drop(&mut self) {
        self.abort(Error::Dropped);
    }
}

/// Reads one frame's payload as it arrives. Cloning gives an independent reader from the same position.
#[derive(Debug, Clone)]
pub struct FrameConsumer {
    info: Frame,
    state: watch::Receiver<State>,
    index: usize,
}

impl FrameConsumer {
    /// The frame's properties.
    pub fn info(&self) -> &Frame {
        &self.info
    }

    /// The next chunk, `None` once the whole frame has been read. Cancel-safe.
    pub async fn read_chunk(&mut self) -> Result<Option<Bytes>, Error> {
        self.take_new(|new| (1, new[0].clone())).await
    }

    /// Wait for at least one new chunk, then append every chunk that has arrived to `out`, so a
    /// relay forwards them in one write. `Ok(false)` once the whole frame has been read. Cancel-safe.
    pub async fn read_chunks(&mut self, out: &mut Vec<Bytes>) -> Result<bool, Error> {
        let taken = self
            .take_new(|new| {
                out.extend(new.iter().cloned());
                (new.len(), ())
            })
            .await?;
        Ok(taken.is_some())
    }

    /// Wait until there is a chunk not read yet or the frame ended; `take` gets the unread chunks
    /// (never empty) and says how many it consumed. `None` at the end; the frame's error if aborted.
    async fn take_new<R>(
        &mut self,
        take: impl FnOnce(&[Bytes]) -> (usize, R),
    ) -> Result<Option<R>, Error> {
        let index = self.index;
        let state = self
            .state
            .wait_for(|s| s.chunks.len() > index || s.closed.is_some())
            .await
            .map_err(|_| Error::Dropped)?;
        if let Some(new) = state.chunks.get(index..).filter(|new| !new.is_empty()) {
            let (used, out) = take(new);
            drop(state);
            self.index += used;
            return Ok(Some(out));
        }
        match state.closed.clone() {
            Some(Err(err)) => Err(err),
            Some(Ok(())) | None => Ok(None),
        }
    }

    /// When the chunks written so far arrived; `None` before the first.
    pub fn arrival(&self) -> Option<Arrival> {
        self.state.borrow().arrival
    }

    /// Whether a read would return at once: a chunk not read yet has arrived, or the frame ended.
    /// (Synchronous: unlike polling a read once, it is not subject to tokio's task budget.)
    pub fn is_ready(&self) -> bool {
        let state = self.state.borrow();
        state.chunks.len() > self.index || state.closed.is_some()
    }

    /// The whole payload if the frame is complete, from its first chunk whatever this consumer
    /// read; `None` while it is still arriving, the error if it was aborted. Synchronous.
    pub fn payload_if_complete(&self) -> Option<Result<Bytes, Error>> {
        let state = self.state.borrow();
        match state.closed.clone()? {
            Err(err) => Some(Err(err)),
            Ok(()) => Some(Ok(match state.chunks.len() {
                0 => Bytes::new(),
                1 => state.chunks[0].clone(),
                _ => {
                    let mut buf = BytesMut::with_capacity(self.info.size as usize);
                    for chunk in &state.chunks {
                        buf.extend_from_slice(chunk);
                    }
                    buf.freeze()
                }
            })),
        }
    }

    /// The whole payload, once it has all arrived (one copy only if it came in several chunks).
    pub async fn read_all(&mut self) -> Result<Bytes, Error> {
        let first = match self.read_chunk().await? {
            Some(chunk) => chunk,
            None => return Ok(Bytes::new()),
        };
        let Some(second) = self.read_chunk().await? else {
            return Ok(first);
        };
        let mut buf = BytesMut::with_capacity(self.info.size as usize);
        buf.extend_from_slice(&first);
        buf.extend_from_slice(&second);
        while let Some(chunk) = self.read_chunk().await? {
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn read_chunks_takes_everything_that_has_arrived() {
        let (mut producer, mut consumer) = FrameProducer::new(Frame {
            timestamp: 0,
            size: 6,
        });
        let mut late = producer.consume();
        producer.write_chunk(Bytes::from_static(b"ab")).unwrap();
        producer.write_chunk(Bytes::from_static(b"cd")).unwrap();
        let mut out = Vec::new();
        assert!(consumer.read_chunks(&mut out).await.unwrap());
        assert_eq!(out, [&b"ab"[..], &b"cd"[..]]);
        // Nothing new yet: it waits, then takes the next chunk alone.
        let pending = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            consumer.read_chunks(&mut out),
        )
        .await;
        assert!(pending.is_err(), "returned without a new chunk");
        producer.write_chunk(Bytes::from_static(b"ef")).unwrap();
        out.clear();
        assert!(consumer.read_chunks(&mut out).await.unwrap());
        assert_eq!(out, [&b"ef"[..]]);
        producer.finish().unwrap();
        assert!(!consumer.read_chunks(&mut out).await.unwrap());
        // A consumer that read nothing yet gets all three at once, then the end.
        out.clear();
        assert!(late.read_chunks(&mut out).await.unwrap());
        assert_eq!(out.len(), 3);
        assert!(!late.read_chunks(&mut out).await.unwrap());
    }

    #[tokio::test]
    async fn read_chunks_reports_an_abort() {
        let (mut producer, mut consumer) = FrameProducer::new(Frame {
            timestamp: 0,
            size: 6,
        });
        producer.write_chunk(Bytes::from_static(b"ab")).unwrap();
        producer.abort(Error::Cancel);
        let mut out = Vec::new();
        assert!(consumer.read_chunks(&mut out).await.unwrap());
        assert_eq!(consumer.read_chunks(&mut out).await, Err(Error::Cancel));
    }

    #[tokio::test]
    async fn chunks_stream_before_the_frame_is_complete() {
        let (mut producer, mut consumer) = FrameProducer::new(Frame {
            timestamp: 0,
            size: 6,
        });
        producer.write_chunk(Bytes::from_static(b"abc")).unwrap();
        assert_eq!(consumer.read_chunk().await.unwrap().unwrap(), "abc");
        producer.write_chunk(Bytes::from_static(b"def")).unwrap();
        producer.finish().unwrap();
        assert_eq!(consumer.read_chunk().await.unwrap().unwrap(), "def");
        assert_eq!(consumer.read_chunk().await.unwrap(), None);
        assert_eq!(producer.consume().read_all().await.unwrap(), "abcdef");
    }

    #[tokio::test]
    async fn size_is_enforced() {
        let (mut producer, mut consumer) = FrameProducer::new(Frame {
            timestamp: 0,
            size: 2,
        });
        assert_eq!(
            producer.write_chunk(Bytes::from_static(b"abc")),
            Err(Error::WrongSize)
        );
        producer.write_chunk(Bytes::from_static(b"a")).unwrap();
        assert_eq!(producer.finish(), Err(Error::WrongSize));
        assert_eq!(consumer.read_all().await, Err(Error::WrongSize));
    }

    #[tokio::test]
    async fn dropping_unfinished_aborts() {
        let (producer, mut consumer) = FrameProducer::new(Frame {
            timestamp: 0,
            size: 2,
        });
        drop(producer);
        assert_eq!(consumer.read_all().await, Err(Error::Dropped));
    }

    #[tokio::test(start_paused = true)]
    async fn arrival_records_when_the_chunks_were_written() {
        let (mut producer, consumer) = FrameProducer::new(Frame {
            timestamp: 0,
            size: 6,
        });
        assert_eq!(consumer.arrival(), None);
        let start = Instant::now();
        producer.write_chunk(Bytes::from_static(b"ab")).unwrap();
        tokio::time::advance(std::time::Duration::from_millis(5)).await;
        producer.write_chunk(Bytes::from_static(b"cdef")).unwrap();
        let arrival = consumer.arrival().unwrap();
        assert_eq!(arrival.first, start);
        assert_eq!(
            arrival.last - arrival.first,
            std::time::Duration::from_millis(5)
        );
        assert_eq!((arrival.first_len, arrival.written), (2, 6));
    }
}
