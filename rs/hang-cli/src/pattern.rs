//! `--test-pattern`: a built-in live source, so a demo needs neither ffmpeg nor a media file.
//!
//! - **Video**: 640x360 at 30 fps. A scrolling colour gradient and a bouncing box (motion you can
//!   see stall), with the UTC wall clock `HH:MM:SS.mmm` and a frame counter drawn in a built-in
//!   5x7 bitmap font (compare the clock with the viewer's to read the glass-to-glass latency).
//!   Converted to I420 and encoded by OpenH264, which the `openh264` crate compiles from source.
//!   An IDR every 2 s of the clock, so every group is 2 s long. Frames are Annex-B access units
//!   (parameter sets in band) under an `avc3` codec string read from the encoder's SPS.
//! - **Audio**: a 440 Hz sine, 48 kHz mono, 20 ms Opus frames from `mousiki` (pure Rust).
//! - **Simulcast** (`--renditions 640x360@1200,320x180@300`): the same picture, drawn once per
//!   frame at 640x360 and scaled to each rendition's size, through one encoder per rendition at
//!   its bitrate. Every encoder gets its IDR at the same slot of the clock, so a viewer can
//!   switch renditions at any group boundary. Each rendition is its own track, listed in the
//!   catalog with codec, size, bitrate and frame rate.
//!
//! Both streams run on one thread paced by a monotonic clock: slot `n` of a stream is produced
//! at `epoch + n × duration` and stamped `n × duration` µs, so audio and video share one
//! timeline. A thread that falls behind (a starved CPU) skips video slots rather than drift, and
//! lets audio catch up unless it is more than [`AUDIO_MAX_LAG`] frames late.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use hang::catalog::{AudioConfig, VideoConfig};
use hang::{BroadcastProducer, Frame, TrackProducer};
use moq_lite::{OriginProducer, Path};
use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, RateControlMode,
};
use openh264::formats::{RgbSliceU8, YUVBuffer};
use openh264::OpenH264API;

/// Picture size.
const WIDTH: usize = 640;
/// Picture size.
const HEIGHT: usize = 360;
/// Video frames per second.
const FPS: u64 = 30;
/// Video frames per group (an IDR every 2 s).
const GOP_FRAMES: u64 = 2 * FPS;

/// Audio sample rate.
const SAMPLE_RATE: u32 = 48_000;
/// Samples per Opus frame (20 ms).
const AUDIO_FRAME: usize = 960;
/// Frequency of the tone.
const TONE_HZ: f64 = 440.0;
/// Peak amplitude of the tone (about -12 dBFS).
const TONE_AMPLITUDE: f64 = 8000.0;
const AUDIO_BITRATE: i32 = 64_000;
/// Audio frames the thread may fall behind before it skips ahead instead of catching up.
const AUDIO_MAX_LAG: u64 = 10;
/// Largest Opus packet (RFC 6716 §3.2.1 bounds a frame at 1275 bytes).
const MAX_OPUS_PACKET: usize = 1276;

/// One video rendition of the pattern: its size, and a target bitrate (none: a constant
/// quantiser, about 0.5 Mbit/s at 640x360).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rendition {
    /// Width in pixels (even).
    pub width: usize,
    /// Height in pixels (even).
    pub height: usize,
    /// Target bitrate in kbit/s.
    pub kbps: Option<u32>,
}

impl Default for Rendition {
    /// 640x360 at a constant quantiser.
    fn default() -> Self {
        Self {
            width: WIDTH,
            height: HEIGHT,
            kbps: None,
        }
    }
}

/// Largest rendition side accepted.
const MAX_SIDE: usize = 1920;

impl FromStr for Rendition {
    type Err = String;

    /// `WIDTHxHEIGHT@KBPS` (e.g. `640x360@1200`), or `WIDTHxHEIGHT` for a constant quantiser.
    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = || format!("{text:?}: expected WIDTHxHEIGHT@KBPS, e.g. 640x360@1200");
        let (size, kbps) = match text.split_once('@') {
            Some((size, kbps)) => (size, Some(kbps.parse::<u32>().map_err(|_| invalid())?)),
            None => (text, None),
        };
        let (width, height) = size.split_once('x').ok_or_else(invalid)?;
        let (width, height): (usize, usize) = (
            width.parse().map_err(|_| invalid())?,
            height.parse().map_err(|_| invalid())?,
        );
        if !(16..=MAX_SIDE).contains(&width) || !(16..=MAX_SIDE).contains(&height) {
            return Err(format!("{text:?}: sides must be 16 to {MAX_SIDE} pixels"));
        }
        if width % 2 != 0 || height % 2 != 0 {
            return Err(format!("{text:?}: sides must be even (4:2:0)"));
        }
        if kbps.is_some_and(|k| !(50..=50_000).contains(&k)) {
            return Err(format!("{text:?}: bitrate must be 50 to 50000 kbit/s"));
        }
        Ok(Self {
            width,
            height,
            kbps,
        })
    }
}

/// Publish the test pattern as a hang broadcast at `path` in `origin` and keep it live, one video
/// track per rendition (at least one: an empty list means the default). Returns only on failure;
/// dropping the future stops the source.
pub async fn run(
    origin: &OriginProducer,
    path: &Path,
    renditions: &[Rendition],
) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    // The thread owns the encoders (OpenH264's is not `Send`); this guard ends it with us.
    let _guard = StopOnDrop(stop.clone());
    let (done, result) = tokio::sync::oneshot::channel();
    let (origin, path) = (origin.clone(), path.clone());
    let renditions = match renditions {
        [] => vec![Rendition::default()],
        some => some.to_vec(),
    };
    // moq-lite spawns tasks when a broadcast is published: the thread runs in our runtime's context.
    let runtime = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("test-pattern".into())
        .spawn(move || {
            let _runtime = runtime.enter();
            let _ = done.send(Source::new(&origin, &path, &renditions).and_then(|s| s.run(&stop)));
        })
        .context("cannot start the test pattern thread")?;
    result
        .await
        .context("the test pattern thread panicked")?
        .context("test pattern")
}

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The broadcast, its two encoders and the clock they share.
struct Source {
    broadcast: BroadcastProducer,
    /// The picture every rendition is scaled from, [`WIDTH`] x [`HEIGHT`] RGB.
    canvas: Vec<u8>,
    /// Frames drawn so far (the counter on the picture).
    count: u64,
    videos: Vec<(Video, TrackProducer)>,
    audio: Audio,
    epoch: Instant,
}

impl Source {
    /// Encode the first frame of every rendition (its SPS makes the catalog entry), publish the
    /// catalog and the broadcast.
    fn new(origin: &OriginProducer, path: &Path, renditions: &[Rendition]) -> anyhow::Result<Self> {
        let epoch = Instant::now();
        // The wall-clock time of pts 0, taken at the same moment as `epoch`.
        let wall_at_epoch = hang::catalog::wall_now_us();
        let mut broadcast = BroadcastProducer::new();
        let mut canvas = vec![0; WIDTH * HEIGHT * 3];
        draw(&mut canvas, 0, 0, SystemTime::now());
        let mut videos = Vec::new();
        for rendition in renditions {
            let mut video = Video::new(*rendition)?;
            let first = video
                .encode(0, &canvas)?
                .context("the encoder skipped the first frame")?;
            let mut config = video_config(&first.payload).context("the encoder's first frame")?;
            config.bitrate = rendition.kbps.map(|k| u64::from(k) * 1000);
            tracing::info!(codec = %config.codec, "test pattern: H.264 {}x{} at {FPS} fps{} (OpenH264)",
                rendition.width, rendition.height,
                rendition.kbps.map(|k| format!(", {k} kbit/s")).unwrap_or_default());
            let mut track = broadcast.add_video(config);
            track.write(first)?;
            videos.push((video, track));
        }
        let audio = Audio::new(&mut broadcast)?;
        tracing::info!("test pattern: Opus 440 Hz tone");
        // Anchor media time 0 (`epoch`) to the wall clock so viewers can measure latency.
        broadcast.catalog_mut().set_clock(wall_at_epoch);
        broadcast.publish_catalog()?;
        origin.publish_broadcast(path, broadcast.inner().consume())?;
        tracing::info!(broadcast = %path, "publishing the test pattern");
        Ok(Self {
            broadcast,
            canvas,
            count: 1,
            videos,
            audio,
            epoch,
        })
    }

    /// Produce frames as the clock reaches them until `stop` is set or a write fails.
    fn run(mut self, stop: &AtomicBool) -> anyhow::Result<()> {
        let (mut next_video, mut next_audio) = (1, 0);
        let mut skips = Skips::default();
        while !stop.load(Ordering::Relaxed) {
            let video_at = video_time(next_video);
            let audio_at = audio_time(next_audio);
            let due = video_at.min(audio_at);
            if let Some(wait) = due.checked_sub(self.epoch.elapsed()) {
                std::thread::sleep(wait);
            }
            let now = self.epoch.elapsed();
            if audio_at <= video_at {
                let slot = catch_up(next_audio, now, audio_time, AUDIO_MAX_LAG);
                self.audio.write(slot)?;
                next_audio = slot + 1;
            } else {
                let slot = catch_up(next_video, now, video_time, 1);
                skips.add(slot - next_video);
                draw(&mut self.canvas, slot, self.count, SystemTime::now());
                self.count += 1;
                for (video, track) in &mut self.videos {
                    match video.encode(slot, &self.canvas)? {
                        Some(frame) => track.write(frame)?,
                        None => skips.add(1),
                    }
                }
                next_video = slot + 1;
            }
            skips.report();
        }
        for (_, track) in &mut self.videos {
            track.finish();
        }
        self.audio.track.finish();
        self.broadcast.finish();
        Ok(())
    }
}

/// Video frames the source did not produce (behind real time, or dropped by the encoder), logged
/// at most once a second but never held back longer: a subscriber's gaps in the timestamps are
/// these, not losses on the way.
#[derive(Default)]
struct Skips {
    total: u64,
    unlogged: u64,
    logged_at: Option<Instant>,
}

impl Skips {
    fn add(&mut self, frames: u64) {
        self.total += frames;
        self.unlogged += frames;
    }

    fn report(&mut self) {
        if self.unlogged == 0
            || self
                .logged_at
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        tracing::warn!(
            skipped = self.unlogged,
            total = self.total,
            "test pattern: video frames skipped (this machine is too busy to keep up with 30 fps)"
        );
        self.unlogged = 0;
        self.logged_at = Some(Instant::now());
    }
}

/// When video slot `n` is due, since the epoch.
fn video_time(n: u64) -> Duration {
    Duration::from_micros(n * 1_000_000 / FPS)
}

/// When audio slot `n` is due, since the epoch.
fn audio_time(n: u64) -> Duration {
    Duration::from_micros(n * AUDIO_FRAME as u64 * 1_000_000 / u64::from(SAMPLE_RATE))
}

/// The slot to produce at `now`: `next`, unless the clock is more than `max_lag` slots past it;
/// then the newest slot that is due.
fn catch_up(next: u64, now: Duration, time: fn(u64) -> Duration, max_lag: u64) -> u64 {
    if now < time(next + max_lag) {
        return next;
    }
    let mut slot = next + max_lag;
    while time(slot + 1) <= now {
        slot += 1;
    }
    slot
}

/// One rendition's encoder and its picture, scaled from the canvas.
struct Video {
    rendition: Rendition,
    encoder: Encoder,
    rgb: Vec<u8>,
    yuv: YUVBuffer,
    /// The group of the last frame encoded.
    gop: Option<u64>,
}

impl Video {
    fn new(rendition: Rendition) -> anyhow::Result<Self> {
        let config = EncoderConfig::new().max_frame_rate(FrameRate::from_hz(FPS as f32));
        let config = match rendition.kbps {
            // Constant quantiser: this picture costs only about 0.5 Mb/s at 640x360 at its
            // default quality.
            None => config.rate_control_mode(RateControlMode::Off),
            Some(kbps) => config
                .rate_control_mode(RateControlMode::Bitrate)
                .bitrate(BitRate::from_bps(kbps * 1000)),
        };
        let config = config
            // Every slot gets a frame (OpenH264's rate control would skip some otherwise).
            .skip_frames(false)
            // IDRs come only from the clock (`encode`).
            .scene_change_detect(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(0))
            .num_threads(1);
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
            .context("cannot start the OpenH264 encoder")?;
        let (width, height) = (rendition.width, rendition.height);
        Ok(Self {
            rendition,
            encoder,
            rgb: vec![0; width * height * 3],
            yuv: YUVBuffer::new(width, height),
            gop: None,
        })
    }

    /// Scale the canvas to this rendition and encode it as the frame of slot `slot` (`None`:
    /// the encoder skipped it); the first frame of every 2 s of the clock is an IDR, in every
    /// rendition alike.
    fn encode(&mut self, slot: u64, canvas: &[u8]) -> anyhow::Result<Option<Frame>> {
        let (width, height) = (self.rendition.width, self.rendition.height);
        if (width, height) == (WIDTH, HEIGHT) {
            self.rgb.copy_from_slice(canvas);
        } else {
            scale(canvas, &mut self.rgb, width, height);
        }
        self.yuv
            .read_rgb8(RgbSliceU8::new(&self.rgb, (width, height)));
        // A new group every 2 s of the clock. Key on the group index rather than `slot % GOP`: a
        // skipped slot may have been the one due for an IDR. (The first frame is one anyway,
        // and the encoder is only initialised by it.)
        let gop = slot / GOP_FRAMES;
        if self.gop.is_some_and(|last| last != gop) {
            self.encoder.force_intra_frame();
        }
        self.gop = Some(gop);
        let bitstream = self.encoder.encode(&self.yuv).context("H.264 encode")?;
        let keyframe = bitstream.frame_type() == FrameType::IDR;
        let payload = bitstream.to_vec();
        if payload.is_empty() {
            return Ok(None);
        }
        Ok(Some(Frame {
            timestamp: micros(video_time(slot)),
            keyframe,
            payload: payload.into(),
        }))
    }
}

/// Nearest-neighbour scaling of the [`WIDTH`] x [`HEIGHT`] canvas into `out` (`width` x `height`).
fn scale(canvas: &[u8], out: &mut [u8], width: usize, height: usize) {
    for (y, row) in out.chunks_exact_mut(width * 3).enumerate() {
        let sy = y * HEIGHT / height;
        let line = &canvas[sy * WIDTH * 3..(sy + 1) * WIDTH * 3];
        for (x, px) in row.chunks_exact_mut(3).enumerate() {
            let sx = x * WIDTH / width;
            px.copy_from_slice(&line[sx * 3..sx * 3 + 3]);
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The catalog entry of an Annex-B access unit holding an SPS: `avc3.PPCCLL` (in-band parameter
/// sets, no description), sized from the SPS.
fn video_config(access_unit: &[u8]) -> anyhow::Result<VideoConfig> {
    let sps = hang::annexb::nal_units(access_unit)
        .find(|nal| nal.first().map(|h| h & 0x1f) == Some(7))
        .context("no SPS")?;
    let [_, profile, constraints, level, ..] = *sps else {
        anyhow::bail!("SPS too short");
    };
    let rbsp = h264_parser::nal::ebsp_to_rbsp(&sps[1..]);
    let parsed = h264_parser::Sps::parse(&rbsp).map_err(|e| anyhow::anyhow!("invalid SPS: {e}"))?;
    Ok(VideoConfig {
        codec: format!("avc3.{profile:02x}{constraints:02x}{level:02x}"),
        coded_width: Some(parsed.width),
        coded_height: Some(parsed.height),
        framerate: Some(FPS as f64),
        optimize_for_latency: Some(true),
        ..Default::default()
    })
}

/// The tone, its Opus encoder and the audio track.
struct Audio {
    encoder: mousiki::Encoder,
    track: TrackProducer,
    pcm: Vec<i16>,
    packet: Vec<u8>,
}

impl Audio {
    fn new(broadcast: &mut BroadcastProducer) -> anyhow::Result<Self> {
        let encoder = mousiki::Encoder::builder(
            SAMPLE_RATE,
            mousiki::Channels::Mono,
            mousiki::Application::Audio,
        )
        .bitrate(mousiki::Bitrate::Bits(AUDIO_BITRATE))
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the Opus encoder: {e:?}"))?;
        let track = broadcast.add_audio(AudioConfig {
            codec: "opus".into(),
            sample_rate: SAMPLE_RATE,
            number_of_channels: 1,
            bitrate: Some(AUDIO_BITRATE as u64),
            ..Default::default()
        });
        Ok(Self {
            encoder,
            track,
            pcm: vec![0; AUDIO_FRAME],
            packet: vec![0; MAX_OPUS_PACKET],
        })
    }

    /// Encode and write the 20 ms of tone of slot `slot`.
    fn write(&mut self, slot: u64) -> anyhow::Result<()> {
        tone(&mut self.pcm, slot * AUDIO_FRAME as u64);
        let len = self
            .encoder
            .encode(&self.pcm, &mut self.packet)
            .map_err(|e| anyhow::anyhow!("Opus encode: {e:?}"))?;
        self.track.write(Frame {
            timestamp: micros(audio_time(slot)),
            keyframe: true,
            payload: bytes::Bytes::copy_from_slice(&self.packet[..len]),
        })?;
        Ok(())
    }
}

/// Fill `pcm` with the tone from sample `first` on (phase from the sample index: no drift, and a
/// skipped frame leaves no discontinuity but the gap).
fn tone(pcm: &mut [i16], first: u64) {
    let period = f64::from(SAMPLE_RATE) / TONE_HZ;
    for (i, sample) in pcm.iter_mut().enumerate() {
        // Reduce the index modulo the period's whole multiple (1 s) to keep f64 precise forever.
        let n = (first + i as u64) % u64::from(SAMPLE_RATE);
        let phase = std::f64::consts::TAU * n as f64 / period;
        *sample = (TONE_AMPLITUDE * phase.sin()) as i16;
    }
}

/// Draw frame `slot` into the RGB picture: the moving background and box, then the text.
fn draw(rgb: &mut [u8], slot: u64, count: u64, now: SystemTime) {
    // A red/blue ramp scrolling left, built once and copied to every row (cheap in debug builds).
    let shift = (slot * 4) as usize;
    let mut row = [0u8; WIDTH * 3];
    for (x, px) in row.chunks_exact_mut(3).enumerate() {
        let u = (x + shift) % 512;
        let ramp = if u < 256 { u } else { 511 - u } as u8;
        px.copy_from_slice(&[ramp, 96, 255 - ramp]);
    }
    for line in rgb.chunks_exact_mut(WIDTH * 3) {
        line.copy_from_slice(&row);
    }
    // A box bouncing along a triangle wave in both directions.
    let bounce = |t: u64, span: usize| {
        let span = span as u64;
        let p = t % (2 * span);
        (if p < span { p } else { 2 * span - p }) as usize
    };
    let size = 64;
    let (bx, by) = (
        bounce(slot * 7, WIDTH - size),
        bounce(slot * 5, HEIGHT - size),
    );
    fill(rgb, bx, by, size, size, [255, 255, 255]);
    fill(rgb, bx + 8, by + 8, size - 16, size - 16, [220, 30, 30]);

    let clock = utc_clock(now);
    let lines = [
        (&*format!("{clock} UTC"), 6),
        (&*format!("FRAME {count:06}"), 4),
        ("HANG TEST PATTERN", 3),
    ];
    let mut y = 24;
    for (text, scale) in lines {
        let w = text.chars().count() * 6 * scale + 2 * scale;
        fill(rgb, 24, y, w, 9 * scale, [0, 0, 0]);
        text_at(rgb, 24 + 2 * scale, y + scale, text, scale);
        y += 9 * scale + 12;
    }
}

/// `HH:MM:SS.mmm` of `now` in UTC.
fn utc_clock(now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        since.subsec_millis()
    )
}

/// A solid rectangle, clipped to the picture.
fn fill(rgb: &mut [u8], x: usize, y: usize, w: usize, h: usize, colour: [u8; 3]) {
    let (x_end, y_end) = ((x + w).min(WIDTH), (y + h).min(HEIGHT));
    if x >= x_end {
        return;
    }
    for row in y..y_end {
        let line = &mut rgb[(row * WIDTH + x) * 3..(row * WIDTH + x_end) * 3];
        for px in line.chunks_exact_mut(3) {
            px.copy_from_slice(&colour);
        }
    }
}

/// White text, each font pixel a `scale`-sized square, glyphs 6 font pixels apart.
fn text_at(rgb: &mut [u8], x: usize, y: usize, text: &str, scale: usize) {
    for (i, c) in text.chars().enumerate() {
        let rows = glyph(c);
        for (r, bits) in rows.iter().enumerate() {
            for col in 0..5 {
                if bits & (0x10 >> col) != 0 {
                    let gx = x + (i * 6 + col) * scale;
                    fill(rgb, gx, y + r * scale, scale, scale, [255, 255, 255]);
                }
            }
        }
    }
}

/// The 5x7 bitmap of `c`, one byte per row, bit 4 leftmost; blank for characters it lacks.
fn glyph(c: char) -> [u8; 7] {
    FONT.iter()
        .find(|(k, _)| *k == c)
        .map_or([0; 7], |(_, rows)| *rows)
}

/// Digits, `:`, `.`, and the letters of `FRAME`, `UTC` and `HANG TEST PATTERN`.
const FONT: &[(char, [u8; 7])] = &[
    ('0', [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e]),
    ('1', [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e]),
    ('2', [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f]),
    ('3', [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e]),
    ('4', [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02]),
    ('5', [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e]),
    ('6', [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e]),
    ('7', [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08]),
    ('8', [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e]),
    ('9', [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c]),
    (':', [0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00]),
    ('.', [0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c]),
    ('A', [0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11]),
    ('C', [0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e]),
    ('E', [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f]),
    ('F', [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10]),
    ('G', [0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f]),
    ('H', [0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11]),
    ('M', [0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11]),
    ('N', [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11]),
    ('P', [0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10]),
    ('R', [0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11]),
    ('S', [0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e]),
    ('T', [0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04]),
    ('U', [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_is_utc_with_milliseconds() {
        let t = UNIX_EPOCH
            + Duration::from_millis((3 * 86_400 + 12 * 3600 + 34 * 60 + 56) * 1000 + 789);
        assert_eq!(utc_clock(t), "12:34:56.789");
        assert_eq!(utc_clock(UNIX_EPOCH), "00:00:00.000");
    }

    #[test]
    fn the_font_has_every_character_drawn() {
        for c in "0123456789:.UTCFRAMEHANGTESTPATTERN".chars() {
            assert_ne!(glyph(c), [0; 7], "{c:?}");
        }
        assert_eq!(glyph(' '), [0; 7]);
    }

    #[test]
    fn late_slots_are_skipped_only_past_the_lag() {
        let ms = Duration::from_millis;
        // On time, or less than a slot late: the next slot.
        assert_eq!(catch_up(3, ms(100), video_time, 1), 3);
        assert_eq!(catch_up(3, ms(130), video_time, 1), 3);
        // Video 1 s late: the slot due now (30), not the 27 missed ones.
        assert_eq!(catch_up(3, ms(1_010), video_time, 1), 30);
        // Audio catches up within its lag, skips past it.
        assert_eq!(catch_up(0, ms(150), audio_time, AUDIO_MAX_LAG), 0);
        assert_eq!(catch_up(0, ms(1_000), audio_time, AUDIO_MAX_LAG), 50);
    }

    #[test]
    fn the_tone_is_continuous_across_frames_and_440_hz() {
        let mut second = vec![0i16; SAMPLE_RATE as usize];
        tone(&mut second, 0);
        let mut frame = vec![0i16; AUDIO_FRAME];
        tone(&mut frame, AUDIO_FRAME as u64);
        assert_eq!(frame, second[AUDIO_FRAME..2 * AUDIO_FRAME]);
        let rising = second.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
        assert!(
            (439..=441).contains(&rising),
            "{rising} rising zero crossings"
        );
    }

    #[test]
    fn the_encoder_starts_each_group_on_an_idr_of_the_clock() {
        let mut video = Video::new(Rendition::default()).unwrap();
        let mut canvas = vec![0; WIDTH * HEIGHT * 3];
        let mut encode = |slot| {
            draw(&mut canvas, slot, slot, SystemTime::now());
            video.encode(slot, &canvas).unwrap().expect("a frame")
        };
        let first = encode(0);
        assert!(first.keyframe);
        let config = video_config(&first.payload).unwrap();
        assert!(config.codec.starts_with("avc3.42"), "{}", config.codec);
        assert_eq!(
            (config.coded_width, config.coded_height),
            (Some(WIDTH as u32), Some(HEIGHT as u32))
        );
        for slot in 1..GOP_FRAMES {
            let frame = encode(slot);
            assert!(!frame.keyframe, "slot {slot}");
            assert_eq!(frame.timestamp, slot * 100_000 / 3);
        }
        assert!(encode(GOP_FRAMES).keyframe);
        assert!(!encode(GOP_FRAMES + 1).keyframe);
        // The slot due for the next IDR was skipped: the next frame is one anyway.
        assert!(encode(2 * GOP_FRAMES + 5).keyframe);
    }

    #[tokio::test]
    async fn the_audio_track_gets_one_opus_packet_per_20_ms() {
        let mut broadcast = BroadcastProducer::new();
        let mut audio = Audio::new(&mut broadcast).unwrap();
        let (name, config) = broadcast.catalog().audio_renditions().next().unwrap();
        assert_eq!(
            (
                config.codec.as_str(),
                config.sample_rate,
                config.number_of_channels
            ),
            ("opus", 48_000, 1)
        );
        let mut reader = broadcast.consume().subscribe(name, Duration::MAX);
        reader.start_at_oldest();
        for slot in 0..5 {
            audio.write(slot).unwrap();
        }
        audio.track.finish();
        let mut timestamps = Vec::new();
        while let Some(frame) = reader.read().await.unwrap() {
            assert!((1..MAX_OPUS_PACKET).contains(&frame.payload.len()));
            timestamps.push(frame.timestamp);
        }
        assert_eq!(timestamps, [0, 20_000, 40_000, 60_000, 80_000]);
    }
}

#[cfg(test)]
mod simulcast_tests {
    use super::*;

    #[test]
    fn renditions_parse_and_refuse_nonsense() {
        assert_eq!(
            "640x360@1200".parse::<Rendition>(),
            Ok(Rendition {
                width: 640,
                height: 360,
                kbps: Some(1200)
            })
        );
        assert_eq!(
            "320x180".parse::<Rendition>(),
            Ok(Rendition {
                width: 320,
                height: 180,
                kbps: None
            })
        );
        for bad in [
            "",
            "640",
            "640x",
            "x360",
            "641x360@100",
            "640x360@",
            "640x360@10",
            "4000x2000@1000",
            "640x360@abc",
        ] {
            assert!(bad.parse::<Rendition>().is_err(), "{bad:?}");
        }
    }

    /// Two renditions from one canvas: each at its own size and near its bitrate, with IDRs at
    /// the same slots.
    #[test]
    fn simulcast_encoders_share_keyframe_slots_and_follow_their_bitrates() {
        let specs = [
            Rendition {
                width: 640,
                height: 360,
                kbps: Some(1200),
            },
            Rendition {
                width: 320,
                height: 180,
                kbps: Some(300),
            },
        ];
        let mut videos: Vec<Video> = specs.iter().map(|s| Video::new(*s).unwrap()).collect();
        let mut canvas = vec![0; WIDTH * HEIGHT * 3];
        let mut bytes = [0usize; 2];
        let mut keys: [Vec<u64>; 2] = Default::default();
        let slots = 3 * GOP_FRAMES;
        for slot in 0..slots {
            draw(&mut canvas, slot, slot, SystemTime::now());
            for (i, video) in videos.iter_mut().enumerate() {
                let frame = video
                    .encode(slot, &canvas)
                    .unwrap()
                    .expect("a frame per slot");
                if slot == 0 {
                    let config = video_config(&frame.payload).unwrap();
                    assert_eq!(
                        (config.coded_width, config.coded_height),
                        (Some(specs[i].width as u32), Some(specs[i].height as u32))
                    );
                }
                bytes[i] += frame.payload.len();
                if frame.keyframe {
                    keys[i].push(slot);
                }
            }
        }
        assert_eq!(keys[0], [0, GOP_FRAMES, 2 * GOP_FRAMES]);
        assert_eq!(keys[0], keys[1], "keyframes aligned across renditions");
        let seconds = slots as f64 / FPS as f64;
        let kbps: Vec<f64> = bytes
            .iter()
            .map(|b| *b as f64 * 8.0 / seconds / 1000.0)
            .collect();
        println!(
            "simulcast: {:.0} and {:.0} kbit/s, keyframes at {:?}",
            kbps[0], kbps[1], keys[0]
        );
        // Rate control lands near the target; the small rendition costs a fraction of the big.
        assert!(kbps[0] > 400.0 && kbps[0] < 1800.0, "{kbps:?}");
        assert!(kbps[1] > 80.0 && kbps[1] < 450.0, "{kbps:?}");
        assert!(kbps[1] < kbps[0] / 2.0, "{kbps:?}");
    }
}
