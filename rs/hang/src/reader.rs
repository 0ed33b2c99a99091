//! The latency-target reader shared by [`crate::TrackConsumer`] (legacy container frames) and the
//! CMAF export reader (`moof`+`mdat` fragments): both read a track's groups in order and skip to a
//! newer group's keyframe when they fall `latency` (media time) behind. Only how a frame's media
//! time and result are obtained differs; that is the [`FrameDecoder`].

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use moq_lite::{FrameConsumer, GroupConsumer};

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

/// Most newer groups a reader takes from the track while it reads an older one; the rest wait
/// in the track (whose cache is bounded), so a reader that stalls holds bounded memory.
pub(crate) const MAX_PENDING_GROUPS: usize = 32;

/// How long (media time of newer groups) the reader waits for a group missing in the sequence
/// before going on without it: groups written together arrive newest first, within moments.
pub(crate) const REORDER_WINDOW: Duration = Duration::from_millis(100);

/// How far (media time) a newer group's keyframe must be past the last frame returned before a
/// stalled group is given up, when the reader has no latency target of its own: far enough that
/// the tail of a group arriving just after the next group's keyframe on a healthy link is never
/// skipped, short enough that a group the link will not deliver stalls the output only briefly.
pub(crate) const STARVED_AFTER: Duration = Duration::from_millis(500);

/// Least payload a run of back-to-back frames must bring (after its first chunk) to count as a
/// capacity sample: about four packets, so it spans several packet times of the bottleneck.
pub(crate) const BURST_MIN_BYTES: u64 = 5_000;

/// The longest pause between one frame's last chunk and the next frame's first for both to
/// count as one run: longer than a packet's time on a 0.5 Mbit/s link, shorter than a frame
/// interval, so frames the publisher sent together join and frames it sent apart do not.
pub(crate) const RUN_GAP: Duration = Duration::from_millis(20);

/// Frames that arrived back to back (see [`SkippingReader::take_burst`]).
#[derive(Debug, Clone, Copy)]
struct Run {
    first: Instant,
    last: Instant,
    /// Bytes after the run's first chunk.
    bytes: u64,
}

impl Run {
    /// The rate (bits per second) the run arrived at, if it was big and long enough to tell.
    fn rate(&self) -> Option<u64> {
        let micros = u64::try_from((self.last - self.first).as_micros()).unwrap_or(u64::MAX);
        if self.bytes < BURST_MIN_BYTES || micros < 1_000 {
            return None;
        }
        Some(self.bytes.saturating_mul(8_000_000) / micros)
    }
}

/// Reads a track in order, skipping to a newer group when it falls more than its latency target
/// behind, and moving on from a group that will not complete.
///
/// - **Latency target**: a group is skipped when a newer group's keyframe is at least `latency`
///   (media time) past the last frame returned; the reader then continues from the newest such
///   keyframe, so a decoder never sees a broken GoP.
/// - **Abandoned groups**: a group reset by the publisher or a relay (expired, dropped, cut off)
///   ends for this reader, which continues with the next group; it is counted as skipped, and
///   only the track ending or failing ends the reader.
/// - **Starved groups**: a group whose next frame has not arrived while a newer group's keyframe
///   is [`STARVED_AFTER`] past the last frame returned is given up for the oldest newer group:
///   on a link slower than the stream, a relay sends the newest group first and the older one's
///   tail may never come. This holds with no latency target too, so the output never stalls.
///
/// Every wait is cancel-safe, including the middle of a frame's payload: a partial frame is kept
/// and finished by the next call.
#[derive(Debug)]
pub(crate) struct SkippingReader<D> {
    track: moq_lite::TrackConsumer,
    decoder: D,
    current: Option<GroupConsumer>,
    /// Frames already taken from `current`.
    index: usize,
    /// The frame of `current` being read, and its chunks so far.
    frame: Option<FrameConsumer>,
    chunks: Vec<Bytes>,
    /// The run of back-to-back frames the last frame read belongs to.
    run: Option<Run>,
    /// The arrival rate of the last run that gave a sample, not taken yet.
    burst: Option<u64>,
    /// Newer groups that arrived while `current` was being read, oldest first, each with its
    /// keyframe's media time once that has arrived.
    pending: VecDeque<Pending>,
    ended: bool,
    /// The sequence after the group last started: the one expected next.
    next_sequence: Option<u64>,
    latency: Duration,
    /// Media time of the last frame returned.
    last: Option<u64>,
    skipped: u64,
}

#[derive(Debug)]
struct Pending {
    group: GroupConsumer,
    /// Media time of its first frame, once that has fully arrived.
    keyframe: Option<u64>,
    /// The newest whole frame decoded so far: its index and media time (see `live_edge`).
    edge: Option<(usize, u64)>,
}

impl<D: FrameDecoder> SkippingReader<D> {
    /// Read `track` (its own max latency is lifted: this reader decides what to skip).
    pub fn new(mut track: moq_lite::TrackConsumer, decoder: D, latency: Duration) -> Self {
        // Hand every group over, also one whose stream lost the race to a newer one's (a relay
        // sends the newest first, so groups written together, like the audio frames of one fMP4
        // fragment, arrive newest first): this reader orders them and decides what to skip.
        track.set_max_latency(Duration::MAX);
        track.set_late_groups(true);
        // Tell the publisher (and any relay) how stale a group may get for us: it resets older
        // group streams past that instead of spending the link on them.
        track.request_max_latency(latency);
        Self {
            track,
            decoder,
            current: None,
            index: 0,
            frame: None,
            chunks: Vec::new(),
            run: None,
            burst: None,
            pending: VecDeque::new(),
            ended: false,
            next_sequence: None,
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
        self.track.request_max_latency(latency);
    }

    /// Groups skipped because this reader fell behind or the group was abandoned.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The next frame, or `None` once the track has ended. Cancel-safe.
    pub async fn read(&mut self) -> Result<Option<ReadFrame<D::Output>>, Error> {
        loop {
            self.poll_groups()?;
            self.skip_if_behind();
            if self.current.is_none() {
                if self.next_is_ready() {
                    if let Some(next) = self.pending.pop_front() {
                        self.start(next.group);
                        continue;
                    }
                }
                if self.ended && self.pending.is_empty() {
                    return Ok(None);
                }
            }

            // The newest pending group whose keyframe is not known yet: once it lands, re-check
            // whether to skip. (One whose keyframe is known needs no wait.)
            let unpeeked = self
                .pending
                .back()
                .filter(|p| p.keyframe.is_none())
                .map(|p| p.group.clone());
            // The newest pending group's next frame moves the live edge: re-check then too.
            let newest = self
                .pending
                .back()
                .filter(|p| p.group.closed().is_none())
                .map(|p| (p.group.clone(), p.group.frame_count()));
            let ended = self.ended;
            let full = self.pending.len() >= MAX_PENDING_GROUPS;
            let track = &mut self.track;
            let frame = &mut self.frame;
            let chunks = &mut self.chunks;
            let current = &mut self.current;
            tokio::select! {
                biased;
                step = async {
                    match current.as_mut() {
                        Some(group) => {
                            let sequence = group.info().sequence;
                            (sequence, next_chunks(group, frame, chunks).await)
                        }
                        None => std::future::pending().await,
                    }
                } => match step {
                    (_, Ok(Step::More)) => {}
                    (_, Ok(Step::Frame(payload, arrival))) => {
                        if let Some(arrival) = arrival {
                            self.arrived(arrival);
                        }
                        let (timestamp, output) = self.decoder.decode(payload)?;
                        let keyframe = self.index == 0;
                        self.index += 1;
                        if let Some(timestamp) = timestamp {
                            self.last = Some(timestamp);
                        }
                        return Ok(Some(ReadFrame { keyframe, output }));
                    }
                    (_, Ok(Step::GroupEnd)) => self.end_group(),
                    (sequence, Err(err)) => {
                        // Reset or expired upstream: this group is over for us, not the track.
                        tracing::debug!(
                            track = %self.track.track().name,
                            group = sequence,
                            %err,
                            "group abandoned: continuing with the next"
                        );
                        self.skipped += 1;
                        self.end_group();
                    }
                },
                group = track.next_group(), if !ended && !full => match group? {
                    Some(group) => self.push_pending(group),
                    None => self.ended = true,
                },
                _ = first_frame(unpeeked) => {}
                _ = async {
                    match &newest {
                        Some((group, count)) => group.frames_past(*count).await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
        }
    }

    /// Whether the oldest pending group may be read now: it is the next in sequence, or the
    /// groups missing before it are given up (newer groups already [`REORDER_WINDOW`] past its
    /// keyframe, or the track ended), or it is the first group.
    fn next_is_ready(&mut self) -> bool {
        let Some(front) = self.pending.front() else {
            return false;
        };
        let sequence = front.group.info().sequence;
        let Some(expected) = self.next_sequence else {
            return true;
        };
        if sequence <= expected || self.ended {
            return true;
        }
        for pending in self.pending.iter_mut().filter(|p| p.keyframe.is_none()) {
            pending.keyframe = peek_timestamp(&self.decoder, &pending.group);
        }
        let (Some(keyframe), Some(live)) = (self.pending[0].keyframe, self.live_edge()) else {
            return false;
        };
        let window = u64::try_from(REORDER_WINDOW.as_micros()).unwrap_or(u64::MAX);
        if live >= keyframe.saturating_add(window) {
            self.skipped += sequence - expected;
            return true;
        }
        false
    }

    /// Queue the groups that have already arrived, without waiting.
    fn poll_groups(&mut self) -> Result<(), Error> {
        while !self.ended && self.pending.len() < MAX_PENDING_GROUPS {
            let Some(group) = self.track.next_group().now_or_never() else {
                break;
            };
            match group? {
                Some(group) => self.push_pending(group),
                None => self.ended = true,
            }
        }
        Ok(())
    }

    /// Queue a group in sequence order; one older than what was already read is dropped.
    fn push_pending(&mut self, group: GroupConsumer) {
        let sequence = group.info().sequence;
        if self.next_sequence.is_some_and(|next| sequence < next) {
            tracing::trace!(
                sequence,
                "a group older than the one being read arrived: dropped"
            );
            return;
        }
        let position = self
            .pending
            .partition_point(|p| p.group.info().sequence < sequence);
        self.pending.insert(
            position,
            Pending {
                group,
                keyframe: None,
                edge: None,
            },
        );
    }

    fn start(&mut self, group: GroupConsumer) {
        self.next_sequence = Some(group.info().sequence + 1);
        self.current = Some(group);
        self.index = 0;
        self.frame = None;
        self.chunks.clear();
    }

    fn end_group(&mut self) {
        self.current = None;
        self.frame = None;
        self.chunks.clear();
    }

    /// The rate (bits per second) at which the last run of frames big enough to tell arrived,
    /// once. A run is frames whose chunks came back to back (pauses under [`RUN_GAP`]): a
    /// keyframe, or frames a publisher sent together. A relay forwards them as fast as the link
    /// takes them, so the rate is a sample of the link's capacity, above the stream's own rate
    /// when the link has room. The times are when the session wrote the chunks, not when this
    /// reader read them, so a reader that is behind still measures the link.
    pub fn take_burst(&mut self) -> Option<u64> {
        self.burst.take()
    }

    /// Add a whole frame's arrival to the current run, or close the run and start another.
    fn arrived(&mut self, arrival: moq_lite::Arrival) {
        match self.run.as_mut() {
            Some(run) if arrival.first.saturating_duration_since(run.last) <= RUN_GAP => {
                run.last = run.last.max(arrival.last);
                run.bytes += arrival.written;
            }
            _ => {
                if let Some(rate) = self.run.and_then(|run| run.rate()) {
                    self.burst = Some(rate);
                }
                self.run = Some(Run {
                    first: arrival.first,
                    last: arrival.last,
                    bytes: arrival.written - arrival.first_len,
                });
            }
        }
    }

    /// Jump ahead when behind the latency target, or when the current group is starved.
    ///
    /// How far behind is measured against the newest frame that has arrived in a newer group
    /// (the live edge as seen here). The jump goes to the oldest newer group whose keyframe is
    /// within the target of that edge (or the newest keyframe there is): as little is skipped
    /// as staying within the target allows, and the frames after it are already here.
    fn skip_if_behind(&mut self) {
        let Some(last) = self.last else { return };
        for pending in self.pending.iter_mut().filter(|p| p.keyframe.is_none()) {
            pending.keyframe = peek_timestamp(&self.decoder, &pending.group);
        }
        let Some(live) = self.live_edge() else { return };
        let behind = live.saturating_sub(last);
        let media = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let target = media(self.latency);
        let why = if behind >= target {
            "behind the latency target: skipping ahead"
        } else if behind >= target.min(media(STARVED_AFTER))
            && self.current.is_some()
            && !self.current_has_data()
        {
            // Nothing more of the current group is here while newer groups are well ahead: on a
            // link slower than the stream, a relay sends the newest group first and the rest of
            // this one may never come.
            "group starved by newer ones: moving on"
        } else {
            return;
        };
        let floor = live.saturating_sub(target);
        let candidates = || {
            self.pending
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.keyframe.filter(|k| *k > last).map(|k| (i, k)))
        };
        let Some(position) = candidates()
            .find(|(_, keyframe)| *keyframe >= floor)
            .or_else(|| candidates().next_back())
            .map(|(i, _)| i)
        else {
            return;
        };
        tracing::debug!(
            track = %self.track.track().name,
            groups = position + 1,
            behind_ms = behind / 1000,
            "{why}"
        );
        let mut skipped = self.pending.drain(..=position).collect::<Vec<_>>();
        self.skipped += skipped.len() as u64 - 1 + u64::from(self.current.is_some());
        if let Some(next) = skipped.pop() {
            // Reading resumes at its keyframe: judge the next decision from there.
            self.last = next.keyframe.or(self.last);
            self.start(next.group);
        }
    }

    /// Media time of the newest whole frame in the newest pending group that has one. Each
    /// group's answer is kept with its frame index, so a frame is decoded (and a payload that came
    /// in chunks joined) once, not on every wake-up.
    fn live_edge(&mut self) -> Option<u64> {
        let decoder = &self.decoder;
        for pending in self.pending.iter_mut().rev() {
            let count = pending.group.frame_count();
            // The last frame may still be arriving: then the one before it.
            for index in (0..count).rev().take(2) {
                if let Some((known, timestamp)) = pending.edge {
                    if known >= index {
                        return Some(timestamp);
                    }
                }
                let Some(Ok(payload)) = pending
                    .group
                    .frame_at(index)
                    .and_then(|frame| frame.payload_if_complete())
                else {
                    continue;
                };
                if let Some(timestamp) = decoder.decode(payload).ok().and_then(|d| d.0) {
                    pending.edge = Some((index, timestamp));
                    return Some(timestamp);
                }
            }
            if let Some((_, timestamp)) = pending.edge {
                return Some(timestamp);
            }
        }
        None
    }

    /// Whether the current group has something to read right now (a chunk, a frame or its end).
    fn current_has_data(&self) -> bool {
        match (&self.frame, &self.current) {
            (Some(frame), _) => frame.is_ready(),
            (None, Some(group)) => group.is_ready(),
            (None, None) => false,
        }
    }
}

/// What one wait on the current group gave.
enum Step {
    /// More of the frame's payload arrived.
    More,
    /// A whole frame's payload, and when it arrived.
    Frame(Bytes, Option<moq_lite::Arrival>),
    /// The group finished.
    GroupEnd,
}

/// Wait for the next piece of the current group: its next frame's header, then the frame's
/// chunks. Cancel-safe: progress is kept in `frame` and `chunks`.
async fn next_chunks(
    group: &mut GroupConsumer,
    frame: &mut Option<FrameConsumer>,
    chunks: &mut Vec<Bytes>,
) -> Result<Step, moq_lite::Error> {
    let reading = match frame {
        Some(reading) => reading,
        None => match group.next_frame().await? {
            Some(next) => frame.insert(next),
            None => return Ok(Step::GroupEnd),
        },
    };
    if reading.read_chunks(chunks).await? {
        return Ok(Step::More);
    }
    let arrival = reading.arrival();
    *frame = None;
    let payload = match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => {
            let mut buf = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
            for chunk in chunks.drain(..) {
                buf.extend_from_slice(&chunk);
            }
            buf.freeze()
        }
    };
    chunks.clear();
    Ok(Step::Frame(payload, arrival))
}

/// The first frame's media time if it has fully arrived, without waiting.
fn peek_timestamp<D: FrameDecoder>(decoder: &D, group: &GroupConsumer) -> Option<u64> {
    let payload = group.frame_at(0)?.payload_if_complete()?.ok()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use moq_lite::{Frame, Group, GroupProducer, Track, TrackInfo, TrackProducer};

    /// Test frames: the payload is the media time (µs) as 8 big-endian bytes.
    #[derive(Debug)]
    struct Stamp;

    impl FrameDecoder for Stamp {
        type Output = u64;

        fn decode(&self, payload: Bytes) -> Result<(Option<u64>, u64), Error> {
            let bytes: [u8; 8] = payload[..8].try_into().expect("8-byte test frame");
            let timestamp = u64::from_be_bytes(bytes);
            Ok((Some(timestamp), timestamp))
        }
    }

    const MS: u64 = 1000;

    fn track() -> TrackProducer {
        TrackProducer::new(Track::new("video"), TrackInfo::default())
    }

    fn group(track: &TrackProducer, sequence: u64) -> GroupProducer {
        track.create_group(Group { sequence }).unwrap()
    }

    fn write(group: &mut GroupProducer, timestamp: u64) {
        group
            .write_frame(timestamp, Bytes::copy_from_slice(&timestamp.to_be_bytes()))
            .unwrap();
    }

    /// A frame of `group` whose header and first half arrived, and whose rest never comes (its
    /// stream starved by newer groups); returned so the test can finish it or keep it open.
    fn half_frame(group: &mut GroupProducer, timestamp: u64) -> moq_lite::FrameProducer {
        let mut frame = group.create_frame(Frame { timestamp, size: 8 }).unwrap();
        frame
            .write_chunk(Bytes::copy_from_slice(&timestamp.to_be_bytes()[..4]))
            .unwrap();
        frame
    }

    fn reader(track: &TrackProducer, latency: Duration) -> SkippingReader<Stamp> {
        let mut reader = SkippingReader::new(track.consume(), Stamp, latency);
        reader.start_at_oldest();
        reader
    }

    /// The next frame's (media time, keyframe), failing the test instead of waiting forever.
    async fn next(reader: &mut SkippingReader<Stamp>) -> (u64, bool) {
        let frame = tokio::time::timeout(Duration::from_secs(5), reader.read())
            .await
            .expect("the reader stalled")
            .unwrap()
            .expect("the track ended");
        (frame.output, frame.keyframe)
    }

    /// The slow-link case: the relay sends the newest group first, so the older group's tail
    /// (here the second half of a frame) never comes. With no latency target the reader still
    /// moves on once a newer keyframe is well ahead, instead of waiting inside the frame.
    #[tokio::test]
    async fn a_group_starved_mid_frame_is_given_up_without_a_latency_target() {
        let track = track();
        let mut reader = reader(&track, Duration::MAX);
        let mut g0 = group(&track, 0);
        write(&mut g0, 0);
        write(&mut g0, 100 * MS);
        let _stuck = half_frame(&mut g0, 200 * MS);
        assert_eq!(next(&mut reader).await, (0, true));
        assert_eq!(next(&mut reader).await, (100 * MS, false));
        // A newer group only 400 ms ahead: a healthy link could still deliver the tail.
        let mut g1 = group(&track, 1);
        write(&mut g1, 500 * MS);
        let early = tokio::time::timeout(Duration::from_millis(50), reader.read()).await;
        assert!(early.is_err(), "gave up a group that was not starved");
        // The next group's keyframe 1 s ahead: group 0 is starved; continue with group 1.
        let mut g2 = group(&track, 2);
        write(&mut g2, 1000 * MS);
        assert_eq!(next(&mut reader).await, (500 * MS, true));
        assert_eq!(next(&mut reader).await, (1000 * MS, true));
        assert_eq!(
            reader.skipped(),
            2,
            "group 0 given up, group 1 ended unfinished"
        );
    }

    /// Groups written together (the audio frames of one fMP4 fragment) reach a viewer newest
    /// first: the reader still returns every one, in order.
    #[tokio::test]
    async fn groups_arriving_newest_first_are_read_in_order() {
        let track = track();
        let mut reader = reader(&track, Duration::MAX);
        let mut g0 = group(&track, 0);
        write(&mut g0, 0);
        g0.finish();
        assert_eq!(next(&mut reader).await, (0, true));
        // 4 arrives first, then 3, 2, 1.
        for sequence in [4u64, 3, 2, 1] {
            let mut g = group(&track, sequence);
            write(&mut g, sequence * 20 * MS);
            g.finish();
            if sequence == 4 {
                let early = tokio::time::timeout(Duration::from_millis(30), reader.read()).await;
                assert!(early.is_err(), "read group 4 before the groups before it");
            }
        }
        for sequence in 1..=4u64 {
            assert_eq!(next(&mut reader).await, (sequence * 20 * MS, true));
        }
        assert_eq!(reader.skipped(), 0);
    }

    /// A group that never arrives is given up once newer ones run the reorder window past it.
    #[tokio::test]
    async fn a_missing_group_is_given_up_after_the_reorder_window() {
        let track = track();
        let mut reader = reader(&track, Duration::MAX);
        let mut g0 = group(&track, 0);
        write(&mut g0, 0);
        g0.finish();
        assert_eq!(next(&mut reader).await, (0, true));
        for sequence in 2..=8u64 {
            let mut g = group(&track, sequence);
            write(&mut g, sequence * 20 * MS);
            g.finish();
        }
        // Group 1 never comes: groups 2.. are 120 ms past group 2's keyframe, beyond the window.
        assert_eq!(next(&mut reader).await, (40 * MS, true));
        assert_eq!(reader.skipped(), 1);
    }

    #[tokio::test]
    async fn a_reset_group_ends_for_the_reader_which_goes_on() {
        let track = track();
        let mut reader = reader(&track, Duration::MAX);
        let mut g0 = group(&track, 0);
        write(&mut g0, 0);
        let mut g1 = group(&track, 1);
        write(&mut g1, 33 * MS);
        assert_eq!(next(&mut reader).await, (0, true));
        // Reset by a relay (expired): not an error for the reader, just the end of the group.
        g0.abort(moq_lite::Error::Old);
        assert_eq!(next(&mut reader).await, (33 * MS, true));
        assert_eq!(reader.skipped(), 1);
        g1.finish();
        track.finish();
        let end = tokio::time::timeout(Duration::from_secs(5), reader.read()).await;
        assert!(
            matches!(end, Ok(Ok(None))),
            "the track's end ends the reader"
        );
    }

    /// Behind the target, it skips as little as the target allows: to the oldest newer keyframe
    /// within the target of the newest frame here.
    #[tokio::test]
    async fn behind_the_latency_target_mid_frame_it_skips_ahead() {
        let track = track();
        let mut reader = reader(&track, Duration::from_millis(300));
        let mut g0 = group(&track, 0);
        write(&mut g0, 0);
        let _stuck = half_frame(&mut g0, 33 * MS);
        assert_eq!(next(&mut reader).await, (0, true));
        let mut g1 = group(&track, 1);
        write(&mut g1, 200 * MS);
        let mut g2 = group(&track, 2);
        write(&mut g2, 400 * MS);
        // 400 ms behind the newest frame (group 2's keyframe): group 1's keyframe is 200 ms behind.
        assert_eq!(next(&mut reader).await, (200 * MS, true));
        assert_eq!(reader.skipped(), 1);
        // Group 1 stalls as group 3 runs 300 ms past it: the target again, and group 2 is within it.
        let mut g3 = group(&track, 3);
        write(&mut g3, 450 * MS);
        write(&mut g3, 500 * MS);
        assert_eq!(next(&mut reader).await, (400 * MS, true));
        assert_eq!(reader.skipped(), 2);
    }

    /// On a healthy link the older group's last frame can land just after the next keyframe
    /// (newest first): nothing is skipped.
    #[tokio::test]
    async fn a_tail_arriving_after_the_next_keyframe_is_read() {
        let track = track();
        let mut reader = reader(&track, Duration::MAX);
        let mut g0 = group(&track, 0);
        write(&mut g0, 0);
        let mut tail = half_frame(&mut g0, 33 * MS);
        assert_eq!(next(&mut reader).await, (0, true));
        let mut g1 = group(&track, 1);
        write(&mut g1, 66 * MS);
        tail.write_chunk(Bytes::copy_from_slice(&(33 * MS).to_be_bytes()[4..]))
            .unwrap();
        tail.finish().unwrap();
        g0.finish();
        assert_eq!(next(&mut reader).await, (33 * MS, false));
        assert_eq!(next(&mut reader).await, (66 * MS, true));
        assert_eq!(reader.skipped(), 0);
    }

    /// Cancelling a read in the middle of a frame loses nothing: the next read finishes it.
    #[tokio::test]
    async fn a_read_cancelled_mid_frame_resumes_it() {
        let track = track();
        let mut reader = reader(&track, Duration::MAX);
        let mut g0 = group(&track, 0);
        let mut frame = half_frame(&mut g0, 7);
        let cancelled = tokio::time::timeout(Duration::from_millis(20), reader.read()).await;
        assert!(cancelled.is_err());
        frame
            .write_chunk(Bytes::copy_from_slice(&7u64.to_be_bytes()[4..]))
            .unwrap();
        frame.finish().unwrap();
        assert_eq!(next(&mut reader).await, (7, true));
    }

    #[tokio::test]
    async fn queued_groups_are_bounded_and_none_is_lost() {
        let track = track();
        let mut reader = reader(&track, Duration::MAX);
        let mut g0 = group(&track, 0);
        write(&mut g0, 0);
        assert_eq!(next(&mut reader).await, (0, true));
        // Many newer groups while group 0 is still open: the reader takes only so many.
        let count = MAX_PENDING_GROUPS as u64 + 10;
        for sequence in 1..=count {
            let mut newer = group(&track, sequence);
            write(&mut newer, sequence * 10);
            newer.finish();
        }
        let waited = tokio::time::timeout(Duration::from_millis(50), reader.read()).await;
        assert!(
            waited.is_err(),
            "group 0 is not starved: nothing is far enough ahead"
        );
        assert_eq!(reader.pending.len(), MAX_PENDING_GROUPS);
        // Once group 0 ends, every newer group comes in order, none dropped.
        g0.finish();
        for sequence in 1..=count {
            assert_eq!(next(&mut reader).await, (sequence * 10, true));
        }
        assert_eq!(reader.skipped(), 0);
    }

    /// A frame of `8 + 1500 * parts` bytes: its media time, then `parts` chunks 1 ms apart.
    async fn spread_frame(group: &mut GroupProducer, timestamp: u64, parts: u64) {
        let size = 8 + 1500 * parts;
        let mut frame = group.create_frame(Frame { timestamp, size }).unwrap();
        frame
            .write_chunk(Bytes::copy_from_slice(&timestamp.to_be_bytes()))
            .unwrap();
        for _ in 0..parts {
            tokio::time::advance(Duration::from_millis(1)).await;
            frame.write_chunk(Bytes::from(vec![0u8; 1500])).unwrap();
        }
        frame.finish().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn frames_arriving_back_to_back_give_one_capacity_sample() {
        let track = track();
        let mut reader = reader(&track, Duration::MAX);
        let mut g0 = group(&track, 0);
        // Two frames, each 8 bytes then 4 x 1500 bytes 1 ms apart, the second starting 1 ms
        // after the first ended: one run of 9 ms with 6000 + 6008 bytes after its first chunk.
        spread_frame(&mut g0, 0, 4).await;
        tokio::time::advance(Duration::from_millis(1)).await;
        spread_frame(&mut g0, 33 * MS, 4).await;
        assert_eq!(next(&mut reader).await, (0, true));
        assert_eq!(next(&mut reader).await, (33 * MS, false));
        assert_eq!(reader.take_burst(), None, "the run may go on");
        // A pause longer than RUN_GAP: the run is over.
        tokio::time::advance(RUN_GAP + Duration::from_millis(1)).await;
        write(&mut g0, 66 * MS);
        assert_eq!(next(&mut reader).await, (66 * MS, false));
        assert_eq!(reader.take_burst(), Some(12_008 * 8_000_000 / 9_000));
        assert_eq!(reader.take_burst(), None, "each sample once");
        // Small frames alone never make a sample: too few bytes to tell.
        for n in 3..6 {
            tokio::time::advance(Duration::from_millis(33)).await;
            write(&mut g0, n * 33 * MS);
            next(&mut reader).await;
        }
        assert_eq!(reader.take_burst(), None);
    }
}
