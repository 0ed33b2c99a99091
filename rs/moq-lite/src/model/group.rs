//! A group: an ordered run of frames delivered on one stream; the unit that can be skipped.

use bytes::Bytes;
use tokio::sync::watch;

use super::{Frame, FrameConsumer, FrameProducer};
use crate::Error;

/// A group's fixed properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Group {
    /// Sequence number within the track (newer groups have larger numbers).
    pub sequence: u64,
}

/// Most payload bytes one group may hold; a frame that would pass it is refused with
/// [`Error::FrameTooLarge`], so a peer cannot grow a single group without bound.
pub const MAX_GROUP_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, Default)]
struct State {
    frames: Vec<FrameConsumer>,
    bytes: u64,
    closed: Option<Result<(), Error>>,
}

/// Writes a group's frames. Dropping it unfinished aborts the group with [`Error::Dropped`].
#[derive(Debug)]
pub struct GroupProducer {
    info: Group,
    state: watch::Sender<State>,
}

impl GroupProducer {
    /// A new, empty group.
    pub fn new(info: Group) -> Self {
        Self {
            info,
            state: watch::channel(State::default()).0,
        }
    }

    /// The group's properties.
    pub fn info(&self) -> &Group {
        &self.info
    }

    /// Start a frame whose payload will be written in chunks (cut-through).
    pub fn create_frame(&mut self, frame: Frame) -> Result<FrameProducer, Error> {
        let (producer, consumer) = FrameProducer::new(frame);
        let mut result = Ok(());
        self.state.send_if_modified(|state| {
            if state.closed.is_some() {
                result = Err(Error::Closed);
                return false;
            }
            if state.bytes.saturating_add(frame.size) > MAX_GROUP_BYTES {
                result = Err(Error::FrameTooLarge);
                return false;
            }
            state.bytes += frame.size;
            state.frames.push(consumer);
            true
        });
        result.map(|_| producer)
    }

    /// Append a whole frame.
    pub fn write_frame(&mut self, timestamp: u64, payload: Bytes) -> Result<(), Error> {
        let mut frame = self.create_frame(Frame {
            timestamp,
            size: payload.len() as u64,
        })?;
        frame.write_chunk(payload)?;
        frame.finish()
    }

    /// Mark the group complete (no more frames).
    pub fn finish(&mut self) {
        self.close(Ok(()));
    }

    /// Abort the group; consumers see `err` after the frames already written.
    pub fn abort(&mut self, err: Error) {
        self.close(Err(err));
    }

    fn close(&mut self, result: Result<(), Error>) {
        self.state.send_if_modified(|state| {
            if state.closed.is_some() {
                return false;
            }
            state.closed = Some(result);
            true
        });
    }

    /// A consumer reading from the first frame.
    pub fn consume(&self) -> GroupConsumer {
        GroupConsumer {
            info: self.info,
            state: self.state.subscribe(),
            index: 0,
        }
    }

    /// Resolves once every consumer has been dropped.
    pub async fn unused(&self) {
        self.state.closed().await
    }
}

impl Drop for GroupProducer {
    fn drop(&mut self) {
        self.close(Err(Error::Dropped));
    }
}

/// Reads a group's frames in order. Each consumer (and each clone) keeps its own position, so a late
/// consumer replays the group from its first frame.
#[derive(Debug, Clone)]
pub struct GroupConsumer {
    info: Group,
    state: watch::Receiver<State>,
    index: usize,
}

impl GroupConsumer {
    /// The group's properties.
    pub fn info(&self) -> &Group {
        &self.info
    }

    /// The next frame, or `None` once the group is finished. Cancel-safe.
    pub async fn next_frame(&mut self) -> Result<Option<FrameConsumer>, Error> {
        let index = self.index;
        let state = self
            .state
            .wait_for(|s| s.frames.len() > index || s.closed.is_some())
            .await
            .map_err(|_| Error::Dropped)?;
        if let Some(frame) = state.frames.get(index) {
            let frame = frame.clone();
            drop(state);
            self.index += 1;
            return Ok(Some(frame));
        }
        match state.closed.clone() {
            Some(Err(err)) => Err(err),
            _ => Ok(None),
        }
    }

    /// The next whole frame and its payload.
    pub async fn read_frame(&mut self) -> Result<Option<(Frame, Bytes)>, Error> {
        let Some(mut frame) = self.next_frame().await? else {
            return Ok(None);
        };
        let payload = frame.read_all().await?;
        Ok(Some((*frame.info(), payload)))
    }

    /// Payload bytes declared by the frames written so far.
    pub fn bytes(&self) -> u64 {
        self.state.borrow().bytes
    }

    /// Number of frames written so far.
    pub fn frame_count(&self) -> usize {
        self.state.borrow().frames.len()
    }

    /// Whether [`Self::next_frame`] would return at once (a frame not taken yet, or the end).
    /// Synchronous: unlike polling it once, not subject to tokio's task budget.
    pub fn is_ready(&self) -> bool {
        let state = self.state.borrow();
        state.frames.len() > self.index || state.closed.is_some()
    }

    /// Frame `index` (0 = first) if it has been written, without waiting or moving this
    /// consumer's position.
    pub fn frame_at(&self, index: usize) -> Option<FrameConsumer> {
        self.state.borrow().frames.get(index).cloned()
    }

    /// Resolves once more than `count` frames have been written or the group is closed, without
    /// moving this consumer's position. Cancel-safe.
    pub async fn frames_past(&self, count: usize) {
        let mut state = self.state.clone();
        let _ = state
            .wait_for(|s| s.frames.len() > count || s.closed.is_some())
            .await;
    }

    /// Timestamp of the first frame, if any has been written.
    pub fn first_timestamp(&self) -> Option<u64> {
        self.state
            .borrow()
            .frames
            .first()
            .map(|f| f.info().timestamp)
    }

    /// `Some` once the group is closed: `Ok` when finished, the error when aborted.
    pub fn closed(&self) -> Option<Result<(), Error>> {
        self.state.borrow().closed.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn late_consumer_replays_from_first_frame() {
        let mut group = GroupProducer::new(Group { sequence: 3 });
        group.write_frame(1, Bytes::from_static(b"a")).unwrap();
        group.write_frame(2, Bytes::from_static(b"b")).unwrap();
        group.finish();
        let mut consumer = group.consume();
        let (frame, payload) = consumer.read_frame().await.unwrap().unwrap();
        assert_eq!((frame.timestamp, &payload[..]), (1, &b"a"[..]));
        let (frame, payload) = consumer.read_frame().await.unwrap().unwrap();
        assert_eq!((frame.timestamp, &payload[..]), (2, &b"b"[..]));
        assert_eq!(consumer.read_frame().await.unwrap(), None);
        assert_eq!(consumer.bytes(), 2);
    }

    #[test]
    fn group_size_is_capped() {
        let mut group = GroupProducer::new(Group { sequence: 0 });
        let first = group
            .create_frame(Frame {
                timestamp: 0,
                size: MAX_GROUP_BYTES,
            })
            .map(|_| ());
        assert_eq!(first, Ok(()));
        let err = group
            .create_frame(Frame {
                timestamp: 0,
                size: 1,
            })
            .err();
        assert_eq!(err, Some(Error::FrameTooLarge));
    }

    #[tokio::test]
    async fn abort_reaches_consumers_after_written_frames() {
        let mut group = GroupProducer::new(Group { sequence: 0 });
        let mut consumer = group.consume();
        group.write_frame(0, Bytes::from_static(b"x")).unwrap();
        group.abort(Error::Old);
        assert!(consumer.read_frame().await.unwrap().is_some());
        assert_eq!(consumer.read_frame().await, Err(Error::Old));
    }
}
