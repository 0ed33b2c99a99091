//! What `hangsink` and `hangsrc` share: the tokio runtime, the connection settings (the element
//! properties), the dial, and the statistics behind the read-only properties.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context;
use gst::glib;
use gst::prelude::*;
use moq_lite::{Metric, Session};
use url::Url;

/// The tokio runtime every element's network tasks run on: two worker threads, started on first
/// use and kept for the life of the process (GStreamer may load and unload elements many times).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hang-gst")
            .enable_all()
            .build()
            .expect("cannot start the tokio runtime (threads or timers unavailable)")
    })
}

/// Which way an element's media goes: words the shared properties' descriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `hangsink`.
    Publish,
    /// `hangsrc`.
    Play,
}

/// The properties `hangsink` and `hangsrc` share: where to connect and how to trust the relay
/// ([`Settings`]), and the read-only session statistics ([`Stats`]).
pub fn shared_properties(direction: Direction) -> Vec<glib::ParamSpec> {
    let (bitrate, catalog) = match direction {
        Direction::Publish => (
            "Bits per second sent to the relay over the last second (read-only)",
            "The catalog JSON last published (renditions, codecs, clock), empty before the first (read-only)",
        ),
        Direction::Play => (
            "Bits per second received from the relay over the last second (read-only)",
            "The broadcast's newest catalog JSON (renditions, codecs, clock), empty before the first (read-only)",
        ),
    };
    vec![
        glib::ParamSpecString::builder("url")
            .nick("Relay URL")
            .blurb("Relay URL: https://host:port/path (WebTransport), http://... (pin the certificate fingerprint the relay serves; local development), moql:// (raw QUIC), ws:// or wss:// (WebSocket), moql+tcp://")
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("broadcast")
            .nick("Broadcast")
            .blurb("Broadcast name, relative to the URL path (e.g. camera.hang)")
            .mutable_ready()
            .build(),
        glib::ParamSpecBoolean::builder("tls-disable-verify")
            .nick("Disable TLS verification")
            .blurb("Accept any server certificate (danger: anyone on the path can impersonate the relay)")
            .default_value(false)
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("tls-fingerprint")
            .nick("TLS fingerprint")
            .blurb("Accept a server certificate with this hex SHA-256 fingerprint, whatever its issuer, names or dates")
            .mutable_ready()
            .build(),
        glib::ParamSpecBoolean::builder("connected")
            .nick("Connected")
            .blurb("Whether a session with the relay is up (read-only)")
            .read_only()
            .build(),
        glib::ParamSpecString::builder("version")
            .nick("Version")
            .blurb("moq-lite version of the current or last session, empty before the first (read-only)")
            .read_only()
            .build(),
        glib::ParamSpecUInt64::builder("bitrate")
            .nick("Bitrate")
            .blurb(bitrate)
            .read_only()
            .build(),
        glib::ParamSpecUInt64::builder("connects")
            .nick("Connects")
            .blurb("Sessions opened so far: 1 plus the reconnections (read-only)")
            .read_only()
            .build(),
        glib::ParamSpecString::builder("catalog")
            .nick("Catalog")
            .blurb(catalog)
            .read_only()
            .build(),
    ]
}

/// Where to connect and how to trust the server: the `url`, `broadcast`, `tls-disable-verify` and
/// `tls-fingerprint` properties.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Relay URL (`https://`, `http://` with the served fingerprint pinned, `moql://`, `ws://`,
    /// `wss://`, `moql+tcp://`).
    pub url: Option<String>,
    /// Broadcast name relative to the URL path.
    pub broadcast: Option<String>,
    /// Accept any server certificate.
    pub tls_disable_verify: bool,
    /// Accept a server certificate with this hex SHA-256 fingerprint.
    pub tls_fingerprint: Option<String>,
}

impl Settings {
    /// Set shared property `name` (see [`shared_properties`]); false when it is not one of these.
    /// GObject has checked the value's type against the property's.
    pub fn set(&mut self, name: &str, value: &glib::Value) -> bool {
        match name {
            "url" => self.url = value.get().expect("type checked upstream"),
            "broadcast" => self.broadcast = value.get().expect("type checked upstream"),
            "tls-disable-verify" => {
                self.tls_disable_verify = value.get().expect("type checked upstream")
            }
            "tls-fingerprint" => self.tls_fingerprint = value.get().expect("type checked upstream"),
            _ => return false,
        }
        true
    }

    /// The value of shared property `name`, if it is one of these.
    pub fn get(&self, name: &str) -> Option<glib::Value> {
        Some(match name {
            "url" => self.url.to_value(),
            "broadcast" => self.broadcast.to_value(),
            "tls-disable-verify" => self.tls_disable_verify.to_value(),
            "tls-fingerprint" => self.tls_fingerprint.to_value(),
            _ => return None,
        })
    }

    /// Check the settings before going to PAUSED: the URL parses, the broadcast is a valid path.
    pub fn validate(&self) -> anyhow::Result<(Url, moq_lite::Path)> {
        let url = self
            .url
            .as_deref()
            .context("the `url` property is not set")?;
        let url = Url::parse(url).with_context(|| format!("invalid url {url:?}"))?;
        let name = self
            .broadcast
            .as_deref()
            .context("the `broadcast` property is not set")?;
        let path =
            moq_lite::Path::new(name).with_context(|| format!("invalid broadcast {name:?}"))?;
        Ok((url, path))
    }

    /// The client endpoint, with the client binaries' QUIC defaults (a vanished relay is noticed
    /// within 3 s).
    pub fn client(&self) -> anyhow::Result<moq_native::QuicClient> {
        let mut config = moq_native::QuicClientConfig {
            disable_verify: self.tls_disable_verify,
            fingerprints: self.tls_fingerprint.iter().cloned().collect(),
            ..Default::default()
        };
        config.quic.keep_alive_ms = moq_native::CLIENT_KEEP_ALIVE_MS;
        config.quic.idle_timeout_ms = moq_native::CLIENT_IDLE_TIMEOUT_MS;
        // The endpoint's socket registers with the runtime that will drive it.
        let _runtime = runtime().enter();
        Ok(moq_native::QuicClient::new(config)?)
    }
}

/// Dial `url` and set up a moq-lite session with `role` (publish or subscribe an origin).
pub async fn open(
    client: &moq_native::QuicClient,
    url: &Url,
    role: impl FnOnce(moq_lite::Client) -> moq_lite::Client,
) -> anyhow::Result<Session> {
    let connection = client
        .connect_any(url.clone())
        .await
        .with_context(|| format!("cannot connect to {url}"))?;
    let session = role(moq_lite::Client::new().with_setup_path(connection.setup_path))
        .connect(connection.session)
        .await
        .with_context(|| format!("moq session with {url} failed"))?;
    Ok(session)
}

/// Close `session` cleanly and wait (at most 2 s) until the close has left, so the relay ends our
/// broadcasts and subscriptions at once instead of at its idle timeout.
pub async fn hang_up(client: &moq_native::QuicClient, session: &Session) {
    session.close(moq_lite::Error::Cancel);
    if tokio::time::timeout(Duration::from_secs(2), client.wait_idle())
        .await
        .is_err()
    {
        tracing::warn!("the connection did not finish closing");
    }
}

/// The numbers behind the read-only properties; shared between an element and its tasks.
#[derive(Debug, Default)]
pub struct Stats {
    connected: AtomicBool,
    version: Mutex<String>,
    bitrate: AtomicU64,
    connects: AtomicU64,
    catalog: Mutex<String>,
}

impl Stats {
    /// A new set, all zero.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Whether a session is up.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// The moq-lite version of the current (or last) session, empty before the first.
    pub fn version(&self) -> String {
        self.version.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Bits per second over the last second (sent by a sink, received by a source).
    pub fn bitrate(&self) -> u64 {
        self.bitrate.load(Ordering::Relaxed)
    }

    /// Sessions opened so far (1 + reconnections).
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    /// Keep the catalog last published or received.
    pub fn set_catalog(&self, catalog: &hang::catalog::Catalog) {
        if let (Ok(json), Ok(mut slot)) = (catalog.to_bytes(), self.catalog.lock()) {
            *slot = String::from_utf8_lossy(&json).into_owned();
        }
    }

    /// The value of read-only shared property `name`, if it is one of these.
    pub fn get(&self, name: &str) -> Option<glib::Value> {
        Some(match name {
            "connected" => self.connected().to_value(),
            "version" => self.version().to_value(),
            "bitrate" => self.bitrate().to_value(),
            "connects" => self.connects().to_value(),
            "catalog" => self
                .catalog
                .lock()
                .map(|c| c.clone())
                .unwrap_or_default()
                .to_value(),
            _ => return None,
        })
    }

    /// Note a new session, then keep the bitrate up to date (bytes `direction`, once a second)
    /// until the returned future is dropped; it never ends by itself.
    pub async fn track(&self, session: &Session, metric: Metric) {
        self.connects.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut version) = self.version.lock() {
            *version = session.version().to_string();
        }
        self.connected.store(true, Ordering::Relaxed);
        let _down = Disconnected(self);
        let stats = session.stats().clone();
        let mut last = stats.get(metric);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            tick.tick().await;
            let now = stats.get(metric);
            self.bitrate
                .store(now.saturating_sub(last) * 8, Ordering::Relaxed);
            last = now;
        }
    }
}

/// Marks the stats disconnected when the tracking future is dropped.
struct Disconnected<'a>(&'a Stats);

impl Drop for Disconnected<'_> {
    fn drop(&mut self) {
        self.0.connected.store(false, Ordering::Relaxed);
        self.0.bitrate.store(0, Ordering::Relaxed);
    }
}
