//! `moq-bench`: load a moq-lite relay with one publisher and N subscriber sessions, and measure
//! what it delivers.
//!
//! ```text
//!   publisher ──1 session──▶ relay ──N sessions──▶ subscribers      (all in this process)
//!   frame payload = send time (µs since the epoch, u64 BE) ‖ sequence (u64 BE) ‖ zero padding
//! ```
//!
//! Every second it prints (stderr) delivered Mbps, frames and groups received and missing,
//! latency percentiles and, given `--relay-pid`, the relay's CPU and RSS; at the end a summary,
//! and with `--json` one JSON object on stdout (a stable interface for scripts).

mod preset;
mod relay;
mod stats;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::{BufMut, Bytes, BytesMut};
use clap::Parser;
use futures::stream::{FuturesUnordered, StreamExt};
use moq_lite::{BroadcastProducer, GroupConsumer, OriginProducer, Path, Track, TrackInfo};
use url::Url;

use preset::{Preset, HEADER_LEN};
use stats::{Histogram, Subscriber};

/// Load a moq-lite relay with one publisher and N subscribers; report throughput, loss,
/// latency, session set-up time and the relay's CPU and memory.
///
/// Presets: `sd` (30 fps × 12.5 KB = 3 Mbps, one group per second), `audio` (50 fps × 160 B,
/// one frame per group), `chat` (10 msg/s × 100 B, one frame per group).
///
/// Loss counts, per subscriber, the frames published from its first received frame on that it
/// never received (publishing stops at --duration; subscribers get --drain more to catch up).
/// Latency is receive time minus the send time carried in the frame (same host clock).
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Cli {
    /// Relay URL: `https://host:port/path` (WebTransport), `http://…` (pin the certificate
    /// fingerprint served over HTTP first, for local relays), or `moql://host:port/path` (raw QUIC).
    #[arg(long, env = "MOQ_URL")]
    url: Url,

    /// Workload: sd, audio or chat.
    #[arg(long, default_value = "sd")]
    preset: String,

    /// Subscriber sessions (each its own QUIC connection).
    #[arg(long, default_value_t = 1)]
    subscribers: usize,

    /// Seconds to publish for, after every subscriber is set up.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,

    /// Seconds subscribers keep reading after publishing stops, for frames still in flight.
    #[arg(long, default_value_t = 1.0)]
    drain: f64,

    /// PID of the relay (same host): sample its CPU (utime+stime of /proc/PID/stat, in clock
    /// ticks per `getconf CLK_TCK`, else 100) and RSS (VmRSS of /proc/PID/status) every second
    /// and over the publishing period.
    #[arg(long)]
    relay_pid: Option<u32>,

    /// End by printing one JSON object on stdout: delivered_mbps, loss_pct, latency_p50_ms,
    /// latency_p90_ms, latency_p99_ms, latency_max_ms, frames_/groups_received and _lost,
    /// setup_median_ms, relay_cpu_seconds, relay_cpu_pct, relay_rss_mb (null without
    /// --relay-pid or without data), and the run's parameters.
    #[arg(long)]
    json: bool,

    /// Broadcast path, relative to the URL path [default: bench-<this process id>].
    #[arg(long)]
    broadcast: Option<String>,

    /// Sessions connecting at the same time (the rest wait their turn).
    #[arg(long, default_value_t = 50)]
    connect_concurrency: usize,

    /// Sessions sharing one local UDP socket (one quinn endpoint per socket). Many sessions on
    /// one socket add load-generator latency: at 50 × sd on 2 cores, p90 was 30 ms with all 50 on
    /// one socket and 3 ms with one socket each; 10 keeps 200 × sd at p99 13 ms.
    #[arg(long, default_value_t = 10)]
    sessions_per_socket: usize,

    #[command(flatten)]
    client: moq_native::ClientConfig,

    #[command(flatten)]
    quic: moq_native::QuicConfig,

    #[command(flatten)]
    log: moq_native::Log,
}

/// Counters shared by every task.
#[derive(Default)]
struct Shared {
    subscribers: Vec<Subscriber>,
    /// All latencies of the run.
    latency: Histogram,
    /// Latencies since the last per-second report.
    interval: Histogram,
    /// Frames written by the publisher.
    published: AtomicU64,
}

const TRACK: &str = "frames";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    cli.log.init();
    cli.client.quic = cli.quic.clone();
    let preset = Preset::find(&cli.preset)?;
    anyhow::ensure!(
        cli.duration > 0.0 && cli.drain >= 0.0,
        "--duration must be > 0"
    );
    let broadcast_name = cli
        .broadcast
        .clone()
        .unwrap_or_else(|| format!("bench-{}", std::process::id()));
    let path = Path::new(&broadcast_name).context("invalid --broadcast")?;
    let probe = cli.relay_pid.map(relay::Probe::new).transpose()?;

    let sockets = (cli.subscribers + 1).div_ceil(cli.sessions_per_socket.max(1));
    let clients = (0..sockets)
        .map(|_| moq_native::Client::new(cli.client.clone()))
        .collect::<anyhow::Result<Vec<_>>>()?;

    // Publisher: the broadcast exists (and is announced) before anyone subscribes; frames start
    // once every subscriber is set up.
    let connection = tokio::time::timeout(CONNECT_TIMEOUT, clients[0].connect(cli.url.clone()))
        .await
        .context("publisher connect timed out")?
        .with_context(|| format!("publisher cannot connect to {}", cli.url))?;
    let origin = OriginProducer::new();
    let broadcast = BroadcastProducer::new();
    let track = broadcast.create_track(Track::new(TRACK), TrackInfo::default());
    origin.publish_broadcast(&path, broadcast.consume())?;
    let publisher = moq_lite::Client::new()
        .with_setup_path(connection.setup_path)
        .publish(origin.consume())
        .connect(connection.session)
        .await
        .context("publisher session set-up")?;
    tracing::info!(version = %publisher.version(), broadcast = %path, preset = preset.name, "publishing");

    let shared = Arc::new(Shared {
        subscribers: (0..cli.subscribers)
            .map(|_| Subscriber::default())
            .collect(),
        ..Default::default()
    });

    // Subscribers: connect (a bounded number at a time), find the broadcast, subscribe.
    let permits = Arc::new(tokio::sync::Semaphore::new(cli.connect_concurrency.max(1)));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..cli.subscribers {
        let client = clients[(index + 1) % clients.len()].clone();
        let (url, path, shared, permits, ready, stop) = (
            cli.url.clone(),
            path.clone(),
            shared.clone(),
            permits.clone(),
            ready_tx.clone(),
            stop_rx.clone(),
        );
        tasks.spawn(async move {
            let result = subscribe(
                index,
                client,
                url,
                path,
                shared,
                permits,
                ready.clone(),
                stop,
            )
            .await;
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
    for _ in 0..cli.subscribers {
        match ready_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(err)) => {
                failed += 1;
                tracing::warn!(%err, "subscriber failed");
            }
            None => break,
        }
    }
    let setup_ms = median_setup_ms(&shared);
    eprintln!(
        "{} subscribers set up in {:.1} s ({failed} failed), session set-up median {} ms",
        cli.subscribers - failed,
        set_up.elapsed().as_secs_f64(),
        fmt_opt(setup_ms),
    );
    // Let the SUBSCRIBEs reach the publisher before the first frame.
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Publish for --duration, reporting every second.
    let start = Instant::now();
    let relay_start = probe.as_ref().map(|p| p.sample()).transpose()?;
    // Our own CPU: when the load generator saturates its core, latency measures it, not the relay.
    let own = relay::Probe::new(std::process::id())?;
    let own_start = own.sample()?;
    let end = start + Duration::from_secs_f64(cli.duration);
    let publish = tokio::spawn(publish(track, preset, end, shared.clone()));
    let mut report = Report::new(probe.clone());
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    loop {
        tokio::select! {
            _ = ticker.tick() => report.second(&shared, preset, start),
            res = publisher.closed() => anyhow::bail!("publisher session closed: {res}"),
            _ = tokio::time::sleep_until(end.into()) => break,
        }
    }
    // Keep the track open through the drain: dropping it would end the subscriptions (and
    // reset groups still in flight) before the last frames arrive.
    let _track = publish.await??;
    let duration = start.elapsed().as_secs_f64();
    let relay_end = probe.as_ref().map(|p| p.sample()).transpose()?;
    let own_cpu = own.sample()?.cpu_seconds - own_start.cpu_seconds;
    tokio::time::sleep(Duration::from_secs_f64(cli.drain)).await;
    // Close every session cleanly (the relay sees a normal close, not a timeout), then give up
    // on whatever has not ended after a second.
    let _ = stop_tx.send(true);
    publisher.close(moq_lite::Error::Cancel);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();

    let summary = Summary::new(
        &shared,
        preset,
        &cli,
        duration,
        failed,
        relay_start.zip(relay_end),
        own_cpu,
    );
    summary.print();
    if cli.json {
        println!("{}", summary.json());
    }
    Ok(())
}

/// One subscriber session, from connect until `stop` turns true.
#[allow(clippy::too_many_arguments)]
async fn subscribe(
    index: usize,
    client: moq_native::Client,
    url: Url,
    path: Path,
    shared: Arc<Shared>,
    permits: Arc<tokio::sync::Semaphore>,
    ready: tokio::sync::mpsc::UnboundedSender<Result<(), String>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let permit = permits.acquire_owned().await?;
    let begin = Instant::now();
    let connection = tokio::time::timeout(CONNECT_TIMEOUT, client.connect(url))
        .await
        .context("connect timed out")??;
    let origin = OriginProducer::new();
    let session = moq_lite::Client::new()
        .with_setup_path(connection.setup_path)
        .subscribe(origin.clone())
        .connect(connection.session)
        .await?;
    let stats = &shared.subscribers[index];
    stats
        .setup_us
        .store(begin.elapsed().as_micros().max(1) as u64, Relaxed);
    drop(permit);

    let broadcast =
        tokio::time::timeout(CONNECT_TIMEOUT, origin.consume().wait_for_broadcast(&path))
            .await
            .context("broadcast not announced")??;
    let mut track = broadcast.subscribe_track(&Track::new(TRACK));
    // Read every group, even one overtaken by a newer one (one-frame groups overlap).
    track.set_max_latency(Duration::from_secs(2));
    let _ = ready.send(Ok(()));

    let mut groups = FuturesUnordered::new();
    loop {
        tokio::select! {
            next = track.next_group() => match next? {
                Some(group) => groups.push(read_group(group, index, &shared)),
                None => break,
            },
            Some(res) = groups.next(), if !groups.is_empty() => {
                if let Err(err) = res {
                    tracing::debug!(%err, "group ended early");
                }
            }
            err = session.closed() => return Err(err.into()),
            _ = stop.wait_for(|stop| *stop) => break,
        }
    }
    session.close(moq_lite::Error::Cancel);
    Ok(())
}

/// Count and time every frame of one group.
async fn read_group(mut group: GroupConsumer, index: usize, shared: &Shared) -> anyhow::Result<()> {
    let stats = &shared.subscribers[index];
    let mut first = true;
    let (mut first_seq, mut frames) = (None, 0u64);
    while let Some((_, payload)) = group.read_frame().await? {
        anyhow::ensure!(payload.len() >= HEADER_LEN, "frame shorter than its header");
        let sent = u64::from_be_bytes(payload[0..8].try_into()?);
        let seq = u64::from_be_bytes(payload[8..16].try_into()?);
        let latency = now_us().saturating_sub(sent);
        shared.latency.record(latency);
        shared.interval.record(latency);
        if first {
            stats.group(group.info().sequence);
            first = false;
        }
        stats.frame(seq, payload.len());
        first_seq.get_or_insert(seq);
        frames += 1;
    }
    tracing::trace!(
        subscriber = index,
        group = group.info().sequence,
        ?first_seq,
        frames,
        "group read"
    );
    Ok(())
}

/// Write the preset's frames at its rate until `end`; hand the track back, still open.
async fn publish(
    track: moq_lite::TrackProducer,
    preset: Preset,
    end: Instant,
    shared: Arc<Shared>,
) -> anyhow::Result<moq_lite::TrackProducer> {
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
        let mut payload = BytesMut::zeroed(preset.frame_bytes.max(HEADER_LEN));
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

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn median_setup_ms(shared: &Shared) -> Option<f64> {
    let mut setups: Vec<u64> = shared
        .subscribers
        .iter()
        .map(|s| s.setup_us.load(Relaxed))
        .filter(|us| *us > 0)
        .collect();
    setups.sort_unstable();
    setups.get(setups.len() / 2).map(|us| *us as f64 / 1000.0)
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

/// Totals over all subscribers: (bytes, frames, groups, frames missing, groups missing).
fn totals(shared: &Shared, preset: Preset) -> (u64, u64, u64, u64, u64) {
    let published = shared.published.load(Relaxed);
    let published_groups = published.div_ceil(preset.frames_per_group);
    let mut t = (0, 0, 0, 0, 0);
    for s in &shared.subscribers {
        let frames = s.frames.load(Relaxed);
        let groups = s.groups.load(Relaxed);
        // A subscriber that received nothing missed everything.
        let (expected_frames, expected_groups) = match frames {
            0 => (published, published_groups),
            _ => s.expected(published, published_groups),
        };
        t.0 += s.bytes.load(Relaxed);
        t.1 += frames;
        t.2 += groups;
        t.3 += expected_frames.saturating_sub(frames);
        t.4 += expected_groups.saturating_sub(groups);
    }
    t
}

/// The per-second lines.
struct Report {
    probe: Option<relay::Probe>,
    last: Instant,
    last_bytes: u64,
    last_cpu: Option<f64>,
}

impl Report {
    fn new(probe: Option<relay::Probe>) -> Self {
        let last_cpu = probe
            .as_ref()
            .and_then(|p| p.sample().ok())
            .map(|s| s.cpu_seconds);
        Self {
            probe,
            last: Instant::now(),
            last_bytes: 0,
            last_cpu,
        }
    }

    fn second(&mut self, shared: &Shared, preset: Preset, start: Instant) {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        let (bytes, frames, groups, lost_frames, lost_groups) = totals(shared, preset);
        let mbps = (bytes - self.last_bytes) as f64 * 8.0 / 1e6 / dt;
        let latency = shared.interval.snapshot(true);
        let relay = match self.probe.as_ref().and_then(|p| p.sample().ok()) {
            Some(s) => {
                let cpu = self
                    .last_cpu
                    .map_or(0.0, |c| (s.cpu_seconds - c) / dt * 100.0);
                self.last_cpu = Some(s.cpu_seconds);
                format!(" | relay cpu {cpu:.0}% rss {:.1} MB", s.rss_mb)
            }
            None => String::new(),
        };
        eprintln!(
            "t={:>4.1}s {mbps:>8.1} Mbps | frames {frames} (missing {lost_frames}) groups {groups} (missing {lost_groups}) | latency p50 {} p99 {} max {} ms{relay}",
            now.duration_since(start).as_secs_f64(),
            fmt_opt(latency.quantile_ms(0.5)),
            fmt_opt(latency.quantile_ms(0.99)),
            fmt_opt(latency.max_ms()),
        );
        self.last = now;
        self.last_bytes = bytes;
    }
}

/// The end-of-run results.
struct Summary {
    json: serde_json::Value,
}

impl Summary {
    fn new(
        shared: &Shared,
        preset: Preset,
        cli: &Cli,
        duration: f64,
        failed: usize,
        relay: Option<(relay::Sample, relay::Sample)>,
        own_cpu: f64,
    ) -> Self {
        let (bytes, frames, groups, lost_frames, lost_groups) = totals(shared, preset);
        let latency = shared.latency.snapshot(false);
        let expected = frames + lost_frames;
        let loss_pct = match expected {
            0 => 100.0,
            e => lost_frames as f64 * 100.0 / e as f64,
        };
        let cpu = relay.map(|(a, b)| b.cpu_seconds - a.cpu_seconds);
        let json = serde_json::json!({
            "preset": preset.name,
            "subscribers": cli.subscribers,
            "subscribers_failed": failed,
            "duration_s": duration,
            "offered_mbps_per_subscriber": preset.mbps(),
            "delivered_mbps": bytes as f64 * 8.0 / 1e6 / duration,
            "frames_published": shared.published.load(Relaxed),
            "frames_received": frames,
            "frames_lost": lost_frames,
            "groups_received": groups,
            "groups_lost": lost_groups,
            "loss_pct": loss_pct,
            "latency_p50_ms": latency.quantile_ms(0.5),
            "latency_p90_ms": latency.quantile_ms(0.9),
            "latency_p99_ms": latency.quantile_ms(0.99),
            "latency_max_ms": latency.max_ms(),
            "setup_median_ms": median_setup_ms(shared),
            "relay_cpu_seconds": cpu,
            "relay_cpu_pct": cpu.map(|c| c / duration * 100.0),
            "relay_rss_mb": relay.map(|(_, b)| b.rss_mb),
            "bench_cpu_pct": own_cpu / duration * 100.0,
        });
        Self { json }
    }

    fn print(&self) {
        let j = &self.json;
        let f = |k: &str| j[k].as_f64().map_or("-".into(), |v| format!("{v:.2}"));
        eprintln!("── moq-bench summary ──────────────────────────────");
        eprintln!(
            "preset {} · {} subscribers ({} failed) · {} s",
            j["preset"].as_str().unwrap_or("?"),
            j["subscribers"],
            j["subscribers_failed"],
            f("duration_s")
        );
        eprintln!(
            "delivered      {} Mbps ({} Mbps offered per subscriber)",
            f("delivered_mbps"),
            f("offered_mbps_per_subscriber")
        );
        eprintln!(
            "frames         {} received, {} lost ({} %)",
            j["frames_received"],
            j["frames_lost"],
            f("loss_pct")
        );
        eprintln!(
            "groups         {} received, {} lost",
            j["groups_received"], j["groups_lost"]
        );
        eprintln!(
            "latency ms     p50 {} · p90 {} · p99 {} · max {}",
            f("latency_p50_ms"),
            f("latency_p90_ms"),
            f("latency_p99_ms"),
            f("latency_max_ms")
        );
        eprintln!("session set-up {} ms (median)", f("setup_median_ms"));
        eprintln!(
            "relay          {} CPU s ({} % of a core) · RSS {} MB",
            f("relay_cpu_seconds"),
            f("relay_cpu_pct"),
            f("relay_rss_mb")
        );
        eprintln!(
            "moq-bench      {} % of a core (near 100 × cores: latency measures this process)",
            f("bench_cpu_pct")
        );
    }

    fn json(&self) -> String {
        self.json.to_string()
    }
}
