//! The `hangsink` implementation.
//!
//! Every request pad is a ghost of an `appsink` (sync on the clock by default, like any sink), whose
//! samples become frames of one rendition ([`crate::caps::Stream`]). The catalog is published once
//! every pad knows its codec, and again whenever a pad is added or changes format. A task on the
//! shared runtime keeps a session with the relay, announcing the broadcast on each new session.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use moq_lite::{Metric, OriginProducer};
use tokio::sync::watch;

use crate::caps::{self, Config, Stream};
use crate::client::{self, Settings, Stats};

static CAT: std::sync::LazyLock<gst::DebugCategory> = std::sync::LazyLock::new(|| {
    gst::DebugCategory::new("hangsink", gst::DebugColorFlags::empty(), Some("hang sink"))
});

/// How long the broadcast's last frames get to leave after EOS before the session closes.
const LINGER: Duration = Duration::from_millis(500);

/// One requested pad.
struct PadState {
    /// The caps `stream` was made from, to notice a renegotiation.
    caps: Option<gst::Caps>,
    stream: Option<Stream>,
    track: Option<hang::TrackProducer>,
    config: Option<Config>,
    eos: bool,
}

/// The broadcast while the element is PAUSED or PLAYING.
struct Running {
    broadcast: hang::BroadcastProducer,
    origin: OriginProducer,
    path: moq_lite::Path,
    published: bool,
    /// Tells the session task to stop: `true` = finished (EOS), linger first.
    stop: watch::Sender<Option<bool>>,
    /// Disconnects when the session task has ended (a std channel: the element's threads may be
    /// inside some other tokio runtime, where blocking on ours would panic).
    done: Option<std::sync::mpsc::Receiver<()>>,
}

#[derive(Default)]
struct State {
    pads: BTreeMap<String, PadState>,
    next_pad: u32,
    running: Option<Running>,
}

/// The `hangsink` element.
#[derive(Default)]
pub struct HangSink {
    settings: Mutex<Settings>,
    sync: Mutex<Option<bool>>,
    state: Mutex<State>,
    stats: Arc<Stats>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[glib::object_subclass]
impl ObjectSubclass for HangSink {
    const NAME: &'static str = "GstHangSink";
    type Type = super::HangSink;
    type ParentType = gst::Bin;
}

impl ObjectImpl for HangSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: std::sync::LazyLock<Vec<glib::ParamSpec>> = std::sync::LazyLock::new(
            || {
                let mut properties = client::shared_properties(client::Direction::Publish);
                properties.push(
                    glib::ParamSpecBoolean::builder("sync")
                        .nick("Sync")
                        .blurb("Send each buffer at its running time on the pipeline clock (a file plays out in real time); false sends buffers as soon as they arrive")
                        .default_value(true)
                        .mutable_ready()
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
            "sync" => {
                let sync: bool = value.get().expect("type checked upstream");
                *lock(&self.sync) = Some(sync);
                for child in self.obj().children() {
                    if child.has_property("sync") {
                        child.set_property("sync", sync);
                    }
                }
            }
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
            "sync" => lock(&self.sync).unwrap_or(true).to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl GstObjectImpl for HangSink {}

impl ElementImpl for HangSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: std::sync::LazyLock<gst::subclass::ElementMetadata> = std::sync::LazyLock::new(
            || {
                gst::subclass::ElementMetadata::new(
                "hang sink",
                "Sink/Network",
                "Publishes H.264, H.265, AV1, VP8, VP9, Opus and AAC streams as a hang broadcast through a moq relay",
                "moq developers",
            )
            },
        );
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: std::sync::LazyLock<Vec<gst::PadTemplate>> =
            std::sync::LazyLock::new(|| {
                vec![gst::PadTemplate::new(
                    "sink_%u",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &caps::sink_caps(),
                )
                .expect("valid pad template")]
            });
        TEMPLATES.as_ref()
    }

    fn request_new_pad(
        &self,
        templ: &gst::PadTemplate,
        name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst::Pad> {
        let mut state = lock(&self.state);
        let name = match name {
            Some(name) if name.starts_with("sink_") && !name.contains('%') => name.to_string(),
            _ => {
                let name = format!("sink_{}", state.next_pad);
                state.next_pad += 1;
                name
            }
        };
        if state.pads.contains_key(&name) {
            gst::warning!(CAT, imp = self, "pad {name} exists already");
            return None;
        }
        let sync = lock(&self.sync).unwrap_or(true);
        let appsink = gst_app::AppSink::builder()
            .name(format!("appsink_{name}"))
            .caps(&caps::sink_caps())
            .sync(sync)
            .max_buffers(64)
            .build();
        let weak = self.obj().downgrade();
        let pad_name = name.clone();
        let eos_weak = weak.clone();
        let eos_name = name.clone();
        appsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let Some(element) = weak.upgrade() else {
                        return Err(gst::FlowError::Flushing);
                    };
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    element.imp().sample(&pad_name, &sample)
                })
                .eos(move |_| {
                    if let Some(element) = eos_weak.upgrade() {
                        element.imp().eos(&eos_name);
                    }
                })
                .build(),
        );
        // A queue per pad gives each input its own streaming thread: one demuxer feeding
        // several pads would otherwise block in the first appsink's preroll, and the others
        // would never preroll.
        let queue = gst::ElementFactory::make("queue")
            .name(format!("queue_{name}"))
            .build()
            .ok()?;
        let obj = self.obj();
        obj.add_many([&queue, appsink.upcast_ref()]).ok()?;
        queue.link(&appsink).ok()?;
        let target = queue.static_pad("sink")?;
        let ghost = gst::GhostPad::builder_from_template_with_target(templ, &target)
            .ok()?
            .name(name.as_str())
            .build();
        state.pads.insert(
            name.clone(),
            PadState {
                caps: None,
                stream: None,
                track: None,
                config: None,
                eos: false,
            },
        );
        drop(state);
        if obj.current_state() > gst::State::Null {
            ghost.set_active(true).ok()?;
        }
        obj.add_pad(&ghost).ok()?;
        appsink.sync_state_with_parent().ok()?;
        queue.sync_state_with_parent().ok()?;
        gst::info!(CAT, imp = self, "pad {name} added");
        Some(ghost.upcast())
    }

    fn release_pad(&self, pad: &gst::Pad) {
        let _runtime = client::runtime().enter();
        let name = pad.name().to_string();
        let obj = self.obj();
        for child in [format!("queue_{name}"), format!("appsink_{name}")] {
            if let Some(child) = obj.by_name(&child) {
                let _ = child.set_state(gst::State::Null);
                let _ = obj.remove(&child);
            }
        }
        let _ = obj.remove_pad(pad);
        let mut state = lock(&self.state);
        if let Some(mut pad) = state.pads.remove(&name) {
            if let Some(track) = pad.track.as_mut() {
                track.finish();
            }
            if let (Some(running), Some(track)) = (state.running.as_mut(), pad.track.as_ref()) {
                running.broadcast.remove(track.name());
                if running.published {
                    let _ = running.broadcast.publish_catalog();
                }
            }
        }
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        match transition {
            gst::StateChange::NullToReady => {
                let settings = lock(&self.settings).clone();
                if let Err(err) = settings.validate() {
                    gst::element_imp_error!(self, gst::ResourceError::Settings, ["{err:#}"]);
                    return Err(gst::StateChangeError);
                }
            }
            gst::StateChange::ReadyToPaused => {
                if let Err(err) = self.start() {
                    gst::element_imp_error!(self, gst::ResourceError::OpenWrite, ["{err:#}"]);
                    return Err(gst::StateChangeError);
                }
            }
            _ => {}
        }
        let result = self.parent_change_state(transition);
        if transition == gst::StateChange::PausedToReady {
            self.stop();
        }
        result
    }
}

impl BinImpl for HangSink {}

impl HangSink {
    /// Going to PAUSED: a new broadcast and the session task.
    fn start(&self) -> anyhow::Result<()> {
        let _runtime = client::runtime().enter();
        let settings = lock(&self.settings).clone();
        let (url, path) = settings.validate()?;
        let client = settings.client().context("cannot create the QUIC client")?;
        let origin = OriginProducer::new();
        let (stop, stopped) = watch::channel(None);
        let (done_tx, done) = std::sync::mpsc::channel();
        let element = self.obj().downgrade();
        let stats = self.stats.clone();
        let announced = origin.clone();
        client::runtime().spawn(async move {
            session_task(element, client, url, announced, stats, stopped).await;
            drop(done_tx);
        });
        let mut state = lock(&self.state);
        for pad in state.pads.values_mut() {
            pad.track = None;
            pad.config = None;
            pad.eos = false;
        }
        state.running = Some(Running {
            broadcast: hang::BroadcastProducer::new(),
            origin,
            path,
            published: false,
            stop,
            done: Some(done),
        });
        Ok(())
    }

    /// Back to READY: end the broadcast and the session.
    fn stop(&self) {
        let _runtime = client::runtime().enter();
        let running = lock(&self.state).running.take();
        if let Some(running) = running {
            running.broadcast.finish();
            let _ = running.stop.send(Some(false));
            // The task hangs up within a bounded time (see session_task); wait for it so the
            // next start does not race it.
            if let Some(done) = running.done {
                let _ = done.recv_timeout(Duration::from_secs(3));
            }
        }
    }

    /// One buffer from pad `name`'s appsink.
    fn sample(&self, name: &str, sample: &gst::Sample) -> Result<gst::FlowSuccess, gst::FlowError> {
        // moq-lite's model spawns its cleanup tasks on the current runtime: ours, on this
        // GStreamer streaming thread.
        let _runtime = client::runtime().enter();
        let caps = sample.caps().ok_or(gst::FlowError::NotNegotiated)?;
        let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
        let segment = sample
            .segment()
            .and_then(|s| s.downcast_ref::<gst::ClockTime>())
            .ok_or(gst::FlowError::Error)?;
        let Some(running) = buffer
            .pts()
            .or(buffer.dts())
            .and_then(|ts| segment.to_running_time(ts))
        else {
            gst::warning!(
                CAT,
                imp = self,
                "{name}: a buffer without a timestamp in the segment, dropped"
            );
            return Ok(gst::FlowSuccess::Ok);
        };
        let payload = buffer
            .map_readable()
            .map(|m| Bytes::copy_from_slice(&m))
            .map_err(|_| gst::FlowError::Error)?;
        let delta = buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);

        let mut guard = lock(&self.state);
        let state = &mut *guard;
        let Some(pad) = state.pads.get_mut(name) else {
            return Err(gst::FlowError::Flushing);
        };
        let Some(running_state) = state.running.as_mut() else {
            return Err(gst::FlowError::Flushing);
        };
        // A new format: a new stream (the caps are shared, so a pointer compare finds changes cheaply).
        if pad.caps.as_ref().map(|c| c.as_ref()) != Some(caps) {
            match Stream::from_caps(caps) {
                Ok(stream) => {
                    pad.stream = Some(stream);
                    pad.caps = Some(caps.to_owned());
                }
                Err(err) => {
                    drop(guard);
                    gst::element_imp_error!(self, gst::StreamError::Format, ["{name}: {err}"]);
                    return Err(gst::FlowError::NotNegotiated);
                }
            }
        }
        let stream = pad.stream.as_mut().ok_or(gst::FlowError::Error)?;
        let Some(frame) = stream.frame(payload, running.useconds(), delta) else {
            gst::debug!(CAT, imp = self, "{name}: waiting for a keyframe");
            return Ok(gst::FlowSuccess::Ok);
        };
        let config = stream.config().cloned();
        if config != pad.config {
            match (pad.track.as_ref(), &config) {
                // The same kind in a new format (size, profile): the same track, its catalog
                // entry updated, so viewers go on without resubscribing.
                (Some(track), Some(new)) if same_kind(pad.config.as_ref(), new) => {
                    let catalog = running_state.broadcast.catalog_mut();
                    let rendition = track.name().to_string();
                    match new {
                        Config::Video(video) => {
                            if let Some(section) = catalog.video.as_mut() {
                                section.renditions.insert(rendition, video.clone());
                            }
                        }
                        Config::Audio(audio) => {
                            if let Some(section) = catalog.audio.as_mut() {
                                section.renditions.insert(rendition, audio.clone());
                            }
                        }
                    }
                }
                // The first keyframe, or audio turned video: a new rendition.
                _ => {
                    if let Some(mut old) = pad.track.take() {
                        old.finish();
                        running_state.broadcast.remove(old.name());
                    }
                    pad.track = config.clone().map(|config| match config {
                        Config::Video(video) => running_state.broadcast.add_video(video),
                        Config::Audio(audio) => running_state.broadcast.add_audio(audio),
                    });
                }
            }
            pad.config = config;
            if let Some(track) = &pad.track {
                gst::info!(
                    CAT,
                    imp = self,
                    "{name}: rendition {} ({:?})",
                    track.name(),
                    pad.config
                );
            }
            self.maybe_publish(state, Some(frame.timestamp));
        }
        let pad = state.pads.get_mut(name).ok_or(gst::FlowError::Flushing)?;
        if let Some(track) = pad.track.as_mut() {
            if let Err(err) = track.write(frame) {
                gst::warning!(CAT, imp = self, "{name}: frame dropped: {err}");
            }
        }
        Ok(gst::FlowSuccess::Ok)
    }

    /// Publish (or republish) the catalog once every pad knows its rendition or has ended.
    fn maybe_publish(&self, state: &mut State, first_timestamp: Option<u64>) {
        let ready = state.pads.values().all(|p| p.track.is_some() || p.eos);
        let Some(running) = state.running.as_mut() else {
            return;
        };
        if !ready && !running.published {
            return;
        }
        if !running.published {
            // Anchor media time (running time, µs) to the wall clock, as `hang publish` does.
            let now = self
                .obj()
                .current_running_time()
                .map(|t| t.useconds())
                .or(first_timestamp)
                .unwrap_or(0);
            let wall = hang::catalog::wall_now_us().saturating_sub(now);
            running.broadcast.catalog_mut().set_clock(wall);
        }
        if let Err(err) = running.broadcast.publish_catalog() {
            gst::warning!(CAT, imp = self, "cannot publish the catalog: {err}");
            return;
        }
        self.stats.set_catalog(running.broadcast.catalog());
        if !running.published {
            running.published = true;
            if let Err(err) = running
                .origin
                .publish_broadcast(&running.path, running.broadcast.inner().consume())
            {
                gst::warning!(CAT, imp = self, "cannot publish the broadcast: {err}");
            }
            gst::info!(CAT, imp = self, "publishing {}", running.path);
        }
    }

    /// Pad `name` reached EOS; after the last, end the broadcast and let the session close.
    fn eos(&self, name: &str) {
        let _runtime = client::runtime().enter();
        let mut guard = lock(&self.state);
        let state = &mut *guard;
        if let Some(pad) = state.pads.get_mut(name) {
            pad.eos = true;
            if let Some(track) = pad.track.as_mut() {
                track.finish();
            }
        }
        let all = state.pads.values().all(|p| p.eos);
        if !all {
            self.maybe_publish(state, None);
            return;
        }
        let Some(running) = state.running.as_mut() else {
            return;
        };
        running.broadcast.finish();
        let _ = running.stop.send(Some(true));
        gst::info!(CAT, imp = self, "EOS: broadcast finished");
        // Hold the EOS until the session has closed (bounded): an application that stops the
        // pipeline on EOS must not cut off the last frames.
        let done = running.done.take();
        drop(guard);
        if let Some(done) = done {
            let _ = done.recv_timeout(LINGER + Duration::from_secs(3));
        }
    }
}

/// Keep a session with the relay until told to stop: dial, announce the origin's broadcast, and
/// on loss dial again after a backoff.
async fn session_task(
    element: glib::WeakRef<super::HangSink>,
    client: moq_native::QuicClient,
    url: url::Url,
    origin: OriginProducer,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<Option<bool>>,
) {
    let mut reconnect = moq_native::Reconnect::new(&moq_native::ReconnectConfig::default());
    loop {
        let opened = tokio::select! {
            _ = stopped(&mut stop) => return,
            res = client::open(&client, &url, |c| c.publish(origin.consume())) => res,
        };
        let lost = match opened {
            Ok(session) => {
                let up = reconnect.connected();
                if let Some(element) = element.upgrade() {
                    gst::info!(
                        CAT,
                        obj = element,
                        "connected to {url} ({})",
                        session.version()
                    );
                }
                let lost = tokio::select! {
                    err = session.closed() => anyhow::anyhow!("session closed: {err}"),
                    _ = stats.track(&session, Metric::BytesOut) => unreachable!("stats never end"),
                    finished = stopped(&mut stop) => {
                        if finished {
                            tokio::time::sleep(LINGER).await;
                        }
                        client::hang_up(&client, &session).await;
                        return;
                    }
                };
                (lost, Some(up))
            }
            Err(err) => (err, None),
        };
        if let Some(element) = element.upgrade() {
            gst::warning!(CAT, obj = element, "{:#}; reconnecting", lost.0);
        }
        let delay = match reconnect.retry(lost.0, lost.1) {
            Ok(delay) => delay,
            Err(_) => return,
        };
        tokio::select! {
            _ = stopped(&mut stop) => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Resolves when the element tells the task to stop: whether the broadcast finished (EOS).
async fn stopped(stop: &mut watch::Receiver<Option<bool>>) -> bool {
    match stop.wait_for(Option::is_some).await {
        Ok(value) => *value == Some(true),
        Err(_) => false,
    }
}

/// Whether `old` (if any) and `new` are both video or both audio.
fn same_kind(old: Option<&Config>, new: &Config) -> bool {
    matches!(
        (old, new),
        (Some(Config::Video(_)), Config::Video(_)) | (Some(Config::Audio(_)), Config::Audio(_))
    )
}
