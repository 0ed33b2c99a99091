//! One load run against one relay URL: a publisher and/or N subscriber sessions.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::{BufMut, Bytes, BytesMut};
use futures::stream::{FuturesUnordered, StreamExt};
use moq_lite::{
    BroadcastProducer, GroupConsumer, OriginProducer, Path, Track, TrackInfo, TrackProducer,
};
use serde_json::{json, Value};
use url::Url;

use crate::preset::{Preset, HEADER_LEN};
use crate::relay;
use crate::stats::{Histogram, Subscriber};

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
    /// fingerprint served over HTTP at the same port first, for local relays), or
    /// `moql://host:port/path` (raw QUIC). Required except for `compare` (see --url-template).
    #[arg(long, env = "MOQ_URL")]
    pub url: Option<Url>,

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

/// Counters shared by every task.
struct Shared {
    subscribers: Vec<Subscriber>,
    /// All latencies of the run (frame latency, or announce latency for churn).
    latency: Histogram,
    /// Latencies since the last per-second report.
    interval: Histogram,
    /// Frames (or churn broadcasts) started by our publisher.
    published: AtomicU64,
    /// Frames (or churn broadcasts) with a sequence at or above this are not counted: set when
    /// the measured period ends; `u64::MAX` until then.
    cutoff: AtomicU64,
    /// The negotiated moq-lite version (first session to set up).
    version: OnceLock<String>,
    /// Whether our publisher runs here (else the frames published are inferred from the
    /// highest sequence received).
    publishing: bool,
    /// Frames per group, as published (1 for churn).
    group_size: u64,
}

/// Sums over every subscriber.
#[derive(Default, Clone, Copy)]
struct Totals {
    bytes: u64,
    frames: u64,
    groups: u64,
    lost_frames: u64,
    lost_groups: u64,
    unannounces: u64,
}

impl Shared {
    /// Frames (or churn broadcasts) that subscribers should have, counting from sequence 0.
    fn published(&self) -> u64 {
        match self.cutoff.load(Relaxed) {
            u64::MAX if self.publishing => self.published.load(Relaxed),
            u64::MAX => self.highest_received(),
            cutoff => cutoff,
        }
    }

    fn highest_received(&self) -> u64 {
        self.subscribers
            .iter()
            .map(|s| s.last_frame.load(Relaxed))
            .max()
            .unwrap_or(0)
    }

    fn totals(&self) -> Totals {
        let published = self.published();
        let published_groups = published.div_ceil(self.group_size);
        // A subscriber that received nothing missed everything since the first frame anyone
        // here received (our own publisher starts at 0 once every subscriber is set up).
        let base = match self.publishing {
            true => 0,
            false => self
                .subscribers
                .iter()
                .map(|s| s.first_frame.load(Relaxed))
                .filter(|f| *f > 0)
                .min()
                .map_or(0, |f| f - 1),
        };
        let mut t = Totals::default();
        for s in &self.subscribers {
            let frames = s.frames.load(Relaxed);
            let groups = s.groups.load(Relaxed);
            let (expected_frames, expected_groups) = match frames {
                0 => (
                    published.saturating_sub(base),
                    published_groups.saturating_sub(base / self.group_size),
                ),
                _ => s.expected(published, published_groups),
            };
            t.bytes += s.bytes.load(Relaxed);
            t.frames += frames;
            t.groups += groups;
            t.lost_frames += expected_frames.saturating_sub(frames);
            t.lost_groups += expected_groups.saturating_sub(groups);
            t.unannounces += s.unannounces.load(Relaxed);
        }
        t
    }

    fn setup_ms(&self) -> Vec<f64> {
        let mut setups: Vec<f64> = self
            .subscribers
            .iter()
            .map(|s| s.setup_us.load(Relaxed))
            .filter(|us| *us > 0)
            .map(|us| us as f64 / 1000.0)
            .collect();
        setups.sort_unstable_by(f64::total_cmp);
        setups
    }
}

/// The value at quantile `q` of sorted `values`.
fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

const TRACK: &str = "frames";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Our publisher's session and what it publishes.
struct Publisher {
    session: moq_lite::Session,
    origin: OriginProducer,
    /// The frames broadcast and track (none for announce-only presets).
    frames: Option<(BroadcastProducer, TrackProducer)>,
}

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
    let broadcast_name = load
        .broadcast
        .clone()
        .unwrap_or_else(|| format!("bench-{}", std::process::id()));
    let path = Path::new(&broadcast_name).context("invalid --broadcast")?;
    let probe = load.relay_pid.map(relay::Probe::new).transpose()?;
    // The relay's memory before our sessions: RSS per subscriber is counted from here.
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

    // Publisher: the broadcast exists (and is announced) before anyone subscribes; frames start
    // once every subscriber is set up.
    let publisher = match publishing {
        true => Some(start_publisher(&clients[0], &url, &path, preset, &shared).await?),
        false => None,
    };

    // Subscribers: connect (a bounded number at a time), find the broadcast, subscribe.
    let permits = Arc::new(tokio::sync::Semaphore::new(load.connect_concurrency.max(1)));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let announce_timeout = Duration::from_secs_f64(load.announce_timeout.max(0.0));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..subscribers {
        let client = clients[(index + publishing as usize) % clients.len()].clone();
        let sub = Sub {
            index,
            client,
            url: url.clone(),
            path: path.clone(),
            shared: shared.clone(),
            permits: permits.clone(),
            ready: ready_tx.clone(),
            stop: stop_rx.clone(),
            churn,
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
    for _ in 0..subscribers {
        match ready_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(err)) => {
                failed += 1;
                tracing::warn!(%err, "subscriber failed");
            }
            None => break,
        }
    }
    let setups = shared.setup_ms();
    if subscribers > 0 {
        eprintln!(
            "{}{} subscribers set up in {:.1} s ({failed} failed), session set-up p50 {} p99 {} ms",
            tag(load),
            subscribers - failed,
            set_up.elapsed().as_secs_f64(),
            fmt_opt(quantile(&setups, 0.5)),
            fmt_opt(quantile(&setups, 0.99)),
        );
    }
    // Let the SUBSCRIBEs (or announce interest) reach the publisher before the first frame.
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Measure for --duration, reporting every second.
    let start = Instant::now();
    let measured_from = unix_ms();
    let relay_start = probe.as_ref().map(|p| p.sample()).transpose()?;
    let quic_start = match &load.relay_metrics {
        Some(url) => Some(relay::QuicCounters::scrape(url).await?),
        None => None,
    };
    // Our own CPU: when the load generator saturates its core, latency measures it, not the relay.
    let own = relay::Probe::new(std::process::id())?;
    let own_start = own.sample()?;
    let end = start + Duration::from_secs_f64(load.duration);
    let (frames_task, churn_task) = match &publisher {
        Some(p) => (
            p.frames.as_ref().map(|(_, track)| {
                tokio::spawn(publish_frames(
                    track.clone(),
                    preset.clone(),
                    end,
                    shared.clone(),
                ))
            }),
            churn.then(|| {
                tokio::spawn(publish_churn(
                    p.origin.clone(),
                    path.clone(),
                    preset.clone(),
                    end,
                    shared.clone(),
                ))
            }),
        ),
        None => (None, None),
    };
    let mut report = Report::new(probe.clone(), churn, tag(load));
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let publisher_closed = async {
        match &publisher {
            Some(p) => p.session.closed().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(publisher_closed);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let tick = report.second(&shared, start);
                if ticks {
                    println!("{tick}");
                }
            }
            res = &mut publisher_closed => anyhow::bail!("publisher session closed: {res}"),
            _ = tokio::time::sleep_until(end.into()) => break,
        }
    }
    // Keep the frames track (and churn broadcasts) open through the drain: dropping them would
    // end the subscriptions (and reset groups still in flight) before the last frames arrive.
    let _frames = match frames_task {
        Some(task) => Some(task.await??),
        None => None,
    };
    let _churn = match churn_task {
        Some(task) => Some(task.await??),
        None => None,
    };
    let duration = start.elapsed().as_secs_f64();
    let relay_end = probe.as_ref().map(|p| p.sample()).transpose()?;
    let measured_to = unix_ms();
    let quic = match (&load.relay_metrics, quic_start) {
        (Some(url), Some(start)) => start.rates(&relay::QuicCounters::scrape(url).await?, duration),
        _ => Vec::new(),
    };
    let own_cpu = own.sample()?.cpu_seconds - own_start.cpu_seconds;
    // From here on, count only what was sent during the measured period.
    let cutoff = match publishing {
        true => shared.published.load(Relaxed),
        false => shared.highest_received(),
    };
    shared.cutoff.store(cutoff, Relaxed);
    tokio::time::sleep(Duration::from_secs_f64(load.drain)).await;
    // Close every session cleanly (the relay sees a normal close, not a timeout), then give up
    // on whatever has not ended after a second.
    let _ = stop_tx.send(true);
    if let Some(p) = &publisher {
        p.session.close(moq_lite::Error::Cancel);
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();

    let mut summary = summary(SummaryInput {
        shared: &shared,
        preset,
        load,
        subscribers,
        duration,
        failed,
        relay: relay_start.zip(relay_end),
        baseline_rss: baseline.map(|b| b.rss_mb),
        rss_max: report.rss_max,
        own_cpu,
        quic,
    });
    if let Some(ns) = memory_latency {
        summary["machine_mem_latency_ns"] = json!(ns);
    }
    if let Some(label) = &load.label {
        summary["label"] = json!(label);
    }
    // The measured period in wall-clock time, so runs can be lined up (`compare --at-once`).
    summary["measured_from_unix_ms"] = json!(measured_from);
    summary["measured_to_unix_ms"] = json!(measured_to);
    print_summary(&summary);
    // Let the CONNECTION_CLOSE frames out before the process exits: otherwise the relay keeps
    // the sessions (and counts them as viewers) until its idle timeout, and the next run on the
    // same relay starts with them still there.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        for client in &clients {
            client.wait_idle().await;
        }
    })
    .await;
    Ok(summary)
}

async fn start_publisher(
    client: &moq_native::QuicClient,
    url: &Url,
    path: &Path,
    preset: &Preset,
    shared: &Shared,
) -> anyhow::Result<Publisher> {
    let connection = tokio::time::timeout(CONNECT_TIMEOUT, client.connect(url.clone()))
        .await
        .context("publisher connect timed out")?
        .with_context(|| format!("publisher cannot connect to {url}"))?;
    let origin = OriginProducer::new();
    let frames = match preset.churn_only() {
        true => None,
        false => {
            let broadcast = BroadcastProducer::new();
            let track = broadcast.create_track(Track::new(TRACK), TrackInfo::default());
            origin.publish_broadcast(path, broadcast.consume())?;
            Some((broadcast, track))
        }
    };
    let session = moq_lite::Client::new()
        .with_setup_path(connection.setup_path)
        .publish(origin.consume())
        .connect(connection.session)
        .await
        .context("publisher session set-up")?;
    let _ = shared.version.set(session.version().to_string());
    tracing::info!(version = %session.version(), broadcast = %path, preset = preset.name, "publishing");
    Ok(Publisher {
        session,
        origin,
        frames,
    })
}

/// One subscriber session.
struct Sub {
    index: usize,
    client: moq_native::QuicClient,
    url: Url,
    path: Path,
    shared: Arc<Shared>,
    permits: Arc<tokio::sync::Semaphore>,
    ready: tokio::sync::mpsc::UnboundedSender<Result<(), String>>,
    stop: tokio::sync::watch::Receiver<bool>,
    churn: bool,
    announce_timeout: Duration,
}

impl Sub {
    /// From connect until `stop` turns true.
    async fn run(mut self) -> anyhow::Result<()> {
        let permit = self.permits.clone().acquire_owned().await?;
        let begin = Instant::now();
        let connection = tokio::time::timeout(CONNECT_TIMEOUT, self.client.connect(self.url))
            .await
            .context("connect timed out")??;
        let origin = OriginProducer::new();
        let session = moq_lite::Client::new()
            .with_setup_path(connection.setup_path)
            .subscribe(origin.clone())
            .connect(connection.session)
            .await?;
        let shared = &*self.shared;
        let _ = shared.version.set(session.version().to_string());
        let stats = &shared.subscribers[self.index];
        stats
            .setup_us
            .store(begin.elapsed().as_micros().max(1) as u64, Relaxed);
        drop(permit);

        if self.churn {
            // Every broadcast announced under the bench path is a churn one.
            let mut watcher = origin.consume().with_prefix(&self.path)?;
            let _ = self.ready.send(Ok(()));
            loop {
                tokio::select! {
                    announced = watcher.announced() => {
                        if announced.broadcast.is_none() {
                            stats.unannounces.fetch_add(1, Relaxed);
                            continue;
                        }
                        let name = announced.path.to_string();
                        let mut parts = name.rsplit('/');
                        let (Some(Ok(sent)), Some(Ok(seq))) = (
                            parts.next().map(str::parse::<u64>),
                            parts.next().map(str::parse::<u64>),
                        ) else {
                            continue;
                        };
                        if seq >= shared.cutoff.load(Relaxed) {
                            continue;
                        }
                        let latency = now_us().saturating_sub(sent);
                        shared.latency.record(latency);
                        shared.interval.record(latency);
                        stats.group(seq);
                        stats.frame(seq, 0);
                    }
                    err = session.closed() => return Err(err.into()),
                    _ = self.stop.wait_for(|stop| *stop) => break,
                }
            }
            session.close(moq_lite::Error::Cancel);
            return Ok(());
        }

        let broadcast = tokio::time::timeout(
            self.announce_timeout,
            origin.consume().wait_for_broadcast(&self.path),
        )
        .await
        .with_context(|| format!("broadcast {} not announced", self.path))??;
        let mut track = broadcast.subscribe_track(&Track::new(TRACK));
        // Read every group, even one whose stream lost the race to a newer one's (one-frame
        // groups overlap): skipping it would count a late message as lost.
        track.set_max_latency(Duration::from_secs(2));
        track.set_late_groups(true);
        // Frames sent before now (the start of the current group, cached by the relay, when
        // joining a running publisher) are counted but not timed: their age is not latency.
        let since = now_us();
        let _ = self.ready.send(Ok(()));

        let mut groups = FuturesUnordered::new();
        loop {
            tokio::select! {
                next = track.next_group() => match next? {
                    Some(group) => groups.push(read_group(group, self.index, shared, since)),
                    None => break,
                },
                Some(res) = groups.next(), if !groups.is_empty() => {
                    if let Err(err) = res {
                        tracing::debug!(%err, "group ended early");
                    }
                }
                err = session.closed() => return Err(err.into()),
                _ = self.stop.wait_for(|stop| *stop) => break,
            }
        }
        session.close(moq_lite::Error::Cancel);
        Ok(())
    }
}

/// Count and time every frame of one group.
async fn read_group(
    mut group: GroupConsumer,
    index: usize,
    shared: &Shared,
    since: u64,
) -> anyhow::Result<()> {
    let stats = &shared.subscribers[index];
    let mut first = true;
    while let Some((_, payload)) = group.read_frame().await? {
        anyhow::ensure!(payload.len() >= HEADER_LEN, "frame shorter than its header");
        let sent = u64::from_be_bytes(payload[0..8].try_into()?);
        let seq = u64::from_be_bytes(payload[8..16].try_into()?);
        if seq >= shared.cutoff.load(Relaxed) {
            continue;
        }
        if sent >= since {
            let latency = now_us().saturating_sub(sent);
            shared.latency.record(latency);
            shared.interval.record(latency);
        }
        if first {
            stats.group(group.info().sequence);
            first = false;
        }
        stats.frame(seq, payload.len());
    }
    Ok(())
}

/// Write the preset's frames at its rate until `end`; hand the track back, still open.
async fn publish_frames(
    track: TrackProducer,
    preset: Preset,
    end: Instant,
    shared: Arc<Shared>,
) -> anyhow::Result<TrackProducer> {
    let mut ticker = tokio::time::interval(preset.interval());
    // Keep the average rate when the runtime is late.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut group = None;
    for seq in 0u64.. {
        ticker.tick().await;
        if Instant::now() >= end {
            break;
        }
        if seq % preset.frames_per_group == 0 {
            if let Some(mut old) = group.take() {
                moq_lite::GroupProducer::finish(&mut old);
            }
            group = Some(track.create_group(moq_lite::Group {
                sequence: seq / preset.frames_per_group,
            })?);
        }
        let sent = now_us();
        let mut payload = BytesMut::zeroed(preset.payload_bytes());
        let mut header = &mut payload[..HEADER_LEN];
        header.put_u64(sent);
        header.put_u64(seq);
        let group = group.as_mut().context("a group exists")?;
        group.write_frame(sent, Bytes::from(payload))?;
        shared.published.store(seq + 1, Relaxed);
    }
    if let Some(mut group) = group {
        group.finish();
    }
    Ok(track)
}

/// Start `announce_rate` broadcasts per second under `path` until `end`, each ending after
/// `announce_lifetime`; hand back those still alive.
async fn publish_churn(
    origin: OriginProducer,
    path: Path,
    preset: Preset,
    end: Instant,
    shared: Arc<Shared>,
) -> anyhow::Result<VecDeque<(Instant, BroadcastProducer)>> {
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / preset.announce_rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let lifetime = Duration::from_secs_f64(preset.announce_lifetime);
    let mut live: VecDeque<(Instant, BroadcastProducer)> = VecDeque::new();
    for seq in 0u64.. {
        ticker.tick().await;
        let now = Instant::now();
        while live.front().is_some_and(|(expiry, _)| *expiry <= now) {
            // Dropping the producer ends the broadcast: the relay unannounces it.
            live.pop_front();
        }
        if now >= end {
            break;
        }
        let name = Path::new(&format!("{seq}/{}", now_us()))?;
        let broadcast = BroadcastProducer::new();
        origin.publish_broadcast(&path.join(&name)?, broadcast.consume())?;
        live.push_back((now + lifetime, broadcast));
        shared.published.store(seq + 1, Relaxed);
    }
    Ok(live)
}

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

/// The per-second reports.
struct Report {
    probe: Option<relay::Probe>,
    churn: bool,
    /// Put before each line (see [`Load::label`]).
    tag: String,
    last: Instant,
    last_totals: Totals,
    last_cpu: Option<f64>,
    rss_max: Option<f64>,
}

impl Report {
    fn new(probe: Option<relay::Probe>, churn: bool, tag: String) -> Self {
        let last_cpu = probe
            .as_ref()
            .and_then(|p| p.sample().ok())
            .map(|s| s.cpu_seconds);
        Self {
            probe,
            churn,
            tag,
            last: Instant::now(),
            last_totals: Totals::default(),
            last_cpu,
            rss_max: None,
        }
    }

    /// Print this second's line on stderr and return it as JSON.
    fn second(&mut self, shared: &Shared, start: Instant) -> Value {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        let t = shared.totals();
        let last = self.last_totals;
        let mbps = (t.bytes - last.bytes) as f64 * 8.0 / 1e6 / dt;
        let latency = shared.interval.snapshot(true);
        let (mut cpu_pct, mut rss_mb) = (None, None);
        if let Some(s) = self.probe.as_ref().and_then(|p| p.sample().ok()) {
            cpu_pct = self.last_cpu.map(|c| (s.cpu_seconds - c) / dt * 100.0);
            self.last_cpu = Some(s.cpu_seconds);
            rss_mb = Some(s.rss_mb);
            self.rss_max = Some(self.rss_max.map_or(s.rss_mb, |m| m.max(s.rss_mb)));
        }
        let relay = match (cpu_pct, rss_mb) {
            (Some(cpu), Some(rss)) => format!(" | relay cpu {cpu:.0}% rss {rss:.1} MB"),
            _ => String::new(),
        };
        let what = if self.churn { "announces" } else { "frames" };
        let elapsed = now.duration_since(start).as_secs_f64();
        eprintln!(
            "{}t={elapsed:>4.1}s {mbps:>8.1} Mbps | {what} +{} (missing {}) groups +{} (missing {}) | latency p50 {} p90 {} p99 {} max {} ms{relay}",
            self.tag,
            t.frames - last.frames,
            t.lost_frames,
            t.groups - last.groups,
            t.lost_groups,
            fmt_opt(latency.quantile_ms(0.5)),
            fmt_opt(latency.quantile_ms(0.9)),
            fmt_opt(latency.quantile_ms(0.99)),
            fmt_opt(latency.max_ms()),
        );
        self.last = now;
        self.last_totals = t;
        json!({
            "type": "tick",
            "elapsed_s": elapsed,
            "delivered_mbps": mbps,
            "frames_received": t.frames - last.frames,
            "groups_received": t.groups - last.groups,
            "frames_missing": t.lost_frames,
            "groups_missing": t.lost_groups,
            "frames_received_total": t.frames,
            "groups_received_total": t.groups,
            "latency_p50_ms": latency.quantile_ms(0.5),
            "latency_p90_ms": latency.quantile_ms(0.9),
            "latency_p99_ms": latency.quantile_ms(0.99),
            "latency_max_ms": latency.max_ms(),
            "relay_cpu_pct": cpu_pct,
            "relay_rss_mb": rss_mb,
        })
    }
}

struct SummaryInput<'a> {
    shared: &'a Shared,
    preset: &'a Preset,
    load: &'a Load,
    subscribers: usize,
    duration: f64,
    failed: usize,
    relay: Option<(relay::Sample, relay::Sample)>,
    baseline_rss: Option<f64>,
    rss_max: Option<f64>,
    own_cpu: f64,
    /// The relay's QUIC rates (`--relay-metrics`), as summary keys.
    quic: Vec<(&'static str, f64)>,
}

/// The prefix of this load's stderr lines: `[label] `, or nothing.
fn tag(load: &Load) -> String {
    load.label
        .as_ref()
        .map(|label| format!("[{label}] "))
        .unwrap_or_default()
}

/// Milliseconds since the Unix epoch, now.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The end-of-run results as one JSON object.
fn summary(i: SummaryInput<'_>) -> Value {
    let shared = i.shared;
    let t = shared.totals();
    let latency = shared.latency.snapshot(false);
    let setups = shared.setup_ms();
    let measuring = i.subscribers > 0;
    let expected = t.frames + t.lost_frames;
    let loss_pct = match (measuring, expected) {
        (false, _) => None,
        (true, 0) => Some(100.0),
        (true, e) => Some(t.lost_frames as f64 * 100.0 / e as f64),
    };
    let cpu = i.relay.map(|(a, b)| b.cpu_seconds - a.cpu_seconds);
    let rss = i.relay.map(|(_, b)| b.rss_mb);
    // CPU time is counted in clock ticks (10 ms): below one tick, ratios are meaningless.
    let per_cpu = |amount: f64| cpu.filter(|c| *c > 0.0).map(|c| amount / c);
    let delivered_bytes = t.bytes;
    let churn = i.preset.churn_only();
    let mut json = json!({
        "type": "summary",
        "role": i.load.role.name(),
        "preset": i.preset.name,
        "version": shared.version.get(),
        "subscribers": i.subscribers,
        "subscribers_failed": i.failed,
        "duration_s": i.duration,
        "offered_mbps_per_subscriber": i.preset.mbps(),
        "delivered_mbps": measuring.then(|| delivered_bytes as f64 * 8.0 / 1e6 / i.duration),
        "delivered_bytes": delivered_bytes,
        "frames_published": shared.publishing.then(|| shared.published.load(Relaxed)),
        "frames_received": t.frames,
        "frames_lost": t.lost_frames,
        "groups_received": t.groups,
        "groups_lost": t.lost_groups,
        "loss_pct": loss_pct,
        "latency_p50_ms": latency.quantile_ms(0.5),
        "latency_p90_ms": latency.quantile_ms(0.9),
        "latency_p99_ms": latency.quantile_ms(0.99),
        "latency_max_ms": latency.max_ms(),
        "setup_median_ms": quantile(&setups, 0.5),
        "setup_p50_ms": quantile(&setups, 0.5),
        "setup_p99_ms": quantile(&setups, 0.99),
        "relay_cpu_seconds": cpu,
        "relay_cpu_pct": cpu.map(|c| c / i.duration * 100.0),
        "relay_rss_mb": rss,
        "relay_rss_max_mb": i.rss_max.or(rss).zip(rss).map(|(a, b)| a.max(b)),
        "relay_rss_baseline_mb": i.baseline_rss,
        "relay_rss_per_subscriber_kb": rss.zip(i.baseline_rss)
            .filter(|_| i.subscribers > 0)
            .map(|(end, base)| (end - base) * 1024.0 / i.subscribers as f64),
        "delivered_bytes_per_relay_cpu_second": per_cpu(delivered_bytes as f64).filter(|_| measuring),
        "delivered_gbps_per_relay_core": per_cpu(delivered_bytes as f64 * 8.0 / 1e9).filter(|_| measuring),
        "messages_per_relay_cpu_second": per_cpu(t.frames as f64).filter(|_| measuring),
        "bench_cpu_pct": i.own_cpu / i.duration * 100.0,
    });
    let obj = json.as_object_mut().expect("an object");
    for (key, value) in &i.quic {
        obj.insert((*key).into(), json!(value));
    }
    if churn {
        // The same counts under their churn names: frames are announcements here, latency is
        // announce latency (start of the broadcast to its ANNOUNCE at a subscriber).
        let obj = json.as_object_mut().expect("an object");
        obj.insert(
            "announces_published".into(),
            obj["frames_published"].clone(),
        );
        obj.insert("announces_received".into(), json!(t.frames));
        obj.insert("announces_lost".into(), json!(t.lost_frames));
        obj.insert("unannounces_received".into(), json!(t.unannounces));
    }
    json
}

/// The summary as a table on stderr.
pub fn print_summary(j: &Value) {
    let f = |k: &str| j[k].as_f64().map_or("-".into(), |v| format!("{v:.2}"));
    let g = |k: &str| j[k].as_f64().map_or("-".into(), |v| format!("{v:.3e}"));
    let churn = j.get("announces_received").is_some();
    match j["label"].as_str() {
        Some(label) => eprintln!("── moq-bench summary: {label} ─────────────────────────────"),
        None => eprintln!("── moq-bench summary ──────────────────────────────"),
    }
    eprintln!(
        "preset {} · role {} · {} · {} subscribers ({} failed) · {} s",
        j["preset"].as_str().unwrap_or("?"),
        j["role"].as_str().unwrap_or("?"),
        j["version"].as_str().unwrap_or("version ?"),
        j["subscribers"],
        j["subscribers_failed"],
        f("duration_s")
    );
    eprintln!(
        "delivered      {} Mbps ({} Mbps offered per subscriber)",
        f("delivered_mbps"),
        f("offered_mbps_per_subscriber")
    );
    if churn {
        eprintln!(
            "announces      {} published, {} received, {} lost ({} %), {} ends seen",
            j["announces_published"],
            j["announces_received"],
            j["announces_lost"],
            f("loss_pct"),
            j["unannounces_received"]
        );
    } else {
        eprintln!(
            "frames         {} published, {} received, {} lost ({} %)",
            j["frames_published"],
            j["frames_received"],
            j["frames_lost"],
            f("loss_pct")
        );
        eprintln!(
            "groups         {} received, {} lost",
            j["groups_received"], j["groups_lost"]
        );
    }
    eprintln!(
        "latency ms     p50 {} · p90 {} · p99 {} · max {}{}",
        f("latency_p50_ms"),
        f("latency_p90_ms"),
        f("latency_p99_ms"),
        f("latency_max_ms"),
        if churn { " (announce)" } else { "" }
    );
    eprintln!(
        "session set-up p50 {} · p99 {} ms",
        f("setup_p50_ms"),
        f("setup_p99_ms")
    );
    eprintln!(
        "relay          {} CPU s ({} % of a core) · RSS {} MB (max {}, {} before the run, {} KB per subscriber)",
        f("relay_cpu_seconds"),
        f("relay_cpu_pct"),
        f("relay_rss_mb"),
        f("relay_rss_max_mb"),
        f("relay_rss_baseline_mb"),
        f("relay_rss_per_subscriber_kb"),
    );
    eprintln!(
        "per relay CPU-second: {} bytes · {} Gbps per core · {} messages",
        g("delivered_bytes_per_relay_cpu_second"),
        f("delivered_gbps_per_relay_core"),
        g("messages_per_relay_cpu_second"),
    );
    if j.get("relay_udp_sends_per_s").is_some() {
        eprintln!(
            "relay QUIC /s  {} datagrams in {} sends ({} per send, {} bytes each; {} STREAM and {} ACK frames) · {} received ({} ACKs, {} credit frames) · {} lost · {} congestion events",
            f("relay_udp_datagrams_sent_per_s"),
            f("relay_udp_sends_per_s"),
            f("relay_datagrams_per_send"),
            f("relay_bytes_per_datagram"),
            f("relay_stream_frames_sent_per_s"),
            f("relay_acks_sent_per_s"),
            f("relay_udp_datagrams_received_per_s"),
            f("relay_acks_received_per_s"),
            f("relay_credit_frames_received_per_s"),
            f("relay_packets_lost_per_s"),
            f("relay_congestion_events_per_s"),
        );
    }
    eprintln!(
        "moq-bench      {} % of a core (near 100 × cores: latency measures this process)",
        f("bench_cpu_pct")
    );
    if j.get("machine_mem_latency_ns").is_some() {
        eprintln!(
            "machine        {} ns per dependent memory load over 8 MiB (--memory-probe)",
            f("machine_mem_latency_ns")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_sorted_values() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.99), Some(99.0));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
