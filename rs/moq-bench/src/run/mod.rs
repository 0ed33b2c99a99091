//! One load run against one relay URL: a publisher and/or N subscriber sessions.
//!
//! A run goes through four phases, one function each: [`prepare`] (clients, counters, the
//! relay's baseline), [`start_subscribers`] (connect and subscribe, a bounded number at a time),
//! [`measure`] (publish for `--duration`, a report line per second) and [`drain`] (let the last
//! frames arrive, close every session). The roles live in their own modules: the publisher
//! ([`publisher`]), one subscriber ([`subscriber`]), the counters they share ([`shared`]) and
//! what is printed ([`report`]).

mod publisher;
mod report;
mod shared;
mod subscriber;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use moq_lite::{BroadcastProducer, Path, TrackProducer};
use serde_json::{json, Value};
use url::Url;

use crate::preset::Preset;
use crate::relay;
use crate::stats::{Histogram, Subscriber};
use publisher::{publish_churn, publish_frames, start_publisher, Publisher};
pub use report::print_summary;
use report::{fmt_opt, summary, tag, unix_ms, Report, SummaryInput};
use shared::{quantile, Shared};
use subscriber::Sub;

/// What this process does.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// One publisher and N subscribers, in this process.
    Both,
    /// Only the publisher (pair it with `--role subscribe` elsewhere, same `--broadcast`).
    Publish,
    /// Only N subscribers, waiting for `--broadcast` to be announced.
    Subscribe,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Both => "both",
            Role::Publish => "publish",
            Role::Subscribe => "subscribe",
        }
    }
}

/// The moq-lite version the load clients offer.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiteVersion {
    /// Our defaults (lite-05, -04, -03, then the compat SETUP for -02/-01); or --client-protocol.
    Auto,
    /// Only the compat SETUP (ALPN / WT protocol `moql`): lite-02, or lite-01 if that is all.
    #[value(name = "moq-lite-02")]
    Lite02,
    /// Only `moq-lite-03`.
    #[value(name = "moq-lite-03")]
    Lite03,
    /// Only `moq-lite-04`.
    #[value(name = "moq-lite-04")]
    Lite04,
    /// Only `moq-lite-05`.
    #[value(name = "moq-lite-05")]
    Lite05,
}

impl LiteVersion {
    /// The single protocol to offer, None = leave the client's list alone.
    fn protocol(self) -> Option<&'static str> {
        match self {
            LiteVersion::Auto => None,
            LiteVersion::Lite02 => Some("moql"),
            LiteVersion::Lite03 => Some("moq-lite-03"),
            LiteVersion::Lite04 => Some("moq-lite-04"),
            LiteVersion::Lite05 => Some("moq-lite-05"),
        }
    }
}

/// The load: what to run against a relay, shared by a plain run and `compare`.
#[derive(clap::Args, Debug, Clone)]
pub struct Load {
    /// A name for this load in the lines it prints on stderr (`compare --at-once` runs two at a
    /// time and names them A and B); also the summary's `label`. Not a flag.
    #[arg(skip)]
    pub label: Option<String>,

    /// Relay URL: `https://host:port/path` (WebTransport), `http://…` (pin the certificate
    /// fingerprint served over HTTP at the same port first, for local relays),
    /// `moql://host:port/path` (raw QUIC), `ws://` / `wss://` (QMux over a WebSocket to the
    /// relay's HTTP listener) or `moql+tcp://host:port/path` (QMux over TCP). Required except
    /// for `compare` (see --url-template).
    #[arg(long, env = "MOQ_URL")]
    pub url: Option<Url>,

    /// Where the publisher connects, when not at --url: e.g. publish over QUIC and watch over
    /// WebSocket (`--url ws://… --publish-url http://…`) to compare what each transport's
    /// viewers cost the relay.
    #[arg(long, value_name = "URL")]
    pub publish_url: Option<Url>,

    /// Workload preset name (`moq-bench presets` lists them): sd, hd, audio, chat, churn, or
    /// one from --preset-file.
    #[arg(long, default_value = "sd")]
    pub preset: String,

    /// A TOML file of extra presets (`[[preset]]` tables: name, fps, frame_bytes,
    /// frames_per_group, announce_rate, announce_lifetime, description); a name that is built
    /// in replaces the built-in one.
    #[arg(long, value_name = "FILE")]
    pub preset_file: Option<PathBuf>,

    /// Subscriber sessions (each its own QUIC connection); ignored with --role publish.
    #[arg(long, default_value_t = 1)]
    pub subscribers: usize,

    /// Seconds to measure (publish for, with --role both/publish), after every subscriber is
    /// set up.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,

    /// Seconds subscribers keep reading after the measured period, for frames still in flight.
    #[arg(long, default_value_t = 1.0)]
    pub drain: f64,

    /// PID of the relay (same host): sample its CPU (utime+stime of /proc/PID/stat) and RSS
    /// (VmRSS of /proc/PID/status) every second and over the measured period.
    #[arg(long)]
    pub relay_pid: Option<u32>,

    /// Our relay's Prometheus endpoint (`http://HOST:PORT/metrics` on its `--internal-listen`):
    /// its QUIC counters over the measured period go into the summary (UDP datagrams and send
    /// calls per second and per send, packets lost, congestion events, ACKs received).
    #[arg(long)]
    pub relay_metrics: Option<Url>,

    /// Before connecting, time dependent memory loads over 8 MiB (~0.5 s) and report it as
    /// `machine_mem_latency_ns`: on a shared host the cache left to this VM moves with the
    /// neighbours' load, and a fan-out relay's CPU per byte moves with it (docs/performance.md).
    #[arg(long)]
    pub memory_probe: bool,

    /// JSON lines on stdout: one `{"type":"tick",…}` object per second, then the
    /// `{"type":"summary",…}` object as the last line (delivered_mbps, loss_pct, latency_p50_ms,
    /// latency_p99_ms, relay_cpu_seconds, relay_rss_mb, …; null where not measured).
    #[arg(long)]
    pub json: bool,

    /// Broadcast path, relative to the URL path [default: bench-<this process id>]; with
    /// --role publish/subscribe give both processes the same one. Churn broadcasts are
    /// announced under it (`<broadcast>/<n>/<start time µs>`).
    #[arg(long)]
    pub broadcast: Option<String>,

    /// both: publisher and subscribers in this process; publish or subscribe: one side only,
    /// for separate processes (latency still comes from the send time in each frame, so
    /// both must run on the same host).
    #[arg(long, value_enum, default_value = "both")]
    pub role: Role,

    /// moq-lite version the load clients offer: `moq-lite-02` loads relays that only speak the
    /// compat SETUP (e.g. the reference moq-relay 0.10.x), `moq-lite-05` the current one.
    #[arg(long = "version", value_enum, default_value = "auto")]
    pub lite_version: LiteVersion,

    /// Seconds a subscriber waits for the broadcast to be announced.
    #[arg(long, default_value_t = 15.0)]
    pub announce_timeout: f64,

    /// Sessions connecting at the same time (the rest wait their turn).
    #[arg(long, default_value_t = 50)]
    pub connect_concurrency: usize,

    /// Sessions sharing one local UDP socket (one quinn endpoint per socket). Many sessions on
    /// one socket add load-generator latency: at 50 × sd on 2 cores, p90 was 30 ms with all 50 on
    /// one socket and 3 ms with one socket each; 10 keeps 200 × sd at p99 13 ms.
    #[arg(long, default_value_t = 10)]
    pub sessions_per_socket: usize,

    #[command(flatten)]
    pub client: moq_native::QuicClientConfig,

    #[command(flatten)]
    pub quic: moq_native::QuicConfig,
}

/// The track every frames broadcast carries.
const TRACK: &str = "frames";
/// How long a session may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Run `load` with `preset`: set up, measure for --duration, drain, and return the summary
/// (printed as a table on stderr). With `ticks`, print each second's JSON line on stdout.
pub async fn run(load: &Load, preset: &Preset, ticks: bool) -> anyhow::Result<Value> {
    anyhow::ensure!(
        load.duration > 0.0 && load.drain >= 0.0,
        "--duration must be > 0 and --drain >= 0"
    );
    let url = load.url.clone().context("--url is required")?;
    // Before any session exists, so the probe times the machine, not this process's own load.
    let memory_latency = match load.memory_probe {
        true => Some(tokio::task::spawn_blocking(crate::machine::probe).await?),
        false => None,
    };
    let setup = prepare(load, preset)?;

    // Publisher: the broadcast exists (and is announced) before anyone subscribes; frames start
    // once every subscriber is set up.
    let publisher = match setup.shared.publishing {
        true => Some(
            start_publisher(
                &setup.clients[0],
                load.publish_url.as_ref().unwrap_or(&url),
                &setup.path,
                preset,
                &setup.shared,
            )
            .await?,
        ),
        false => None,
    };
    let subscribers = start_subscribers(load, &setup, &url).await;
    // Let the SUBSCRIBEs (or announce interest) reach the publisher before the first frame.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (measured, kept) = measure(load, preset, &setup, publisher.as_ref(), ticks).await?;
    drain(
        load,
        publisher.as_ref(),
        subscribers.tasks,
        subscribers.stop,
    )
    .await;
    drop(kept);

    let mut summary = summary(SummaryInput {
        shared: &setup.shared,
        preset,
        load,
        subscribers: setup.subscribers,
        duration: measured.duration,
        failed: subscribers.failed,
        relay: measured.relay,
        baseline_rss: setup.baseline.map(|b| b.rss_mb),
        rss_max: measured.rss_max,
        own_cpu: measured.own_cpu,
        quic: measured.quic,
    });
    if let Some(ns) = memory_latency {
        summary["machine_mem_latency_ns"] = json!(ns);
    }
    if let Some(label) = &load.label {
        summary["label"] = json!(label);
    }
    // The measured period in wall-clock time, so runs can be lined up (`compare --at-once`).
    summary["measured_from_unix_ms"] = json!(measured.from_unix_ms);
    summary["measured_to_unix_ms"] = json!(measured.to_unix_ms);
    print_summary(&summary);
    // Let the CONNECTION_CLOSE frames out before the process exits: otherwise the relay keeps
    // the sessions (and counts them as viewers) until its idle timeout, and the next run on the
    // same relay starts with them still there.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        for client in &setup.clients {
            client.wait_idle().await;
        }
    })
    .await;
    Ok(summary)
}

/// What a run sets up before any session: the broadcast path, the relay probe and its baseline,
/// the QUIC clients (one per `--sessions-per-socket` sessions) and the shared counters.
struct Setup {
    path: Path,
    probe: Option<relay::Probe>,
    /// The relay's memory before our sessions: RSS per subscriber is counted from here.
    baseline: Option<relay::Sample>,
    clients: Vec<moq_native::QuicClient>,
    shared: Arc<Shared>,
    /// Subscriber sessions this process runs.
    subscribers: usize,
    /// Whether the preset only announces broadcasts (no frames).
    churn: bool,
}

fn prepare(load: &Load, preset: &Preset) -> anyhow::Result<Setup> {
    let broadcast_name = load
        .broadcast
        .clone()
        .unwrap_or_else(|| format!("bench-{}", std::process::id()));
    let path = Path::new(&broadcast_name).context("invalid --broadcast")?;
    let probe = load.relay_pid.map(relay::Probe::new).transpose()?;
    let baseline = probe.as_ref().map(|p| p.sample()).transpose()?;

    let mut config = load.client.clone();
    config.quic = load.quic.clone();
    if let Some(protocol) = load.lite_version.protocol() {
        config.protocols = vec![protocol.to_string()];
    }

    let publishing = load.role != Role::Subscribe;
    let subscribers = match load.role {
        Role::Publish => 0,
        _ => load.subscribers,
    };
    let sockets = (subscribers + publishing as usize).div_ceil(load.sessions_per_socket.max(1));
    let clients = (0..sockets.max(1))
        .map(|_| moq_native::QuicClient::new(config.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let churn = preset.churn_only();

    let shared = Arc::new(Shared {
        subscribers: (0..subscribers).map(|_| Subscriber::default()).collect(),
        latency: Histogram::default(),
        interval: Histogram::default(),
        published: AtomicU64::new(0),
        cutoff: AtomicU64::new(u64::MAX),
        version: OnceLock::new(),
        publishing,
        group_size: if churn { 1 } else { preset.frames_per_group },
    });
    Ok(Setup {
        path,
        probe,
        baseline,
        clients,
        shared,
        subscribers,
        churn,
    })
}

/// The subscriber sessions of a run, once set up.
struct Subscribers {
    tasks: tokio::task::JoinSet<anyhow::Result<()>>,
    /// Turned to true to end every subscriber.
    stop: tokio::sync::watch::Sender<bool>,
    /// Those that failed to set up.
    failed: usize,
}

/// Spawn every subscriber (connecting `--connect-concurrency` at a time) and wait until each is
/// subscribed or has failed.
async fn start_subscribers(load: &Load, setup: &Setup, url: &Url) -> Subscribers {
    let publishing = setup.shared.publishing;
    let permits = Arc::new(tokio::sync::Semaphore::new(load.connect_concurrency.max(1)));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let announce_timeout = Duration::from_secs_f64(load.announce_timeout.max(0.0));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..setup.subscribers {
        let client = setup.clients[(index + publishing as usize) % setup.clients.len()].clone();
        let sub = Sub {
            index,
            client,
            url: url.clone(),
            path: setup.path.clone(),
            shared: setup.shared.clone(),
            permits: permits.clone(),
            ready: ready_tx.clone(),
            stop: stop_rx.clone(),
            churn: setup.churn,
            announce_timeout,
        };
        tasks.spawn(async move {
            let ready = sub.ready.clone();
            let result = sub.run().await;
            if let Err(err) = &result {
                // Tell the set-up phase, in case it failed before being ready.
                let _ = ready.send(Err(format!("{err:#}")));
            }
            result
        });
    }
    drop(ready_tx);
    let set_up = Instant::now();
    let mut failed = 0;
    for _ in 0..setup.subscribers {
        match ready_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(err)) => {
                failed += 1;
                tracing::warn!(%err, "subscriber failed");
            }
            None => break,
        }
    }
    let setups = setup.shared.setup_ms();
    if setup.subscribers > 0 {
        eprintln!(
            "{}{} subscribers set up in {:.1} s ({failed} failed), session set-up p50 {} p99 {} ms",
            tag(load),
            setup.subscribers - failed,
            set_up.elapsed().as_secs_f64(),
            fmt_opt(quantile(&setups, 0.5)),
            fmt_opt(quantile(&setups, 0.99)),
        );
    }
    Subscribers {
        tasks,
        stop: stop_tx,
        failed,
    }
}

/// What [`measure`] measured, besides the shared counters.
struct Measured {
    /// Seconds actually measured.
    duration: f64,
    /// The relay's CPU and RSS at the start and the end.
    relay: Option<(relay::Sample, relay::Sample)>,
    /// The relay's largest RSS seen in a per-second report.
    rss_max: Option<f64>,
    /// The relay's QUIC rates (`--relay-metrics`), as summary keys.
    quic: Vec<(&'static str, f64)>,
    /// This process's CPU seconds over the period.
    own_cpu: f64,
    from_unix_ms: u64,
    to_unix_ms: u64,
}

/// What the publisher keeps open through the drain: dropping the frames track (or the churn
/// broadcasts) would end the subscriptions, and reset groups still in flight, before the last
/// frames arrive.
struct Kept {
    _frames: Option<TrackProducer>,
    _churn: Option<VecDeque<(Instant, BroadcastProducer)>>,
}

/// Publish for `--duration` (with our publisher), print a report line per second, then fix the
/// cutoff: only what was sent until now is counted.
async fn measure(
    load: &Load,
    preset: &Preset,
    setup: &Setup,
    publisher: Option<&Publisher>,
    ticks: bool,
) -> anyhow::Result<(Measured, Kept)> {
    let shared = &setup.shared;
    let start = Instant::now();
    let from_unix_ms = unix_ms();
    let relay_start = setup.probe.as_ref().map(|p| p.sample()).transpose()?;
    let quic_start = match &load.relay_metrics {
        Some(url) => Some(relay::QuicCounters::scrape(url).await?),
        None => None,
    };
    // Our own CPU: when the load generator saturates its core, latency measures it, not the relay.
    let own = relay::Probe::new(std::process::id())?;
    let own_start = own.sample()?;
    let end = start + Duration::from_secs_f64(load.duration);
    let (frames_task, churn_task) = match publisher {
        Some(p) => (
            p.frames.as_ref().map(|(_, track)| {
                tokio::spawn(publish_frames(
                    track.clone(),
                    preset.clone(),
                    end,
                    shared.clone(),
                ))
            }),
            setup.churn.then(|| {
                tokio::spawn(publish_churn(
                    p.origin.clone(),
                    setup.path.clone(),
                    preset.clone(),
                    end,
                    shared.clone(),
                ))
            }),
        ),
        None => (None, None),
    };
    let mut report = Report::new(setup.probe.clone(), setup.churn, tag(load));
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let publisher_closed = async {
        match publisher {
            Some(p) => p.session.closed().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(publisher_closed);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let tick = report.second(shared, start);
                if ticks {
                    println!("{tick}");
                }
            }
            res = &mut publisher_closed => anyhow::bail!("publisher session closed: {res}"),
            _ = tokio::time::sleep_until(end.into()) => break,
        }
    }
    let kept = Kept {
        _frames: match frames_task {
            Some(task) => Some(task.await??),
            None => None,
        },
        _churn: match churn_task {
            Some(task) => Some(task.await??),
            None => None,
        },
    };
    let duration = start.elapsed().as_secs_f64();
    let relay_end = setup.probe.as_ref().map(|p| p.sample()).transpose()?;
    let to_unix_ms = unix_ms();
    let quic = match (&load.relay_metrics, quic_start) {
        (Some(url), Some(start)) => start.rates(&relay::QuicCounters::scrape(url).await?, duration),
        _ => Vec::new(),
    };
    let own_cpu = own.sample()?.cpu_seconds - own_start.cpu_seconds;
    // From here on, count only what was sent during the measured period.
    let cutoff = match shared.publishing {
        true => shared.published.load(Relaxed),
        false => shared.highest_received(),
    };
    shared.cutoff.store(cutoff, Relaxed);
    let measured = Measured {
        duration,
        relay: relay_start.zip(relay_end),
        rss_max: report.rss_max,
        quic,
        own_cpu,
        from_unix_ms,
        to_unix_ms,
    };
    Ok((measured, kept))
}

/// Let frames in flight arrive for `--drain`, then close every session cleanly (the relay sees a
/// normal close, not a timeout) and give up on whatever has not ended after a second.
async fn drain(
    load: &Load,
    publisher: Option<&Publisher>,
    mut tasks: tokio::task::JoinSet<anyhow::Result<()>>,
    stop: tokio::sync::watch::Sender<bool>,
) {
    tokio::time::sleep(Duration::from_secs_f64(load.drain)).await;
    let _ = stop.send(true);
    if let Some(p) = publisher {
        p.session.close(moq_lite::Error::Cancel);
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
}
