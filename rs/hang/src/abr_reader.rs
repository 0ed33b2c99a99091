//! [`AbrReader`]: the video of a broadcast with several renditions, read from the one the link
//! carries ([`crate::abr`] chooses), switching at keyframes with no gap.
//!
//! # Switching
//! On a new choice the reader subscribes to the new rendition's track and keeps returning the
//! current one's frames. The new track starts at its latest group, whose keyframe was usually
//! returned already (from the current track, the renditions' keyframes being aligned); the reader
//! switches at the new track's first keyframe *after* the last frame returned:
//! - When the current track reaches a group boundary first, its keyframe is held back (up to
//!   [`SWITCH_WAIT`]) for the new track's, which is bigger and may arrive a little later; when it
//!   comes, the reader continues from it. When it does not, the held keyframe goes out and the
//!   switch waits for the next boundary.
//! - When the new track's keyframe comes first, the reader returns the current track's frames up
//!   to its timestamp, then continues from it. A current track that stalls (it is the one the
//!   link cannot carry) does not hold the switch: [`SWITCH_WAIT`] after the new keyframe arrived,
//!   the reader cuts over anyway; a step down does not wait at all (what the current track has
//!   not delivered by then is late already).
//!
//! No repeat, and no gap but what a step down skips to catch up.
//!
//! Each rendition is subscribed with a priority by rank, the smallest highest: while two are
//! subscribed, a smaller one being switched to is sent before the bigger one being left, and a
//! bigger one being tried only takes what the link has left.
//!
//! # Estimate
//! A reader that keeps up receives its rendition at the rendition's own rate; the average says
//! nothing about how much more the link could carry, but the *bursts* do. A publisher sends a
//! keyframe, or the frames of one fMP4 fragment, at once, and a relay forwards them as fast as the
//! link takes them: the rate at which such a run of frames arrives
//! ([`crate::TrackConsumer::take_burst`]) is a sample of the link's capacity. So:
//! - **Behind** when a window ([`WINDOW`], or three of the usual gaps between bursts of media,
//!   for long fragments) moves the newest timestamp returned on by less than [`KEEP_UP`] of its
//!   length (a stall does not move it at all), or the track skipped groups. The estimate is then the delivered
//!   throughput, and the choice steps down at once.
//! - **Keeping up**: the median of the burst samples of the last [`BURST_FRESH`]; with a peer's
//!   report of what it could send ([`AbrReader::set_probe`], e.g. the relay's PROBE, fresh
//!   within [`PROBE_FRESH`]), the smaller of the two. The relay's PROBE is its congestion window
//!   over the round trip, which over-promises on an app-limited flow: on its own it makes the
//!   reader try renditions the link cannot carry.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::abr::{Abr, AbrConfig, Rendition};
use crate::catalog::{Catalog, Container};
use crate::{BroadcastConsumer, Error, Frame, TrackConsumer};

/// How long a switch waits for the current track to reach the new track's keyframe.
pub const SWITCH_WAIT: Duration = Duration::from_millis(300);

/// How long a [`AbrReader::set_probe`] estimate counts.
pub const PROBE_FRESH: Duration = Duration::from_secs(2);

/// How long a large frame's arrival rate counts towards the estimate (see [`AbrReader::burst`]).
pub const BURST_FRESH: Duration = Duration::from_secs(3);

/// The length of a measuring window.
pub const WINDOW: Duration = Duration::from_millis(500);

/// The share of a window's length it must bring in media time for the reader to keep up.
pub const KEEP_UP: f64 = 0.7;

/// A frame and the rendition it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbrFrame {
    /// The rendition's track name.
    pub rendition: String,
    /// The frame.
    pub frame: Frame,
    /// The first frame after a switch (a keyframe).
    pub switched: bool,
}

/// Reads a broadcast's video from the rendition the link carries; see the module docs.
#[derive(Debug)]
pub struct AbrReader {
    consumer: BroadcastConsumer,
    abr: Abr,
    latency: Duration,
    name: String,
    current: TrackConsumer,
    pending: Option<Pending>,
    /// Timestamp of the last frame returned.
    last: Option<u64>,
    /// Groups the current track had skipped at the last check.
    skipped: u64,
    epoch: Instant,
    window: Window,
    /// Delivered bits per second in the last window that closed.
    throughput: Option<u64>,
    /// The last window brought too little media time.
    falling_behind: bool,
    probe: Option<(u64, Instant)>,
    /// Arrival rates of the current track's runs of frames, newest last, within [`BURST_FRESH`].
    bursts: VecDeque<(Instant, u64)>,
    /// A keyframe of the current track held back for a pending switch, and since when.
    held: Option<(Frame, Instant)>,
    /// When the newest timestamp returned last moved on, and the usual time between such moves
    /// (a moving average): media comes in bursts (an fMP4 fragment at a time), and a window
    /// must span a few of them.
    edge_moved: Option<Instant>,
    edge_gap: Duration,
}

/// What one measuring window received.
#[derive(Debug)]
struct Window {
    start: Instant,
    bytes: u64,
    /// The newest media timestamp returned when it began.
    edge: Option<u64>,
}

impl Window {
    fn new(edge: Option<u64>) -> Self {
        Self {
            start: Instant::now(),
            bytes: 0,
            edge,
        }
    }
}

#[derive(Debug)]
struct Pending {
    name: String,
    track: TrackConsumer,
    /// The new track's first keyframe after the last frame returned, and when it came.
    keyframe: Option<(Frame, Instant)>,
    /// A step down to a smaller rendition.
    down: bool,
}

impl AbrReader {
    /// Read the video renditions of `catalog` (legacy container; each needs a `bitrate`, or
    /// counts as 0) from `consumer`, skipping ahead past `latency` behind like
    /// [`TrackConsumer`]. Starts with the best rendition for `initial` (bits per second; the
    /// lowest without one); `None` when the catalog has no legacy video rendition.
    pub fn new(
        consumer: BroadcastConsumer,
        catalog: &Catalog,
        latency: Duration,
        config: AbrConfig,
        initial: Option<u64>,
    ) -> Option<Self> {
        let renditions: Vec<Rendition> = catalog
            .video_renditions()
            .filter(|(_, c)| matches!(c.container, Container::Legacy))
            .map(|(name, c)| Rendition {
                name: name.clone(),
                bitrate: c.bitrate.unwrap_or(0),
            })
            .collect();
        if renditions.is_empty() {
            return None;
        }
        let abr = Abr::new(renditions, config, initial);
        let name = abr.current().name.clone();
        let current = consumer.subscribe_with_priority(&name, latency, priority(&abr, &name));
        let now = Instant::now();
        Some(Self {
            consumer,
            abr,
            latency,
            name,
            current,
            pending: None,
            last: None,
            skipped: 0,
            epoch: now,
            window: Window::new(None),
            throughput: None,
            falling_behind: false,
            probe: None,
            bursts: VecDeque::new(),
            held: None,
            edge_moved: None,
            edge_gap: Duration::ZERO,
        })
    }

    /// The rendition frames come from now.
    pub fn rendition(&self) -> &str {
        &self.name
    }

    /// Switches made so far.
    pub fn switches(&self) -> u64 {
        self.abr.switches()
    }

    /// The estimate the choice uses now, in bits per second: the delivered throughput while
    /// behind, a fresh probe report while keeping up.
    pub fn estimate(&self) -> Option<u64> {
        if self.falling_behind {
            return self.throughput;
        }
        let probe = self
            .probe
            .filter(|(_, at)| at.elapsed() < PROBE_FRESH)
            .map(|(bps, _)| bps);
        match (probe, self.burst()) {
            (Some(probe), Some(burst)) => Some(probe.min(burst)),
            (probe, burst) => probe.or(burst),
        }
    }

    /// The median arrival rate of the current track's large frames in the last
    /// [`BURST_FRESH`]: what the link carried while runs of frames crossed it.
    pub fn burst(&self) -> Option<u64> {
        let mut rates: Vec<u64> = self
            .bursts
            .iter()
            .filter(|(at, _)| at.elapsed() < BURST_FRESH)
            .map(|(_, bps)| *bps)
            .collect();
        if rates.is_empty() {
            return None;
        }
        rates.sort_unstable();
        Some(rates[rates.len() / 2])
    }

    /// Delivered bits per second over the last measuring window.
    pub fn throughput(&self) -> Option<u64> {
        self.throughput
    }

    /// A peer's estimate of what it can send us (bits per second), e.g. the relay's PROBE.
    pub fn set_probe(&mut self, bps: u64) {
        self.probe = Some((bps, Instant::now()));
    }

    /// Groups the current track skipped to stay within the latency target.
    pub fn skipped(&self) -> u64 {
        self.current.skipped()
    }

    /// The next video frame, in decode order; `None` when the current track ends.
    pub async fn read(&mut self) -> Result<Option<AbrFrame>, Error> {
        loop {
            self.choose();
            // A switch given up while a keyframe was held for it: the keyframe goes out now.
            if self.pending.is_none() {
                if let Some((frame, _)) = self.held.take() {
                    return Ok(Some(self.emit(frame)));
                }
            }
            let ready = self
                .pending
                .as_ref()
                .and_then(|p| Some((p.keyframe.as_ref()?, p.down)))
                // A step down leaves a track the link cannot carry: no waiting for it.
                .map(|((frame, at), down)| {
                    (frame.timestamp, if down { *at } else { *at + SWITCH_WAIT })
                });
            let waiting_keyframe = self.pending.as_ref().is_some_and(|p| p.keyframe.is_none());
            let held = self
                .held
                .as_ref()
                .map(|(frame, at)| (frame.timestamp, *at + SWITCH_WAIT));
            let window_end = self.window.start + self.window_length();
            let current = &mut self.current;
            let pending = &mut self.pending;
            tokio::select! {
                biased;
                _ = async {
                    match ready {
                        Some((_, deadline)) => tokio::time::sleep_until(deadline).await,
                        None => std::future::pending().await,
                    }
                } => return Ok(Some(self.cut_over())),
                // The new track did not bring the held keyframe's match in time: it goes out,
                // and the switch waits for the next group.
                _ = async {
                    match held {
                        Some((_, deadline)) => tokio::time::sleep_until(deadline).await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let Some((frame, _)) = self.held.take() {
                        return Ok(Some(self.emit(frame)));
                    }
                }
                // Before the current track: when both bring the same aligned keyframe, the new
                // track's must be seen first for the switch to happen at it.
                frame = async {
                    match pending.as_mut() {
                        Some(p) => p.track.read().await,
                        None => std::future::pending().await,
                    }
                }, if waiting_keyframe => {
                    match frame {
                        Ok(Some(frame)) => {
                            let after = self.last.is_none_or(|last| frame.timestamp > last);
                            if frame.keyframe && after {
                                let at_held = held.is_some_and(|(timestamp, _)| frame.timestamp <= timestamp);
                                if let Some(p) = self.pending.as_mut() {
                                    p.keyframe = Some((frame, Instant::now()));
                                }
                                // The current track's keyframe waits for this one: switch here.
                                if at_held {
                                    return Ok(Some(self.cut_over()));
                                }
                            }
                        }
                        // The new track ended or failed: stay where we are.
                        Ok(None) | Err(_) => {
                            self.pending = None;
                            self.abr.pin(&self.name);
                        }
                    }
                }
                frame = current.read(), if held.is_none() => {
                    let Some(frame) = frame? else {
                        if ready.is_some() {
                            return Ok(Some(self.cut_over()));
                        }
                        return Ok(None);
                    };
                    if let Some((timestamp, _)) = ready {
                        // The current track reached the new keyframe: switch there.
                        if frame.timestamp >= timestamp && frame.keyframe {
                            return Ok(Some(self.cut_over()));
                        }
                    }
                    if let Some(bps) = self.current.take_burst() {
                        tracing::debug!(bps, "capacity sample");
                        self.bursts.push_back((Instant::now(), bps));
                    }
                    let after = self.last.is_none_or(|last| frame.timestamp > last);
                    if waiting_keyframe && frame.keyframe && after {
                        // A group boundary while a switch waits: the renditions' keyframes are
                        // aligned, so hold this one for the new track's (which may come a little
                        // later: its frames are bigger) and switch there.
                        self.held = Some((frame, Instant::now()));
                        continue;
                    }
                    return Ok(Some(self.emit(frame)));
                }
                // A window ends even when nothing arrives (a stalled track); last, so that frames
                // already here count into it first.
                _ = tokio::time::sleep_until(window_end) => {
                    if self.window.start.elapsed() >= self.window_length() {
                        self.close_window();
                    }
                }
            }
        }
    }

    /// Return a frame of the current track.
    fn emit(&mut self, frame: Frame) -> AbrFrame {
        self.count(&frame);
        AbrFrame {
            rendition: self.name.clone(),
            frame,
            switched: false,
        }
    }

    /// Count a frame being returned into the measuring window; it is the newest returned now.
    fn count(&mut self, frame: &Frame) {
        self.window.bytes += frame.payload.len() as u64;
        if self.last.is_none_or(|last| frame.timestamp > last) {
            let now = Instant::now();
            if let Some(moved) = self.edge_moved {
                let gap = now - moved;
                if gap > Duration::from_millis(1) {
                    self.edge_gap = if self.edge_gap.is_zero() {
                        gap
                    } else {
                        self.edge_gap.mul_f64(0.9) + gap.mul_f64(0.1)
                    };
                }
            }
            self.edge_moved = Some(now);
            self.last = Some(frame.timestamp);
        }
        if self.window.start.elapsed() >= self.window_length() {
            self.close_window();
        }
    }

    /// How long a measuring window lasts: [`WINDOW`], or three of the usual gaps between bursts
    /// of media when those are longer (long fMP4 fragments).
    fn window_length(&self) -> Duration {
        WINDOW.max(self.edge_gap * 3)
    }

    /// End the measuring window: the delivered throughput, and whether the newest timestamp
    /// returned moved on by enough media time to keep up (a stall does not move it at all).
    fn close_window(&mut self) {
        let elapsed = self.window.start.elapsed().max(Duration::from_millis(1));
        self.throughput = Some(self.window.bytes * 8 * 1000 / elapsed.as_millis() as u64);
        // Before the first frame there is nothing to keep up with, and before the second burst
        // the window's length may not span one (unless the media stopped for long).
        let learned = !self.edge_gap.is_zero()
            || self
                .edge_moved
                .is_some_and(|moved| moved.elapsed() >= Duration::from_secs(2));
        if let (Some(from), Some(to), true) = (self.window.edge, self.last, learned) {
            let media = to.saturating_sub(from);
            self.falling_behind = (media as f64) < KEEP_UP * elapsed.as_micros() as f64;
        }
        self.window = Window::new(self.last);
    }

    /// Feed the estimate to the choice; start a switch when it changes.
    fn choose(&mut self) {
        while self
            .bursts
            .front()
            .is_some_and(|(at, _)| at.elapsed() >= BURST_FRESH)
        {
            self.bursts.pop_front();
        }
        let skipped = self.current.skipped();
        let behind = skipped > self.skipped || self.falling_behind;
        self.skipped = skipped;
        let now = self.epoch.elapsed();
        let estimate = self.estimate();
        let Some(target) = self.abr.update(now, estimate, behind).map(str::to_string) else {
            return;
        };
        if target == self.name {
            self.pending = None;
            return;
        }
        if self.pending.as_ref().is_some_and(|p| p.name == target) {
            return;
        }
        tracing::info!(from = %self.name, to = %target, estimate, behind, "switching rendition");
        let bitrate = |name: &str| {
            let renditions = self.abr.renditions();
            renditions
                .iter()
                .find(|r| r.name == name)
                .map(|r| r.bitrate)
        };
        let down = bitrate(&target) < bitrate(&self.name);
        self.pending = Some(Pending {
            down,
            track: self.consumer.subscribe_with_priority(
                &target,
                self.latency,
                priority(&self.abr, &target),
            ),
            name: target,
            keyframe: None,
        });
    }

    /// Continue with the pending track from its keyframe. Called only when `read` saw a pending
    /// track with a keyframe (`ready`), with no await in between: neither can be missing.
    fn cut_over(&mut self) -> AbrFrame {
        let pending = self
            .pending
            .take()
            .expect("cut_over only with a ready pending track");
        let (frame, _) = pending
            .keyframe
            .expect("cut_over only with a ready keyframe");
        self.current = pending.track;
        self.held = None;
        self.skipped = self.current.skipped();
        self.name = pending.name;
        // A new rendition is measured afresh.
        self.throughput = None;
        self.falling_behind = false;
        self.bursts.clear();
        self.window = Window::new(self.last);
        self.count(&frame);
        AbrFrame {
            rendition: self.name.clone(),
            frame,
            switched: true,
        }
    }
}

/// The subscriber priority of rendition `name`: the smaller the rendition, the higher. While two
/// are subscribed, a smaller one being switched to (the link cannot carry the bigger) comes
/// first, and a bigger one being tried only takes what the link has left.
fn priority(abr: &Abr, name: &str) -> u8 {
    let renditions = abr.renditions();
    let rank = renditions.iter().position(|r| r.name == name).unwrap_or(0);
    u8::try_from(renditions.len() - 1 - rank).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::catalog::VideoConfig;
    use crate::{BroadcastProducer, TrackProducer};

    fn config(bitrate: u64) -> VideoConfig {
        VideoConfig {
            codec: "avc3.42c01e".into(),
            bitrate: Some(bitrate),
            ..Default::default()
        }
    }

    /// Moves up after 1 s of a fitting estimate instead of 4.
    fn up_fast() -> AbrConfig {
        AbrConfig {
            up_after: Duration::from_secs(1),
            ..AbrConfig::default()
        }
    }

    /// A simulcast broadcast: "video0" at 3 Mbit/s and "video1" at 300 kbit/s (their writers),
    /// and a reader of it with `abr`, starting at the best rendition for `initial`.
    async fn simulcast(
        abr: AbrConfig,
        initial: Option<u64>,
    ) -> (BroadcastProducer, TrackProducer, TrackProducer, AbrReader) {
        let mut broadcast = BroadcastProducer::new();
        let big = broadcast.add_video(config(3_000_000));
        let small = broadcast.add_video(config(300_000));
        broadcast.publish_catalog().unwrap();
        let consumer = broadcast.consume();
        let catalog = consumer.catalog().next().await.unwrap().unwrap();
        let reader = AbrReader::new(consumer, &catalog, Duration::MAX, abr, initial).unwrap();
        (broadcast, big, small, reader)
    }

    fn frame(timestamp: u64, keyframe: bool, size: usize) -> Frame {
        Frame {
            timestamp,
            keyframe,
            payload: Bytes::from(vec![0u8; size]),
        }
    }

    /// A simulcast broadcast: "video0" at 3 Mbit/s and "video1" at 300 kbit/s, keyframes aligned
    /// every 10 frames (~333 ms); frames sized to those rates at 30 fps.
    #[tokio::test(start_paused = true)]
    async fn a_probe_estimate_moves_up_and_the_switch_has_no_gap() {
        let (_broadcast, mut big, mut small, mut reader) = simulcast(up_fast(), None).await;
        assert_eq!(reader.rendition(), "video1", "starts with the lowest");

        let writer = tokio::spawn(async move {
            for n in 0..300u64 {
                let (t, key) = (n * 33_333, n % 10 == 0);
                big.write(frame(t, key, 12_500)).unwrap();
                small.write(frame(t, key, 1_250)).unwrap();
                tokio::time::sleep(Duration::from_micros(33_333)).await;
            }
            big.finish();
            small.finish();
        });

        let mut got = Vec::new();
        while let Some(f) = reader.read().await.unwrap() {
            // A relay that reports room for 10 Mbit/s.
            reader.set_probe(10_000_000);
            got.push((
                f.rendition.clone(),
                f.frame.timestamp,
                f.frame.keyframe,
                f.switched,
            ));
        }
        writer.await.unwrap();
        let switch = got.iter().position(|g| g.3).expect("a switch up");
        let (rendition, timestamp, keyframe, _) = &got[switch];
        assert_eq!((rendition.as_str(), *keyframe), ("video0", true));
        assert!(
            *timestamp >= 30 * 33_333,
            "after the 1 s up_after: {timestamp}"
        );
        // No gap and no repeat: every timestamp once, in order, across the switch.
        let timestamps: Vec<u64> = got.iter().map(|g| g.1).collect();
        let first = timestamps[0] / 33_333;
        let expected: Vec<u64> = (first..first + timestamps.len() as u64)
            .map(|n| n * 33_333)
            .collect();
        assert_eq!(timestamps, expected);
        assert_eq!(reader.switches(), 1);
        assert!(got[switch..].iter().all(|g| g.0 == "video0"));
    }

    /// The big rendition's track stalls (the link cannot carry it): the window brings no media
    /// time, the reader steps down and cuts over SWITCH_WAIT after the small track's next
    /// keyframe.
    #[tokio::test(start_paused = true)]
    async fn a_stalled_rendition_is_left_for_the_small_one() {
        // Start on the big one, as after an earlier switch up.
        let (_broadcast, mut big, mut small, mut reader) =
            simulcast(AbrConfig::default(), Some(10_000_000)).await;
        assert_eq!(reader.rendition(), "video0");

        let writer = tokio::spawn(async move {
            for n in 0..120u64 {
                let (t, key) = (n * 33_333, n % 10 == 0);
                // The big track gets only its first 30 frames through, then stalls.
                if n < 30 {
                    big.write(frame(t, key, 12_500)).unwrap();
                }
                small.write(frame(t, key, 1_250)).unwrap();
                tokio::time::sleep(Duration::from_micros(33_333)).await;
            }
            small.finish();
            big.finish();
        });
        let mut got = Vec::new();
        let start = Instant::now();
        while let Some(f) = reader.read().await.unwrap() {
            got.push((f.rendition.clone(), f.frame.timestamp, start.elapsed()));
        }
        writer.await.unwrap();
        let switch = got
            .iter()
            .position(|g| g.0 == "video1")
            .expect("a switch down");
        assert!(got[switch..].iter().all(|g| g.0 == "video1"));
        // The first small frame comes within a window (500 ms) to notice, a group (333 ms) for
        // the small track's next keyframe, and SWITCH_WAIT.
        let stall = got[switch - 1].2;
        let gap = got[switch].2 - stall;
        assert!(
            gap <= WINDOW + Duration::from_millis(333) + SWITCH_WAIT + Duration::from_millis(40),
            "{gap:?}"
        );
        let timestamps: Vec<u64> = got.iter().map(|g| g.1).collect();
        assert!(
            timestamps.windows(2).all(|w| w[1] > w[0]),
            "timestamps increase"
        );
        assert_eq!(reader.switches(), 1);
    }

    /// The big rendition's frames arrive 20 ms after the small one's (bigger frames take longer
    /// over the link): at a group boundary the small track's keyframe is held for the big one's,
    /// and the switch happens there, with no gap and no repeat.
    #[tokio::test(start_paused = true)]
    async fn a_switch_waits_at_the_boundary_for_the_new_tracks_later_keyframe() {
        let (_broadcast, mut big, mut small, mut reader) = simulcast(up_fast(), None).await;
        let writer = tokio::spawn(async move {
            for n in 0..150u64 {
                let (t, key) = (n * 33_333, n % 10 == 0);
                small.write(frame(t, key, 1_250)).unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
                big.write(frame(t, key, 12_500)).unwrap();
                tokio::time::sleep(Duration::from_micros(13_333)).await;
            }
            big.finish();
            small.finish();
        });
        let mut got = Vec::new();
        while let Some(f) = reader.read().await.unwrap() {
            reader.set_probe(10_000_000);
            got.push((f.rendition.clone(), f.frame.timestamp, f.switched));
        }
        writer.await.unwrap();
        let switch = got.iter().position(|g| g.2).expect("a switch up");
        assert_eq!(got[switch].0, "video0");
        assert_eq!(got[switch].1 % (10 * 33_333), 0, "at a group boundary");
        let timestamps: Vec<u64> = got.iter().map(|g| g.1).collect();
        let first = timestamps[0] / 33_333;
        let expected: Vec<u64> = (first..first + timestamps.len() as u64)
            .map(|n| n * 33_333)
            .collect();
        assert_eq!(timestamps, expected, "no gap, no repeat");
        assert_eq!(reader.switches(), 1);
    }

    /// Media in 1 s fragments (30 frames at once, once a second) keeps up: the windows stretch to
    /// span several bursts, and the reader stays where it is.
    #[tokio::test(start_paused = true)]
    async fn long_fragments_are_not_mistaken_for_falling_behind() {
        let (_broadcast, mut big, mut small, mut reader) =
            simulcast(AbrConfig::default(), Some(10_000_000)).await;
        assert_eq!(reader.rendition(), "video0");
        let writer = tokio::spawn(async move {
            for second in 0..15u64 {
                for k in 0..30u64 {
                    let n = second * 30 + k;
                    big.write(frame(n * 33_333, k == 0, 12_500)).unwrap();
                    small.write(frame(n * 33_333, k == 0, 1_250)).unwrap();
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            big.finish();
            small.finish();
        });
        let mut frames = 0;
        while let Some(f) = reader.read().await.unwrap() {
            assert_eq!(f.rendition, "video0");
            frames += 1;
        }
        writer.await.unwrap();
        assert_eq!(frames, 450);
        assert_eq!(reader.switches(), 0);
    }

    #[test]
    fn smaller_renditions_get_higher_priorities() {
        let renditions = [("hd", 3_000_000), ("sd", 800_000), ("ld", 300_000)]
            .map(|(name, bitrate)| Rendition {
                name: name.into(),
                bitrate,
            })
            .to_vec();
        let abr = Abr::new(renditions, AbrConfig::default(), None);
        let priorities = ["ld", "sd", "hd"].map(|name| priority(&abr, name));
        assert_eq!(priorities, [2, 1, 0]);
    }
}
