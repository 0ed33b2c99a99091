//! A hang broadcast over moq-lite: a `catalog.json` track plus one track per rendition.
//!
//! # Conventions (spec §12.1, §12.4)
//! - The broadcast path ends in [`BROADCAST_SUFFIX`] (`room/alice.hang`).
//! - The catalog track ([`crate::catalog::TRACK`]) holds one group per catalog version with one
//!   JSON frame; it uses the plain track defaults (timescale 1000, 5 s) at priority
//!   [`crate::catalog::PRIORITY`]. A consumer only reads the newest group.
//! - Media tracks are named `video{n}` / `audio{n}` (one counter per broadcast) and announce
//!   [`media_track_info`]: timescale 1 000 000 (µs), 30 s max latency. Every frame is a legacy
//!   container frame and its moq-lite FRAME timestamp carries the same microseconds.
//! - Video: a group per keyframe (one GoP); the first frame of a group is its keyframe; keyframe
//!   timestamps never go backwards; frames in decode order (B-frames allowed).
//! - Audio: every frame is its own group; timestamps never go backwards.

use std::time::Duration;

use bytes::Bytes;
use moq_lite::{GroupProducer, Track, TrackInfo};

use crate::catalog::{self, AudioConfig, Catalog, VideoConfig};
use crate::reader::{FrameDecoder, SkippingReader};
use crate::{container, Error};

/// Conventional suffix of a hang broadcast's path.
pub const BROADCAST_SUFFIX: &str = ".hang";

/// How long a media track keeps groups other than the latest.
pub const MEDIA_MAX_LATENCY: Duration = Duration::from_secs(30);

/// The TRACK_INFO of a legacy-container media track: priority 0, unordered, 30 s, µs timestamps.
pub fn media_track_info() -> TrackInfo {
    TrackInfo {
        priority: 0,
        ordered: false,
        max_latency: MEDIA_MAX_LATENCY,
        timescale: container::TIMESCALE,
    }
}

/// The TRACK_INFO of the catalog track: the defaults (ms, 5 s) at the catalog's priority.
pub fn catalog_track_info() -> TrackInfo {
    TrackInfo {
        priority: catalog::PRIORITY,
        ..TrackInfo::default()
    }
}

/// Whether a rendition is audio or video; decides its group rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A group per keyframe.
    Video,
    /// A group per frame.
    Audio,
}

/// A media frame: what producers write and consumers read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Presentation time in microseconds.
    pub timestamp: u64,
    /// Decodable on its own; starts a group. Consumers see it set on each group's first frame.
    pub keyframe: bool,
    /// The codec bitstream.
    pub payload: Bytes,
}

/// Publishes a hang broadcast: owns the moq-lite broadcast, the catalog and its track.
#[derive(Debug)]
pub struct BroadcastProducer {
    inner: moq_lite::BroadcastProducer,
    catalog: Catalog,
    catalog_track: moq_lite::TrackProducer,
    next_index: usize,
}

impl Default for BroadcastProducer {
    fn default() -> Self {
        Self::new()
    }
}

impl BroadcastProducer {
    /// An empty broadcast with a catalog track (no catalog published yet).
    pub fn new() -> Self {
        let inner = moq_lite::BroadcastProducer::new();
        let catalog_track = inner.create_track(Track::new(catalog::TRACK), catalog_track_info());
        Self {
            inner,
            catalog: Catalog::default(),
            catalog_track,
            next_index: 0,
        }
    }

    /// The moq-lite broadcast, e.g. to publish it on an origin.
    pub fn inner(&self) -> &moq_lite::BroadcastProducer {
        &self.inner
    }

    /// A consumer of this broadcast.
    pub fn consume(&self) -> BroadcastConsumer {
        BroadcastConsumer::new(self.inner.consume())
    }

    /// The catalog as it will be (or was last) published.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Edit the catalog; call [`Self::publish_catalog`] to send the change.
    pub fn catalog_mut(&mut self) -> &mut Catalog {
        &mut self.catalog
    }

    /// Publish the current catalog as a new group of the catalog track.
    pub fn publish_catalog(&mut self) -> Result<(), Error> {
        let json = self.catalog.to_bytes()?;
        self.catalog_track.write_frame(0, json)?;
        Ok(())
    }

    /// Add a video rendition named `video{n}` to the catalog (not yet published) and create its track.
    pub fn add_video(&mut self, config: VideoConfig) -> TrackProducer {
        let name = format!("video{}", self.next_index);
        self.next_index += 1;
        let video = self.catalog.video.get_or_insert_with(Default::default);
        video.renditions.insert(name.clone(), config);
        self.create_track(name, Kind::Video)
    }

    /// Add an audio rendition named `audio{n}` to the catalog (not yet published) and create its track.
    pub fn add_audio(&mut self, config: AudioConfig) -> TrackProducer {
        let name = format!("audio{}", self.next_index);
        self.next_index += 1;
        let audio = self.catalog.audio.get_or_insert_with(Default::default);
        audio.renditions.insert(name.clone(), config);
        self.create_track(name, Kind::Audio)
    }

    /// Remove a rendition from the catalog (not yet published).
    pub fn remove(&mut self, name: &str) {
        if let Some(video) = self.catalog.video.as_mut() {
            video.renditions.remove(name);
        }
        if let Some(audio) = self.catalog.audio.as_mut() {
            audio.renditions.remove(name);
        }
    }

    fn create_track(&self, name: String, kind: Kind) -> TrackProducer {
        let inner = self
            .inner
            .create_track(Track::new(name), media_track_info());
        TrackProducer {
            inner,
            kind,
            group: None,
            last_keyframe: None,
        }
    }

    /// End the broadcast normally.
    pub fn finish(&self) {
        self.catalog_track.finish();
        self.inner.finish();
    }
}

/// Writes one rendition's frames, enforcing the group rules of its [`Kind`].
#[derive(Debug)]
pub struct TrackProducer {
    inner: moq_lite::TrackProducer,
    kind: Kind,
    group: Option<GroupProducer>,
    /// Timestamp of the last group start (every audio frame starts one).
    last_keyframe: Option<u64>,
}

impl TrackProducer {
    /// The track name (the catalog rendition key).
    pub fn name(&self) -> &str {
        &self.inner.track().name
    }

    /// Audio or video.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Write a frame in decode order. A video keyframe closes the current group and opens the
    /// next; every audio frame is its own group (its `keyframe` flag is ignored).
    pub fn write(&mut self, frame: Frame) -> Result<(), Error> {
        let starts_group = frame.keyframe || self.kind == Kind::Audio;
        if starts_group {
            if let Some(previous) = self.last_keyframe {
                if frame.timestamp < previous {
                    return Err(Error::TimestampBackwards {
                        previous,
                        timestamp: frame.timestamp,
                    });
                }
            }
        }
        let payload = container::encode(frame.timestamp, &frame.payload)?;
        if starts_group {
            if let Some(mut group) = self.group.take() {
                group.finish();
            }
            self.last_keyframe = Some(frame.timestamp);
            if self.kind == Kind::Audio {
                self.inner.write_frame(frame.timestamp, payload)?;
                return Ok(());
            }
            self.group = Some(self.inner.append_group()?);
        }
        let group = self.group.as_mut().ok_or(Error::MissingKeyframe)?;
        group.write_frame(frame.timestamp, payload)?;
        Ok(())
    }

    /// End the track after the frames written so far.
    pub fn finish(&mut self) {
        if let Some(mut group) = self.group.take() {
            group.finish();
        }
        self.inner.finish();
    }
}

/// Reads a hang broadcast. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BroadcastConsumer {
    inner: moq_lite::BroadcastConsumer,
}

impl BroadcastConsumer {
    /// Wrap a moq-lite broadcast (local, or announced by a remote session).
    pub fn new(inner: moq_lite::BroadcastConsumer) -> Self {
        Self { inner }
    }

    /// The moq-lite broadcast.
    pub fn inner(&self) -> &moq_lite::BroadcastConsumer {
        &self.inner
    }

    /// Subscribe to the catalog track at priority 100.
    pub fn catalog(&self) -> CatalogConsumer {
        let track = Track::new(catalog::TRACK).with_priority(catalog::PRIORITY);
        CatalogConsumer {
            track: self.inner.subscribe_track(&track),
        }
    }

    /// Subscribe to a media track. `latency` is how far behind the newest group's keyframe the
    /// reader may fall before it skips ahead (`Duration::MAX`: never skip).
    pub fn subscribe(&self, name: &str, latency: Duration) -> TrackConsumer {
        self.subscribe_with_priority(name, latency, 0)
    }

    /// [`Self::subscribe`] with a subscriber priority: a peer sends the groups of a track with a
    /// higher priority before those of a lower one (spec §7).
    pub fn subscribe_with_priority(
        &self,
        name: &str,
        latency: Duration,
        priority: u8,
    ) -> TrackConsumer {
        let track = self
            .inner
            .subscribe_track(&Track::new(name).with_priority(priority));
        TrackConsumer {
            inner: SkippingReader::new(track, Legacy, latency),
        }
    }
}

/// Reads successive catalog versions.
#[derive(Debug)]
pub struct CatalogConsumer {
    track: moq_lite::TrackConsumer,
}

impl CatalogConsumer {
    /// The newest catalog not yet returned; `None` once the track has ended.
    pub async fn next(&mut self) -> Result<Option<Catalog>, Error> {
        loop {
            let Some(mut group) = self.track.next_group().await? else {
                return Ok(None);
            };
            // An empty (aborted) group is no catalog; wait for the next one.
            if let Ok(Some((_, json))) = group.read_frame().await {
                return Ok(Some(Catalog::from_slice(&json)?));
            }
        }
    }
}

/// Reads a media track in order, skipping to a newer group when it falls more than its latency
/// target behind.
///
/// A group is skipped when a newer group's keyframe is at least `latency` (media time) past the
/// last frame returned; the reader then continues from that keyframe, so the decoder never sees a
/// broken GoP. [`Self::skipped`] counts the groups passed over.
#[derive(Debug)]
pub struct TrackConsumer {
    inner: SkippingReader<Legacy>,
}

impl TrackConsumer {
    /// Start from the oldest group the track still holds instead of the latest (call before reading).
    pub fn start_at_oldest(&mut self) {
        self.inner.start_at_oldest();
    }

    /// Change the latency target.
    pub fn set_latency(&mut self, latency: Duration) {
        self.inner.set_latency(latency);
    }

    /// Groups skipped because this reader fell behind.
    pub fn skipped(&self) -> u64 {
        self.inner.skipped()
    }

    /// The rate (bits per second) at which the last large frame (a keyframe, usually) arrived,
    /// from its first chunk to its last; each sample once. On a link with room it is above the
    /// track's own rate: a capacity estimate for [`crate::abr`]. `None` when no frame since the
    /// last call was large enough to tell (see the reader's module docs).
    pub fn take_burst(&mut self) -> Option<u64> {
        self.inner.take_burst()
    }

    /// The track name.
    pub fn name(&self) -> &str {
        &self.inner.track().track().name
    }

    /// The next frame, or `None` once the track has ended. Cancel-safe between frames.
    ///
    /// A payload that is not a legacy container frame is an error.
    pub async fn read(&mut self) -> Result<Option<Frame>, Error> {
        let Some(frame) = self.inner.read().await? else {
            return Ok(None);
        };
        let (timestamp, payload) = frame.output;
        Ok(Some(Frame {
            timestamp,
            keyframe: frame.keyframe,
            payload,
        }))
    }
}

/// Legacy container frames: a varint µs timestamp, then the payload.
#[derive(Debug)]
struct Legacy;

impl FrameDecoder for Legacy {
    type Output = (u64, Bytes);

    fn decode(&self, payload: Bytes) -> Result<(Option<u64>, (u64, Bytes)), Error> {
        let (timestamp, payload) = container::decode(payload)?;
        Ok((Some(timestamp), (timestamp, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video_config() -> VideoConfig {
        VideoConfig {
            codec: "avc3.42c01e".into(),
            ..Default::default()
        }
    }

    fn frame(timestamp: u64, keyframe: bool) -> Frame {
        Frame {
            timestamp,
            keyframe,
            payload: Bytes::from(timestamp.to_be_bytes().to_vec()),
        }
    }

    #[tokio::test]
    async fn video_groups_follow_keyframes() {
        let mut broadcast = BroadcastProducer::new();
        let mut video = broadcast.add_video(video_config());
        broadcast.publish_catalog().unwrap();
        assert_eq!(video.name(), "video0");

        let consumer = broadcast.consume();
        let catalog = consumer.catalog().next().await.unwrap().unwrap();
        assert!(catalog.video.unwrap().renditions.contains_key("video0"));

        let raw = consumer
            .inner()
            .subscribe_track(&Track::new("video0"))
            .info();
        assert_eq!(raw, media_track_info());

        let mut reader = consumer.subscribe("video0", Duration::MAX);
        reader.start_at_oldest();
        for (ts, key) in [
            (0, true),
            (66, false),
            (33, false),
            (100, true),
            (133, false),
        ] {
            video.write(frame(ts, key)).unwrap();
        }
        video.finish();
        let mut got = Vec::new();
        while let Some(f) = reader.read().await.unwrap() {
            got.push((f.timestamp, f.keyframe));
        }
        assert_eq!(
            got,
            [
                (0, true),
                (66, false),
                (33, false),
                (100, true),
                (133, false)
            ]
        );
    }

    #[tokio::test]
    async fn frames_carry_the_legacy_container_and_transport_timestamp() {
        let mut broadcast = BroadcastProducer::new();
        let mut video = broadcast.add_video(video_config());
        let mut raw = broadcast
            .inner()
            .consume()
            .subscribe_track(&Track::new("video0"));
        video.write(frame(1_000_000, true)).unwrap();
        let mut group = raw.next_group().await.unwrap().unwrap();
        let (info, payload) = group.read_frame().await.unwrap().unwrap();
        assert_eq!(info.timestamp, 1_000_000);
        assert_eq!(&payload[..4], &[0x80, 0x0f, 0x42, 0x40]);
    }

    #[test]
    fn group_rules_are_enforced() {
        let mut broadcast = BroadcastProducer::new();
        let mut video = broadcast.add_video(video_config());
        assert!(matches!(
            video.write(frame(0, false)),
            Err(Error::MissingKeyframe)
        ));
        video.write(frame(100, true)).unwrap();
        video.write(frame(50, false)).unwrap(); // a B-frame may precede its keyframe
        assert!(matches!(
            video.write(frame(99, true)),
            Err(Error::TimestampBackwards {
                previous: 100,
                timestamp: 99
            })
        ));

        let mut audio = broadcast.add_audio(AudioConfig {
            codec: "opus".into(),
            sample_rate: 48000,
            number_of_channels: 2,
            ..Default::default()
        });
        assert_eq!(audio.name(), "audio1");
        audio.write(frame(20, false)).unwrap(); // audio frames are all keyframes
        audio.write(frame(20, false)).unwrap(); // equal is not backwards
        assert!(audio.write(frame(19, false)).is_err());
    }

    #[tokio::test]
    async fn audio_frames_are_groups_of_one() {
        let mut broadcast = BroadcastProducer::new();
        let mut audio = broadcast.add_audio(AudioConfig::default());
        let mut raw = broadcast
            .inner()
            .consume()
            .subscribe_track(&Track::new("audio0"));
        raw.start_at(0);
        raw.set_max_latency(Duration::MAX);
        for ts in [0, 20_000, 40_000] {
            audio.write(frame(ts, false)).unwrap();
        }
        audio.finish();
        for sequence in 0..3 {
            let group = raw.next_group().await.unwrap().unwrap();
            assert_eq!(group.info().sequence, sequence);
            assert_eq!(group.frame_count(), 1);
            assert!(group.closed().is_some());
        }
    }

    #[tokio::test]
    async fn a_reader_behind_its_latency_target_skips_to_the_newest_keyframe() {
        let mut broadcast = BroadcastProducer::new();
        let mut video = broadcast.add_video(video_config());
        let mut reader = broadcast
            .consume()
            .subscribe("video0", Duration::from_secs(1));
        reader.start_at_oldest();
        // Three one-second GoPs of 10 frames, all buffered before the reader starts.
        for gop in 0..3u64 {
            for i in 0..10u64 {
                video
                    .write(frame(gop * 1_000_000 + i * 100_000, i == 0))
                    .unwrap();
            }
        }
        // The reader takes the first frame of GoP 0; GoP 2's keyframe is 2 s later: skip to it.
        let first = reader.read().await.unwrap().unwrap();
        assert_eq!(first.timestamp, 0);
        let next = reader.read().await.unwrap().unwrap();
        assert_eq!((next.timestamp, next.keyframe), (2_000_000, true));
        assert_eq!(reader.skipped(), 2);
        let next = reader.read().await.unwrap().unwrap();
        assert_eq!((next.timestamp, next.keyframe), (2_100_000, false));
    }

    #[tokio::test]
    async fn a_reader_within_its_latency_target_reads_everything() {
        let mut broadcast = BroadcastProducer::new();
        let mut video = broadcast.add_video(video_config());
        let mut reader = broadcast
            .consume()
            .subscribe("video0", Duration::from_secs(5));
        reader.start_at_oldest();
        for gop in 0..3u64 {
            for i in 0..10u64 {
                video
                    .write(frame(gop * 1_000_000 + i * 100_000, i == 0))
                    .unwrap();
            }
        }
        video.finish();
        let mut count = 0;
        while reader.read().await.unwrap().is_some() {
            count += 1;
        }
        assert_eq!((count, reader.skipped()), (30, 0));
    }
}
