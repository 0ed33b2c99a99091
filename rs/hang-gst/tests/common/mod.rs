//! Shared by the GStreamer plugin's integration tests: our relay and `hang` CLI as child
//! processes (from the same target directory), the plugin registered in this process, and
//! pipelines that are stopped on drop and report what reached their sinks.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use gst::prelude::*;

pub use test_support::relay::{RelayAddrs, RelayOptions};
pub use test_support::Run;

/// The target directory's profile folder (`target/debug`): the test binary lives in its `deps/`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// A directory holding only this build's plugin library, for `GST_PLUGIN_PATH`: the copy in
/// `target/<profile>` is only refreshed by `cargo build` (not by `cargo test`, which builds it in
/// `deps/`), and GStreamer keeps the first of two plugin files with the same name.
pub fn plugin_dir(run: &Run) -> PathBuf {
    let built = target_dir().join("deps").join("libgsthang.so");
    assert!(built.exists(), "{} is missing", built.display());
    let dir = run.path("plugins");
    std::fs::create_dir_all(&dir).expect("plugin directory");
    std::fs::copy(&built, dir.join("libgsthang.so")).expect("copy the plugin");
    dir
}

/// A binary of the workspace (`moq-relay`, `hang`), built by `cargo test --workspace`.
pub fn bin(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p moq-relay -p hang-cli` (cargo test --workspace does)",
        path.display()
    );
    path
}

/// Initialise GStreamer and register the plugin's elements in this process (once).
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer (scripts/test.sh installs it)");
        gsthang::plugin_register_static().expect("register the hang plugin");
    });
}

/// Start our relay (anonymous access) as child `name` with QUIC and HTTP on one port number:
/// `port`, or a free one, so its `http://` URL survives a restart on the same port.
pub fn start_relay(run: &mut Run, name: &str, port: Option<u16>) -> RelayAddrs {
    let options = RelayOptions::new().args(["--auth-public", ""]);
    let options = match port {
        Some(port) => options.on_port(port),
        None => options.shared_port(),
    };
    run.start_relay(name, &bin("moq-relay"), &options)
}

/// What reached a sink pad: each buffer's PTS, flags, and how far behind the wall clock its
/// capture time (the `timestamp/x-unix` reference meta hangsrc adds) was on arrival.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// PTS of every buffer, in arrival order.
    pub pts: Vec<gst::ClockTime>,
    /// Buffers flagged DELTA_UNIT.
    pub deltas: usize,
    /// Glass-to-glass latency of the buffers that carried a capture time.
    pub latency: Vec<Duration>,
    /// Whether EOS arrived.
    pub eos: bool,
}

/// A running pipeline, set to NULL on drop.
pub struct Pipeline {
    pub pipeline: gst::Pipeline,
    what: String,
}

impl Pipeline {
    /// `gst::parse::launch(description)`, set to PLAYING.
    pub fn start(description: &str) -> Self {
        let pipeline = Self::parse(description);
        pipeline.play();
        pipeline
    }

    /// `gst::parse::launch(description)`, not started: attach [`Self::watch`]es, then
    /// [`Self::play`], so they see every buffer.
    pub fn parse(description: &str) -> Self {
        init();
        let pipeline = gst::parse::launch(description)
            .unwrap_or_else(|e| panic!("{description}: {e}"))
            .downcast::<gst::Pipeline>()
            .expect("a pipeline");
        Self {
            pipeline,
            what: description.to_string(),
        }
    }

    /// Set to PLAYING; panics with the bus's errors if it fails.
    pub fn play(&self) {
        let (pipeline, description) = (&self.pipeline, &self.what);
        if let Err(err) = pipeline.set_state(gst::State::Playing) {
            let bus = pipeline.bus().expect("a bus");
            let errors: Vec<String> =
                std::iter::from_fn(|| bus.pop_filtered(&[gst::MessageType::Error]))
                    .filter_map(|msg| match msg.view() {
                        gst::MessageView::Error(e) => {
                            Some(format!("{} ({:?})", e.error(), e.debug()))
                        }
                        _ => None,
                    })
                    .collect();
            let _ = pipeline.set_state(gst::State::Null);
            panic!("{description}: cannot play: {err:?}: {errors:?}");
        }
    }

    /// The element named `name`.
    pub fn element(&self, name: &str) -> gst::Element {
        self.pipeline
            .by_name(name)
            .unwrap_or_else(|| panic!("no element {name} in {}", self.what))
    }

    /// Record what reaches the sink pad of element `name` (e.g. a fakesink).
    pub fn watch(&self, name: &str) -> Arc<Mutex<Seen>> {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let pad = self.element(name).static_pad("sink").expect("a sink pad");
        let record = seen.clone();
        let unix = gst::Caps::new_empty_simple("timestamp/x-unix");
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |_, info| {
                let mut seen = record.lock().unwrap();
                match &info.data {
                    Some(gst::PadProbeData::Buffer(buffer)) => {
                        if let Some(pts) = buffer.pts() {
                            seen.pts.push(pts);
                        }
                        if buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                            seen.deltas += 1;
                        }
                        if let Some(meta) = buffer.meta::<gst::ReferenceTimestampMeta>() {
                            if meta.reference().is_subset(&unix) {
                                let now = std::time::SystemTime::now()
                                    .duration_since(std::time::UNIX_EPOCH)
                                    .unwrap();
                                let captured = Duration::from_nanos(meta.timestamp().nseconds());
                                seen.latency.push(now.saturating_sub(captured));
                            }
                        }
                    }
                    Some(gst::PadProbeData::Event(event))
                        if event.type_() == gst::EventType::Eos =>
                    {
                        seen.eos = true;
                    }
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );
        seen
    }

    /// Wait until EOS or an error on the bus; panics on an error or after `within`.
    pub fn wait_eos(&self, within: Duration) {
        let bus = self.pipeline.bus().expect("a bus");
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{}: no EOS within {within:?}", self.what);
            let Some(msg) = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(left.as_millis() as u64),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            ) else {
                continue;
            };
            match msg.view() {
                gst::MessageView::Eos(_) => return,
                gst::MessageView::Error(err) => {
                    panic!("{}: {} ({:?})", self.what, err.error(), err.debug())
                }
                _ => {}
            }
        }
    }

    /// Panics if the bus holds an error.
    pub fn assert_no_error(&self) {
        let bus = self.pipeline.bus().expect("a bus");
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(err) = msg.view() {
                panic!("{}: {} ({:?})", self.what, err.error(), err.debug());
            }
        }
    }

    /// A property of element `name`.
    pub fn get<V: for<'a> gst::glib::value::FromValue<'a> + 'static>(
        &self,
        name: &str,
        property: &str,
    ) -> V {
        self.element(name).property::<V>(property)
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Poll `done` every 20 ms until it returns `Some`, or panic with `what` after `within`.
pub fn wait_for<T>(what: &str, within: Duration, mut done: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = done() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The broadcasts the relay lists on `/announced`.
pub fn announced(relay: &RelayAddrs) -> Vec<String> {
    test_support::http::get_blocking(relay.http, "/announced")
        .map(|r| r.body.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The `p`-th percentile (0..=100) of `values` (sorted copy), or zero when empty.
pub fn percentile(values: &[Duration], p: usize) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() - 1) * p / 100]
}
