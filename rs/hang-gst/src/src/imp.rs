//! The `hangsrc` implementation.
//!
//! A task on the shared runtime keeps a subscribing session with the relay, follows the
//! broadcast's catalog, and for each usable rendition keeps an `appsrc` (live, TIME format)
//! exposed through a `video_%u` / `audio_%u` ghost pad. A reader per rendition pushes its
//! samples with PTS on the pipeline's running time: the first sample of the broadcast is
//! stamped with the running time at which it arrived, the others keep their media-time distance
//! from it, and the `latency` property is reported as the source's latency so synchronised
//! sinks have that much room for network jitter. Outputs survive reconnections; the broadcast
//! ending (its catalog track finishing) sends EOS.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use hang::export::SampleReader;
use moq_lite::{Metric, OriginProducer};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::caps;
use crate::client::{self, Settings, Stats};

static CAT: std::sync::LazyLock<gst::DebugCategory> = std::sync::LazyLock::new(|| {
    gst::DebugCategory::new(
        "hangsrc",
        gst::DebugColorFlags::empty(),
        Some("hang source"),
    )
});

/// Default of the `latency` property, in milliseconds.
const DEFAULT_LATENCY_MS: u32 = 500;

/// Most bytes queued in one output's `appsrc` when downstream does not keep up (the oldest go).
const MAX_QUEUED_BYTES: u64 = 16 << 20;

/// The `hangsrc` element.
#[derive(Default)]
pub struct HangSrc {
    settings: Mutex<Settings>,
    latency_ms: Mutex<Option<u32>>,
    record: Mutex<bool>,
    running: Mutex<Option<Running>>,
    stats: Arc<Stats>,
    /// Wall clock minus capture time of the newest video sample, in ms (i64::MIN: unknown).
    e2e_latency_ms: Arc<AtomicI64>,
    skipped: Arc<AtomicU64>,
}

/// The session task while PAUSED or PLAYING.
struct Running {
    stop: watch::Sender<bool>,
    done: Option<std::sync::mpsc::Receiver<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[glib::object_subclass]
impl ObjectSubclass for HangSrc {
    const NAME: &'static str = "GstHangSrc";
    type Type = super::HangSrc;
    type ParentType = gst::Bin;
}

impl ObjectImpl for HangSrc {
    fn constructed(&self) {
        self.parent_constructed();
        self.e2e_latency_ms.store(i64::MIN, Ordering::Relaxed);
        self.obj().set_element_flags(gst::ElementFlags::SOURCE);
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: std::sync::LazyLock<Vec<glib::ParamSpec>> = std::sync::LazyLock::new(
            || {
                let mut properties = client::shared_properties(client::Direction::Play);
                properties.push(
                    glib::ParamSpecUInt::builder("latency")
                    .nick("Latency")
                    .blurb("Latency target in ms: a rendition that falls further behind live skips ahead to a newer group, and synchronised sinks render frames this long after capture (0: never skip, except groups the relay dropped)")
                    .default_value(DEFAULT_LATENCY_MS)
                    .maximum(60_000)
                    .mutable_ready()
                    .build(),
                );
                properties.push(
                    glib::ParamSpecBoolean::builder("record")
                    .nick("Record")
                    .blurb("Recording mode: keep every frame of the group joined (its keyframe was captured before the pipeline started) by timestamping from arrival, 10 s ahead of the pipeline's running time; not for synchronised playback")
                    .default_value(false)
                    .mutable_ready()
                    .build(),
                );
                properties.push(
                    glib::ParamSpecInt64::builder("e2e-latency")
                    .nick("End-to-end latency")
                    .blurb("How far the newest video sample is behind the publisher's wall clock when pushed, in ms, from the catalog clock; -1 until known (read-only)")
                    .minimum(-1)
                    .default_value(-1)
                    .read_only()
                    .build(),
                );
                properties.push(
                    glib::ParamSpecUInt64::builder("skipped")
                    .nick("Skipped groups")
                    .blurb("Groups skipped because a rendition fell behind its latency target (read-only)")
                    .read_only()
                    .build(),
                );
                properties
            },
        );
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        if lock(&self.settings).set(pspec.name(), value) {
            return;
        }
        match pspec.name() {
            "latency" => {
                *lock(&self.latency_ms) = Some(value.get().expect("type checked upstream"))
            }
            "record" => *lock(&self.record) = value.get().expect("type checked upstream"),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let name = pspec.name();
        if let Some(value) = lock(&self.settings)
            .get(name)
            .or_else(|| self.stats.get(name))
        {
            return value;
        }
        match name {
            "latency" => self.latency().to_value(),
            "record" => lock(&self.record).to_value(),
            "e2e-latency" => match self.e2e_latency_ms.load(Ordering::Relaxed) {
                i64::MIN => (-1i64).to_value(),
                ms => ms.max(0).to_value(),
            },
            "skipped" => self.skipped.load(Ordering::Relaxed).to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl GstObjectImpl for HangSrc {}

impl ElementImpl for HangSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: std::sync::LazyLock<gst::subclass::ElementMetadata> = std::sync::LazyLock::new(
            || {
                gst::subclass::ElementMetadata::new(
                "hang source",
                "Source/Network",
                "Plays a hang broadcast from a moq relay: one pad per rendition in the catalog (legacy and CMAF containers)",
                "moq developers",
            )
            },
        );
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: std::sync::LazyLock<Vec<gst::PadTemplate>> =
            std::sync::LazyLock::new(|| {
                let video = gst::Caps::builder_full()
                    .structure(gst::Structure::new_empty("video/x-h264"))
                    .structure(gst::Structure::new_empty("video/x-h265"))
                    .structure(gst::Structure::new_empty("video/x-av1"))
                    .structure(gst::Structure::new_empty("video/x-vp8"))
                    .structure(gst::Structure::new_empty("video/x-vp9"))
                    .build();
                let audio = gst::Caps::builder_full()
                    .structure(gst::Structure::new_empty("audio/x-opus"))
                    .structure(gst::Structure::new_empty("audio/mpeg"))
                    .build();
                vec![
                    gst::PadTemplate::new(
                        "video_%u",
                        gst::PadDirection::Src,
                        gst::PadPresence::Sometimes,
                        &video,
                    )
                    .expect("valid pad template"),
                    gst::PadTemplate::new(
                        "audio_%u",
                        gst::PadDirection::Src,
                        gst::PadPresence::Sometimes,
                        &audio,
                    )
                    .expect("valid pad template"),
                ]
            });
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        match transition {
            gst::StateChange::NullToReady => {
                if let Err(err) = lock(&self.settings).validate() {
                    gst::element_imp_error!(self, gst::ResourceError::Settings, ["{err:#}"]);
                    return Err(gst::StateChangeError);
                }
            }
            gst::StateChange::ReadyToPaused => {
                if let Err(err) = self.start() {
                    gst::element_imp_error!(self, gst::ResourceError::OpenRead, ["{err:#}"]);
                    return Err(gst::StateChangeError);
                }
            }
            _ => {}
        }
        let mut result = self.parent_change_state(transition)?;
        match transition {
            // A live source: nothing to preroll.
            gst::StateChange::ReadyToPaused | gst::StateChange::PlayingToPaused => {
                result = gst::StateChangeSuccess::NoPreroll;
            }
            gst::StateChange::PausedToReady => self.stop(),
            _ => {}
        }
        Ok(result)
    }
}

impl BinImpl for HangSrc {}

impl HangSrc {
    fn latency(&self) -> u32 {
        lock(&self.latency_ms).unwrap_or(DEFAULT_LATENCY_MS)
    }

    fn start(&self) -> anyhow::Result<()> {
        let settings = lock(&self.settings).clone();
        let (url, path) = settings.validate()?;
        let client = settings.client().context("cannot create the QUIC client")?;
        let (stop, stopped) = watch::channel(false);
        let (done_tx, done) = std::sync::mpsc::channel();
        let player = Player {
            element: self.obj().downgrade(),
            latency: Duration::from_millis(u64::from(self.latency())),
            outputs: Arc::default(),
            timing: Arc::new(Timing {
                record: *lock(&self.record),
                ..Default::default()
            }),
            e2e_latency_ms: self.e2e_latency_ms.clone(),
            skipped: self.skipped.clone(),
            stats: self.stats.clone(),
            video_pads: Arc::default(),
            audio_pads: Arc::default(),
        };
        let stats = self.stats.clone();
        client::runtime().spawn(async move {
            player.run(client, url, path, stats, stopped).await;
            drop(done_tx);
        });
        *lock(&self.running) = Some(Running {
            stop,
            done: Some(done),
        });
        Ok(())
    }

    fn stop(&self) {
        let Some(mut running) = lock(&self.running).take() else {
            return;
        };
        let _ = running.stop.send(true);
        if let Some(done) = running.done.take() {
            let _ = done.recv_timeout(Duration::from_secs(3));
        }
        // The outputs go with the session: a restart builds new ones from the catalog.
        let obj = self.obj();
        for pad in obj.src_pads() {
            let _ = obj.remove_pad(&pad);
        }
        for child in obj.children() {
            let _ = child.set_state(gst::State::Null);
            let _ = obj.remove(&child);
        }
    }
}

/// One rendition's output: its appsrc, exposed through a ghost pad.
struct Output {
    appsrc: gst_app::AppSrc,
    caps: gst::Caps,
}

/// Maps media time (µs) to running time, once for the whole broadcast so audio and video stay
/// in sync. With the catalog's wall-clock anchor, a sample's running time is the moment it was
/// captured (as far as the two machines' clocks agree): synchronised sinks then render it
/// `latency` after capture, and what arrives later than that is late. Without one (or with
/// clocks too far apart to trust), the first sample's running time is its arrival.
///
/// The group a viewer joins began before the pipeline did (its keyframe can be seconds old), so
/// running times can be negative. Buffers carry `running time + shift` as PTS, in a segment
/// starting at `shift`: PTS stay distinct and increasing, decoders get every frame of the
/// group, and frames captured before the pipeline started fall before the segment, where
/// sinks drop them after they were decoded.
///
/// In recording mode nothing may be dropped: running times come from arrival plus
/// [`RECORD_HEADROOM`], and the segment starts at zero, so samples up to that much older than
/// the first (the joined group's keyframe, when audio arrived first) are kept in order.
#[derive(Default)]
struct Timing {
    state: Mutex<Option<Mapping>>,
    /// The `record` property.
    record: bool,
}

/// How much older than the first sample a later one may be in recording mode.
const RECORD_HEADROOM: gst::ClockTime = gst::ClockTime::from_seconds(10);

#[derive(Clone, Copy)]
struct Mapping {
    /// Running time (ns) = media time (µs) × 1000 + this offset.
    offset_ns: i128,
    /// Added to running times to make PTS.
    shift: gst::ClockTime,
    /// Where the segment starts: `shift` (what is older than the pipeline is before it), or zero
    /// in recording mode.
    start: gst::ClockTime,
}

/// Largest capture age (µs) believed from the wall clocks; beyond it the clocks disagree or the
/// data is not live, and arrival time is used instead.
const MAX_TRUSTED_AGE_US: i64 = 30_000_000;

/// How far (µs) in the future a capture time may seem (clock skew) and still be trusted.
const MAX_TRUSTED_SKEW_US: i64 = 1_000_000;

impl Timing {
    /// The PTS of a sample at `timestamp` and the segment start it goes with, given the
    /// element's running time `now` and the catalog's wall clock at media time 0 (µs since
    /// 2020), if any.
    fn pts(
        &self,
        timestamp: u64,
        now: gst::ClockTime,
        clock: Option<u64>,
    ) -> (gst::ClockTime, gst::ClockTime) {
        let mut state = lock(&self.state);
        let media = timestamp as i128 * 1000;
        let mapping = *state.get_or_insert_with(|| {
            let offset_ns = self.offset(timestamp, now, clock);
            if self.record {
                return Mapping {
                    offset_ns,
                    shift: RECORD_HEADROOM,
                    start: gst::ClockTime::ZERO,
                };
            }
            // Whole seconds past the oldest time this first sample needs.
            let behind = (-(media + offset_ns)).max(0) as u64;
            let shift = gst::ClockTime::from_seconds(behind.div_ceil(1_000_000_000) + 1);
            Mapping {
                offset_ns,
                shift,
                start: shift,
            }
        });
        let mut running = media + mapping.offset_ns;
        // A publisher that restarted (a new timeline) or a jump of minutes: anchor again.
        if (running - now.nseconds() as i128).abs() > 10_000_000_000 {
            let offset_ns = self.offset(timestamp, now, clock);
            *state = Some(Mapping {
                offset_ns,
                ..mapping
            });
            running = media + offset_ns;
        }
        (
            clock_time(running + mapping.shift.nseconds() as i128),
            mapping.start,
        )
    }

    /// The offset that puts the sample at `timestamp` at its capture time, or its arrival time.
    fn offset(&self, timestamp: u64, now: gst::ClockTime, clock: Option<u64>) -> i128 {
        let clock = clock.filter(|_| !self.record);
        let age = clock.map(|wall| hang::catalog::age_us(wall, timestamp));
        let age_ns = match age {
            Some(age) if (-MAX_TRUSTED_SKEW_US..=MAX_TRUSTED_AGE_US).contains(&age) => {
                age as i128 * 1000
            }
            _ => 0,
        };
        now.nseconds() as i128 - age_ns - timestamp as i128 * 1000
    }
}

/// The session task's state: what `hangsrc` has built so far.
struct Player {
    element: glib::WeakRef<super::HangSrc>,
    latency: Duration,
    outputs: Arc<Mutex<BTreeMap<String, Output>>>,
    timing: Arc<Timing>,
    e2e_latency_ms: Arc<AtomicI64>,
    skipped: Arc<AtomicU64>,
    stats: Arc<Stats>,
    video_pads: Arc<AtomicU64>,
    audio_pads: Arc<AtomicU64>,
}

/// Why a session's playback stopped.
enum Ended {
    /// The broadcast ended: EOS.
    Finished,
    /// The session or the broadcast went away: connect again.
    Lost(anyhow::Error),
}

impl Player {
    /// Keep a subscribing session until the broadcast ends or the element stops.
    async fn run(
        self,
        client: moq_native::QuicClient,
        url: url::Url,
        path: moq_lite::Path,
        stats: Arc<Stats>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut reconnect = moq_native::Reconnect::new(&moq_native::ReconnectConfig::default());
        loop {
            let origin = OriginProducer::new();
            let opened = tokio::select! {
                _ = stop_requested(&mut stop) => return,
                res = client::open(&client, &url, |c| c.subscribe(origin.clone())) => res,
            };
            let (err, up) = match opened {
                Ok(session) => {
                    let up = reconnect.connected();
                    self.log_info(format!("connected to {url} ({})", session.version()));
                    let ended = tokio::select! {
                        ended = self.play(&origin, &path) => ended,
                        err = session.closed() => Ended::Lost(anyhow::anyhow!("session closed: {err}")),
                        _ = stats.track(&session, Metric::BytesIn) => unreachable!("stats never end"),
                        _ = stop_requested(&mut stop) => {
                            client::hang_up(&client, &session).await;
                            return;
                        }
                    };
                    match ended {
                        Ended::Finished => {
                            self.log_info("the broadcast ended".into());
                            for output in lock(&self.outputs).values() {
                                let _ = output.appsrc.end_of_stream();
                            }
                            client::hang_up(&client, &session).await;
                            return;
                        }
                        Ended::Lost(err) => (err, Some(up)),
                    }
                }
                Err(err) => (err, None),
            };
            if let Some(element) = self.element.upgrade() {
                gst::warning!(CAT, obj = element, "{err:#}; reconnecting");
            }
            let Ok(delay) = reconnect.retry(err, up) else {
                return;
            };
            tokio::select! {
                _ = stop_requested(&mut stop) => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    fn log_info(&self, message: String) {
        if let Some(element) = self.element.upgrade() {
            gst::info!(CAT, obj = element, "{message}");
        }
    }

    /// Over one session: wait for the broadcast, then follow its catalog and feed the outputs.
    async fn play(&self, origin: &OriginProducer, path: &moq_lite::Path) -> Ended {
        let broadcast = match origin.consume().wait_for_broadcast(path).await {
            Ok(broadcast) => hang::BroadcastConsumer::new(broadcast),
            Err(err) => return Ended::Lost(err.into()),
        };
        let mut catalogs = broadcast.catalog();
        let mut readers: JoinSet<(String, Result<(), hang::export::ExportError>)> = JoinSet::new();
        let mut running: BTreeMap<String, tokio::task::AbortHandle> = BTreeMap::new();
        loop {
            tokio::select! {
                next = catalogs.next() => {
                    let catalog = match next {
                        Ok(Some(catalog)) => catalog,
                        Ok(None) => {
                            // The catalog track finished: the publisher ended the broadcast. Let
                            // the readers drain what the tracks still hold.
                            while readers.join_next().await.is_some() {}
                            return Ended::Finished;
                        }
                        Err(err) => return Ended::Lost(err.into()),
                    };
                    self.stats.set_catalog(&catalog);
                    let clock = catalog.clock();
                    let mut wanted = Vec::new();
                    for (name, config) in catalog.video_renditions() {
                        match SampleReader::video(&broadcast, name, config, self.latency) {
                            Ok(reader) => {
                                let caps = caps::video_caps(&reader.config().codec, reader.config().description.as_ref(), config);
                                wanted.push((name.clone(), true, reader, caps));
                            }
                            Err(err) => self.log_info(format!("{name}: skipped: {err}")),
                        }
                    }
                    for (name, config) in catalog.audio_renditions() {
                        match SampleReader::audio(&broadcast, name, config, self.latency) {
                            Ok(reader) => {
                                let caps = caps::audio_caps(&reader.config().codec, reader.config().description.as_ref(), config);
                                wanted.push((name.clone(), false, reader, caps));
                            }
                            Err(err) => self.log_info(format!("{name}: skipped: {err}")),
                        }
                    }
                    // Renditions gone from the catalog end.
                    let names: Vec<String> = wanted.iter().map(|w| w.0.clone()).collect();
                    running.retain(|name, handle| {
                        let keep = names.contains(name);
                        if !keep {
                            handle.abort();
                            if let Some(output) = lock(&self.outputs).get(name) {
                                let _ = output.appsrc.end_of_stream();
                            }
                        }
                        keep
                    });
                    for (name, video, reader, caps) in wanted {
                        if running.contains_key(&name) {
                            continue;
                        }
                        let Some(caps) = caps else {
                            self.log_info(format!("{name}: no GStreamer caps for {}", reader.config().codec));
                            continue;
                        };
                        let Some(appsrc) = self.output(&name, video, caps) else {
                            continue;
                        };
                        let pump = Pump {
                            element: self.element.clone(),
                            appsrc,
                            timing: self.timing.clone(),
                            clock,
                            e2e_latency_ms: video.then(|| self.e2e_latency_ms.clone()),
                            skipped: self.skipped.clone(),
                        };
                        let task_name = name.clone();
                        let handle = readers.spawn(async move { (task_name, pump.run(reader).await) });
                        running.insert(name, handle);
                    }
                    if let Some(element) = self.element.upgrade() {
                        element.no_more_pads();
                    }
                }
                Some(joined) = readers.join_next() => {
                    match joined {
                        Ok((name, Ok(()))) => {
                            running.remove(&name);
                            if let Some(output) = lock(&self.outputs).get(&name) {
                                let _ = output.appsrc.end_of_stream();
                            }
                        }
                        // A read failed: the session (or the broadcast) went away.
                        Ok((name, Err(err))) => return Ended::Lost(anyhow::anyhow!("{name}: {err}")),
                        Err(_) => {} // aborted: removed from the catalog
                    }
                }
            }
        }
    }

    /// The appsrc of rendition `name`, made (with its ghost pad) on first use; its caps are
    /// updated if the rendition changed.
    fn output(&self, name: &str, video: bool, caps: gst::Caps) -> Option<gst_app::AppSrc> {
        let element = self.element.upgrade()?;
        let mut outputs = lock(&self.outputs);
        if let Some(output) = outputs.get_mut(name) {
            if output.caps != caps {
                output.appsrc.set_caps(Some(&caps));
                output.caps = caps;
            }
            return Some(output.appsrc.clone());
        }
        let latency = gst::ClockTime::from_nseconds(self.latency.as_nanos() as u64);
        let appsrc = gst_app::AppSrc::builder()
            .name(format!("appsrc_{name}"))
            .caps(&caps)
            .is_live(true)
            .format(gst::Format::Time)
            .do_timestamp(false)
            .min_latency(latency.nseconds() as i64)
            .max_bytes(MAX_QUEUED_BYTES)
            .leaky_type(gst_app::AppLeakyType::Downstream)
            .handle_segment_change(true)
            .build();
        let counter = if video {
            &self.video_pads
        } else {
            &self.audio_pads
        };
        let pad_name = format!(
            "{}_{}",
            if video { "video" } else { "audio" },
            counter.fetch_add(1, Ordering::Relaxed)
        );
        let template = element.pad_template(if video { "video_%u" } else { "audio_%u" })?;
        if element.add(&appsrc).is_err() {
            return None;
        }
        let target = appsrc.static_pad("src")?;
        let ghost = gst::GhostPad::builder_from_template_with_target(&template, &target)
            .ok()?
            .name(pad_name.as_str())
            .build();
        let _ = ghost.set_active(true);
        if element.add_pad(&ghost).is_err() {
            return None;
        }
        let _ = appsrc.sync_state_with_parent();
        gst::info!(CAT, obj = element, "{name} on pad {pad_name}: {caps}");
        outputs.insert(
            name.to_string(),
            Output {
                appsrc: appsrc.clone(),
                caps,
            },
        );
        Some(appsrc)
    }
}

/// Pushes one rendition's samples into its appsrc.
struct Pump {
    element: glib::WeakRef<super::HangSrc>,
    appsrc: gst_app::AppSrc,
    timing: Arc<Timing>,
    /// The catalog's wall-clock anchor of media time 0 (µs since 2020), if any.
    clock: Option<u64>,
    e2e_latency_ms: Option<Arc<AtomicI64>>,
    skipped: Arc<AtomicU64>,
}

/// Caps of the reference timestamp meta carrying a sample's capture time (Unix epoch, ns).
const UNIX_TIMESTAMP_CAPS: &str = "timestamp/x-unix";

/// Seconds from the Unix epoch to 2020-01-01 (the origin of the catalog clock).
const EPOCH_2020_S: u64 = 1_577_836_800;

impl Pump {
    async fn run(self, mut reader: SampleReader) -> Result<(), hang::export::ExportError> {
        let unix_caps = gst::Caps::new_empty_simple(UNIX_TIMESTAMP_CAPS);
        let mut last_skipped = 0;
        let mut discont = true;
        let mut last_pts: Option<gst::ClockTime> = None;
        let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
        while let Some(frame) = reader.read().await? {
            let Some(element) = self.element.upgrade() else {
                return Ok(());
            };
            let now = element
                .current_running_time()
                .unwrap_or(gst::ClockTime::ZERO);
            let (pts, start) = self.timing.pts(frame.timestamp, now, self.clock);
            if segment.start() != Some(start) {
                segment.set_start(start);
                segment.set_time(start);
            }
            let skipped = reader.skipped();
            if skipped > last_skipped {
                self.skipped
                    .fetch_add(skipped - last_skipped, Ordering::Relaxed);
                last_skipped = skipped;
                discont = true;
            }
            let mut buffer = gst::Buffer::from_slice(frame.payload);
            {
                let buffer = buffer.get_mut().expect("a new buffer is writable");
                buffer.set_pts(pts);
                // Frames come in decode order with presentation times only. While those never
                // go back there is no reordering and the decode time is the same; a frame
                // presented before the last one (a B-frame) gets none, for parsers to work out.
                // Without any DTS, h264parse drops the PTS of every delta frame.
                if last_pts.is_none_or(|last| pts >= last) {
                    buffer.set_dts(pts);
                    last_pts = Some(pts);
                }
                // Each buffer is a whole access unit / temporal unit / audio frame: parsers
                // (h264parse with alignment=au) take MARKER as its end instead of waiting for
                // the next one's start.
                let mut flags = gst::BufferFlags::MARKER;
                if !frame.keyframe {
                    flags |= gst::BufferFlags::DELTA_UNIT;
                }
                if discont {
                    flags |= gst::BufferFlags::DISCONT;
                    discont = false;
                }
                buffer.set_flags(flags);
                if let Some(wall) = self.clock {
                    let captured_us = i128::from(wall) + i128::from(frame.timestamp);
                    let unix_ns = (captured_us + i128::from(EPOCH_2020_S) * 1_000_000) * 1000;
                    gst::ReferenceTimestampMeta::add(
                        buffer,
                        &unix_caps,
                        clock_time(unix_ns),
                        gst::ClockTime::NONE,
                    );
                    if let Some(latency) = &self.e2e_latency_ms {
                        let behind = hang::catalog::age_us(wall, frame.timestamp);
                        latency.store(behind / 1000, Ordering::Relaxed);
                    }
                }
            }
            let sample = gst::Sample::builder()
                .buffer(&buffer)
                .segment(&segment)
                .build();
            match self.appsrc.push_sample(&sample) {
                Ok(_) => {}
                // Stopping, or the output was ended: nothing more to push.
                Err(gst::FlowError::Flushing) | Err(gst::FlowError::Eos) => return Ok(()),
                Err(err) => {
                    gst::warning!(CAT, obj = element, "push failed: {err:?}");
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// A clock time from nanoseconds computed from the publisher's timestamps, clamped to the range
/// GStreamer takes (`u64::MAX` is `GST_CLOCK_TIME_NONE`, and `from_nseconds` panics on it).
fn clock_time(ns: i128) -> gst::ClockTime {
    gst::ClockTime::from_nseconds(ns.clamp(0, i128::from(u64::MAX - 1)) as u64)
}

/// Resolves when the element tells the task to stop.
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}
