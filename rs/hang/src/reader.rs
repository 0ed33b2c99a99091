//! The latency-target reader shared by [`crate::TrackConsumer`] (legacy container frames) and the
//! CMAF export reader (`moof`+`mdat` fragments): both read a track's groups in order and skip to a
//! newer group's keyframe when they fall `latency` (media time) behind. Only how a frame's media
//! time and result are obtained differs; that is the [`FrameDecoder`].

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use moq_lite::GroupConsumer;

use crate::Error;

/// How a [`SkippingReader`] turns a frame's payload into its media time and its result.
pub(crate) trait FrameDecoder {
    /// What the reader returns for each frame.
    type Output;

    /// Split `payload` into its media time (µs; `None` if it carries none, so it neither moves the
    /// reader's position nor can be skipped to) and the frame's result.
    fn decode(&self, payload: Bytes) -> Result<(Option<u64>, Self::Output), Error>;
}

/// A frame read by a [`SkippingReader`].
pub(crate) struct ReadFrame<T> {
    /// The first frame of its group (a keyframe).
    pub keyframe: bool,
    /// The decoder's result.
    pub output: T,
}

/// Reads a track in order, skipping to a newer group when it falls more than its latency target
/// behind.
///
/// A group is skipped when a newer group's keyframe is at least `latency` (media time) past the
/// last frame returned; the reader then continues from that keyframe, so a decoder never sees a
/// broken GoP.
#[derive(Debug)]
pub(crate) struct SkippingReader<D> {
    track: moq_lite::TrackConsumer,
    decoder: D,
    current: Option<GroupConsumer>,
    /// Frames already taken from `current`.
    index: usize,
    /// Newer groups that arrived while `current` was being read.
    pending: VecDeque<GroupConsumer>,
    ended: bool,
    latency: Duration,
    /// Media time of the last frame returned.
    last: Option<u64>,
    skipped: u64,
}

impl<D: FrameDecoder> SkippingReader<D> {
    /// Read `track` (its own max latency is lifted: this reader decides what to skip).
    pub fn new(mut track: moq_lite::TrackConsumer, decoder: D, latency: Duration) -> Self {
        // Hand every group over; this reader decides what to skip by media time.
        track.set_max_latency(Duration::MAX);
        Self {
            track,
            decoder,
            current: None,
            index: 0,
            pending: VecDeque::new(),
            ended: false,
            latency,
            last: None,
            skipped: 0,
        }
    }

    /// The track being read.
    pub fn track(&self) -> &moq_lite::TrackConsumer {
        &self.track
    }

    /// Start from the oldest group the track still holds instead of the latest (call before reading).
    pub fn start_at_oldest(&mut self) {
        self.track.start_at(0);
    }

    /// The frame decoder.
    pub fn decoder(&self) -> &D {
        &self.decoder
    }

    /// Change the latency target.
    pub fn set_latency(&mut self, latency: Duration) {
        self.latency = latency;
    }

    /// Groups skipped because this reader fell behind.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The next frame, or `None` once the track has ended. Cancel-safe between frames.
    pub async fn read(&mut self) -> Result<Option<ReadFrame<D::Output>>, Error> {
        loop {
            self.poll_groups()?;
            self.skip_if_behind();
            let Some(current) = self.current.as_mut() else {
                if let Some(group) = self.pending.pop_front() {
                    self.start(group);
                    continue;
                }
                match self.track.next_group().await? {
                    Some(group) => self.start(group),
                    None => return Ok(None),
                }
                continue;
            };

            // The newest pending group's first frame: once it lands, re-check whether to skip.
            let newest = self.pending.back().cloned();
            let ended = self.ended;
            let track = &mut self.track;
            tokio::select! {
                biased;
                frame = current.next_frame() => {
                    let Some(mut frame) = frame? else {
                        self.current = None;
                        continue;
                    };
                    let payload = frame.read_all().await?;
                    let (timestamp, output) = self.decoder.decode(payload)?;
                    let keyframe = self.index == 0;
                    self.index += 1;
                    if let Some(timestamp) = timestamp {
                        self.last = Some(timestamp);
                    }
                    return Ok(Some(ReadFrame { keyframe, output }));
                }
                group = track.next_group(), if !ended => match group? {
                    Some(group) => self.pending.push_back(group),
                    None => self.ended = true,
                },
                _ = first_frame(newest), if self.latency != Duration::MAX => {}
            }
        }
    }

    /// Queue the groups that have already arrived, without waiting.
    fn poll_groups(&mut self) -> Result<(), Error> {
        while !self.ended && self.current.is_some() {
            let Some(group) = self.track.next_group().now_or_never() else {
                break;
            };
            match group? {
                Some(group) => self.pending.push_back(group),
                None => self.ended = true,
            }
        }
        Ok(())
    }

    fn start(&mut self, group: GroupConsumer) {
        self.current = Some(group);
        self.index = 0;
    }

    /// Jump to the newest pending group whose keyframe is `latency` past the last frame returned.
    fn skip_if_behind(&mut self) {
        let Some(last) = self.last else { return };
        let latency = u64::try_from(self.latency.as_micros()).unwrap_or(u64::MAX);
        let threshold = last.saturating_add(latency);
        let decoder = &self.decoder;
        let Some(position) = self.pending.iter().rposition(|group| {
            peek_timestamp(decoder, group).is_some_and(|timestamp| timestamp >= threshold)
        }) else {
            return;
        };
        tracing::debug!(
            track = %self.track.track().name,
            groups = position + 1,
            "behind the latency target: skipping ahead"
        );
        let skipped = self.pending.drain(..=position).collect::<Vec<_>>();
        self.skipped += skipped.len() as u64 - 1 + u64::from(self.current.is_some());
        if let Some(group) = skipped.into_iter().last() {
            self.start(group);
        }
    }
}

/// The first frame's media time if it has fully arrived, without waiting.
fn peek_timestamp<D: FrameDecoder>(decoder: &D, group: &GroupConsumer) -> Option<u64> {
    let mut group = group.clone();
    let mut frame = group.next_frame().now_or_never()?.ok()??;
    let payload = frame.read_all().now_or_never()?.ok()?;
    decoder.decode(payload).ok()?.0
}

/// Resolves when the group's first frame has fully arrived (never, without a group).
async fn first_frame(group: Option<GroupConsumer>) {
    let Some(mut group) = group else {
        return std::future::pending().await;
    };
    if let Ok(Some(mut frame)) = group.next_frame().await {
        let _ = frame.read_all().await;
        return;
    }
    // An empty or failed group never offers a keyframe to skip to.
    std::future::pending().await
}
