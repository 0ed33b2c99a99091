//! `hang`: get live media into and out of a moq relay.
//!
//! - `hang publish --url URL --name NAME [--format fmp4|annex-b] < media`
//! - `hang subscribe --url URL --name NAME [--format fmp4|annex-b] > media`
//! - `hang serve --name NAME [--format ...] < media` (its own server, no relay needed)
//! - `--test-pattern` instead of stdin (publish, serve): a built-in live clock and tone
//!
//! Media goes through stdin/stdout; progress and stats go to stderr.
//!
//! `publish` and `subscribe` connect again when the relay goes away (`--no-reconnect`: exit with
//! the error instead): the publisher keeps reading its input meanwhile and announces the same
//! broadcast on each new session; the subscriber's output goes on as one stream.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::BytesMut;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use hang::export::{AnnexBExporter, ExportError, Fmp4Exporter, Fmp4Resume, Fragment};
use hang::import::{AnnexBImporter, Fmp4Importer};
use moq_lite::{Metric, OriginProducer, Path, Session};
use tokio::io::AsyncReadExt;
use url::Url;

mod pattern;

/// Publish live media (fMP4 from ffmpeg, or raw H.264 Annex-B) to a moq relay, or play a
/// broadcast back out as fMP4 / Annex-B. Media on stdin/stdout, logs and stats on stderr.
#[derive(Parser, Debug)]
#[command(name = "hang", version, about)]
struct Cli {
    #[command(flatten)]
    log: moq_native::Log,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Read media from stdin (or make it: --test-pattern) and publish it as a hang broadcast
    /// through a relay.
    Publish {
        #[command(flatten)]
        connect: Connect,
        /// Input format on stdin.
        #[arg(long, value_enum, default_value_t = Format::Fmp4)]
        format: Format,
        /// Frame rate of Annex-B input (it carries no timestamps).
        #[arg(long, default_value_t = 30.0)]
        fps: f64,
        /// Publish a built-in live source instead of reading stdin: H.264 640x360 at 30 fps
        /// showing the UTC wall clock and a frame counter, plus a 440 Hz Opus tone.
        #[arg(long, conflicts_with_all = ["format", "fps"])]
        test_pattern: bool,
        /// Simulcast the test pattern: one H.264 track per rendition, `WIDTHxHEIGHT@KBPS`,
        /// comma-separated (e.g. `640x360@1200,320x180@300`), keyframes aligned across them.
        /// Default: one 640x360 rendition at a constant quantiser.
        #[arg(long, value_delimiter = ',', requires = "test_pattern")]
        renditions: Vec<pattern::Rendition>,
    },
    /// Subscribe to a hang broadcast and write it to stdout.
    Subscribe {
        #[command(flatten)]
        connect: Connect,
        /// Output format on stdout.
        #[arg(long, value_enum, default_value_t = Format::Fmp4)]
        format: Format,
        /// fMP4 fragments: one per frame (lowest latency) or one per group.
        #[arg(long, value_enum, default_value_t = FragmentArg::Frame)]
        fragment: FragmentArg,
        /// Skip ahead when the output falls this far behind live (ms); also sent to the relay as
        /// the subscription's max latency, so it drops what would arrive later than that.
        /// 0 = no target: skip only what the relay dropped or starves (a group whose rest has not
        /// come while a newer one is 500 ms ahead), so the output never stalls.
        #[arg(long, default_value_t = 0)]
        latency: u64,
        /// Adaptive bitrate: of a broadcast with several H.264 renditions (simulcast), write the
        /// one the link carries, switching at keyframes: down at once when the output falls
        /// behind, up when the link's measured capacity (the rate at which keyframes and
        /// fragments arrive, capped by the relay's PROBE) has had room for the next one for 4 s.
        /// Annex-B output logs an `output` line a second (rendition, frames, longest pause, groups
        /// skipped); with `--abr` also the estimate and the switches.
        /// Needs `--format annex-b` (the parameter sets in each group let the stream change
        /// size).
        #[arg(long)]
        abr: bool,
    },
    /// Act as a server for one broadcast read from stdin (or --test-pattern): viewers connect
    /// straight to us.
    Serve {
        /// The broadcast name viewers subscribe to.
        #[arg(long)]
        name: String,
        /// Input format on stdin.
        #[arg(long, value_enum, default_value_t = Format::Fmp4)]
        format: Format,
        /// Frame rate of Annex-B input.
        #[arg(long, default_value_t = 30.0)]
        fps: f64,
        /// Serve a built-in live source instead of reading stdin: H.264 640x360 at 30 fps
        /// showing the UTC wall clock and a frame counter, plus a 440 Hz Opus tone.
        #[arg(long, conflicts_with_all = ["format", "fps"])]
        test_pattern: bool,
        #[command(flatten)]
        server: moq_native::QuicServerConfig,
    },
}

/// Where to connect and what to call the broadcast.
#[derive(clap::Args, Debug)]
struct Connect {
    /// Relay URL: https://host:port/path (WebTransport), http://... (pin the certificate served
    /// at /certificate.sha256; local development), moql://host:port/path (raw QUIC).
    #[arg(long, env = "MOQ_URL")]
    url: Url,
    /// Broadcast name, relative to the URL path (e.g. `bbb.hang`).
    #[arg(long, env = "MOQ_NAME")]
    name: String,
    #[command(flatten)]
    client: moq_native::QuicClientConfig,
    #[command(flatten)]
    quic: moq_native::QuicConfig,
    #[command(flatten)]
    reconnect: moq_native::ReconnectConfig,
}

impl Connect {
    /// The broadcast path.
    fn path(&self) -> anyhow::Result<Path> {
        Path::new(&self.name).context("invalid --name")
    }

    /// The client endpoint, reused by every (re)connection.
    fn client(&self) -> anyhow::Result<moq_native::QuicClient> {
        let mut config = self.client.clone();
        config.quic = self.quic.clone();
        Ok(moq_native::QuicClient::new(config)?)
    }

    /// Dial the relay and open a moq-lite session set up by `role` (publish or subscribe an origin).
    async fn open(
        &self,
        client: &moq_native::QuicClient,
        role: impl FnOnce(moq_lite::Client) -> moq_lite::Client,
    ) -> anyhow::Result<Session> {
        let connection = client
            .connect_any(self.url.clone())
            .await
            .with_context(|| format!("cannot connect to {}", self.url))?;
        let session = role(moq_lite::Client::new().with_setup_path(connection.setup_path))
            .connect(connection.session)
            .await
            .with_context(|| format!("moq session with {} failed", self.url))?;
        tracing::info!(version = %session.version(), url = %self.url, "session open");
        Ok(session)
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// Fragmented MP4 / CMAF (ffmpeg `-f mp4 -movflags cmaf+separate_moof+delay_moov+...`).
    Fmp4,
    /// Raw H.264 Annex-B (ffmpeg `-f h264`).
    AnnexB,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum FragmentArg {
    Frame,
    Group,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The clients notice a vanished relay within seconds (moq_native::QuicConfig::client_defaults).
    let command = ["publish", "subscribe"]
        .into_iter()
        .fold(Cli::command(), |c, name| {
            c.mut_subcommand(name, moq_native::QuicConfig::client_defaults)
        });
    let cli = Cli::from_arg_matches_mut(&mut command.get_matches())?;
    cli.log.init();
    match cli.command {
        Command::Publish {
            connect,
            format,
            fps,
            test_pattern,
            renditions,
        } => publish(connect, Input::new(format, fps, test_pattern, renditions)).await,
        Command::Subscribe {
            connect,
            format,
            fragment,
            latency,
            abr,
        } => {
            if abr && format != Format::AnnexB {
                anyhow::bail!(
                    "--abr needs --format annex-b: an fMP4 track cannot change size mid-stream"
                );
            }
            subscribe(connect, format, fragment, latency, abr).await
        }
        Command::Serve {
            name,
            format,
            fps,
            test_pattern,
            server,
        } => {
            serve(
                name,
                Input::new(format, fps, test_pattern, Vec::new()),
                server,
            )
            .await
        }
    }
}

/// Where the published media comes from.
enum Input {
    /// `format` on stdin, Annex-B stamped at `fps`.
    Stdin(Format, f64),
    /// The built-in live source ([`pattern`]), with these video renditions (empty: the default).
    TestPattern(Vec<pattern::Rendition>),
}

impl Input {
    fn new(
        format: Format,
        fps: f64,
        test_pattern: bool,
        renditions: Vec<pattern::Rendition>,
    ) -> Self {
        if test_pattern {
            Input::TestPattern(renditions)
        } else {
            Input::Stdin(format, fps)
        }
    }

    /// Publish the broadcast at `path` in `origin`; returns at the end of stdin (the pattern
    /// only on failure).
    async fn run(self, origin: &OriginProducer, path: &Path) -> anyhow::Result<()> {
        match self {
            Input::Stdin(format, fps) => import(Importer::new(format, fps), origin, path).await,
            Input::TestPattern(renditions) => pattern::run(origin, path, &renditions).await,
        }
    }
}

/// The importer for `format`, fed from stdin.
enum Importer {
    Fmp4(Fmp4Importer),
    AnnexB(AnnexBImporter),
}

impl Importer {
    fn new(format: Format, fps: f64) -> Self {
        let broadcast = hang::BroadcastProducer::new();
        match format {
            Format::Fmp4 => Importer::Fmp4(Fmp4Importer::new(broadcast)),
            Format::AnnexB => Importer::AnnexB(AnnexBImporter::new(broadcast).with_frame_rate(fps)),
        }
    }

    fn decode(&mut self, buf: &mut BytesMut) -> anyhow::Result<()> {
        match self {
            Importer::Fmp4(i) => i.decode(buf)?,
            Importer::AnnexB(i) => i.decode(buf)?,
        }
        Ok(())
    }

    fn finish(&mut self, buf: &mut BytesMut) -> anyhow::Result<()> {
        match self {
            Importer::Fmp4(i) => i.finish(buf)?,
            Importer::AnnexB(i) => i.finish(buf)?,
        }
        Ok(())
    }

    fn is_initialized(&self) -> bool {
        match self {
            Importer::Fmp4(i) => i.is_initialized(),
            Importer::AnnexB(i) => i.is_initialized(),
        }
    }

    fn broadcast_mut(&mut self) -> &mut hang::BroadcastProducer {
        match self {
            Importer::Fmp4(i) => i.broadcast_mut(),
            Importer::AnnexB(i) => i.broadcast_mut(),
        }
    }

    fn broadcast(&self) -> &hang::BroadcastProducer {
        match self {
            Importer::Fmp4(i) => i.broadcast(),
            Importer::AnnexB(i) => i.broadcast(),
        }
    }
}

/// Read stdin into the importer; once the catalog exists, publish the broadcast at `path` in
/// `origin`. Returns at the end of stdin.
async fn import(
    mut importer: Importer,
    origin: &OriginProducer,
    path: &Path,
) -> anyhow::Result<()> {
    let mut stdin = tokio::io::stdin();
    let mut buf = BytesMut::with_capacity(1 << 20);
    let mut published = false;
    loop {
        let n = stdin.read_buf(&mut buf).await.context("reading stdin")?;
        if n == 0 {
            importer.finish(&mut buf).context("input ended")?;
            tracing::info!("input ended");
            return Ok(());
        }
        importer.decode(&mut buf).context("invalid input")?;
        if !published && importer.is_initialized() {
            // Media time starts at 0 now: anchor it so viewers can measure latency.
            let broadcast = importer.broadcast_mut();
            broadcast
                .catalog_mut()
                .set_clock(hang::catalog::wall_now_us());
            broadcast.publish_catalog()?;
            origin.publish_broadcast(path, importer.broadcast().inner().consume())?;
            tracing::info!(broadcast = %path, catalog = %serde_summary(importer.broadcast()), "publishing");
            published = true;
        }
    }
}

fn serde_summary(broadcast: &hang::BroadcastProducer) -> String {
    let catalog = broadcast.catalog();
    let video: Vec<String> = catalog
        .video_renditions()
        .map(|(n, c)| format!("{n}={}", c.codec))
        .collect();
    let audio: Vec<String> = catalog
        .audio_renditions()
        .map(|(n, c)| format!("{n}={}", c.codec))
        .collect();
    format!("video[{}] audio[{}]", video.join(","), audio.join(","))
}

/// Follow the first legacy video rendition's timestamps and keep the end-to-end latency (ms) of
/// the newest frame, when the publisher anchored its media time to the wall clock. It reads with
/// the output's latency target, so it skips what the output skips (and asks the relay for no
/// more than the output does).
async fn measure_latency(
    consumer: hang::BroadcastConsumer,
    latency_ms: Arc<AtomicI64>,
    target: Duration,
) -> anyhow::Result<()> {
    let mut catalogs = consumer.catalog();
    let Some(catalog) = catalogs.next().await? else {
        return Ok(());
    };
    let Some(wall) = catalog.clock() else {
        return Ok(());
    };
    let legacy = catalog
        .video_renditions()
        .find(|(_, c)| matches!(c.container, hang::catalog::Container::Legacy));
    let Some((name, _)) = legacy else {
        return Ok(());
    };
    let mut track = consumer.subscribe(name, target);
    while let Some(frame) = track.read().await? {
        let behind = hang::catalog::age_us(wall, frame.timestamp);
        latency_ms.store(behind / 1000, Ordering::Relaxed);
    }
    Ok(())
}

/// Log traffic once a second: bitrate, frames per second, groups, and (subscribers of an anchored
/// broadcast) end-to-end latency.
async fn report(session: &Session, direction: &str, latency_ms: Option<Arc<AtomicI64>>) {
    let (bytes, frames, groups) = match direction {
        "in" => (Metric::BytesIn, Metric::FramesIn, Metric::GroupsIn),
        _ => (Metric::BytesOut, Metric::FramesOut, Metric::GroupsOut),
    };
    let stats = session.stats().clone();
    let mut last = (0, 0);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = (stats.get(bytes), stats.get(frames));
        let kbps = (now.0 - last.0) * 8 / 1000;
        let latency = latency_ms
            .as_ref()
            .map(|l| l.load(Ordering::Relaxed))
            .filter(|l| *l != i64::MIN);
        match latency {
            Some(latency_ms) => tracing::info!(
                kbps,
                fps = now.1 - last.1,
                groups = stats.get(groups),
                latency_ms,
                "{direction}"
            ),
            None => tracing::info!(
                kbps,
                fps = now.1 - last.1,
                groups = stats.get(groups),
                "{direction}"
            ),
        }
        last = now;
    }
}

/// Publish `input` through the relay, connecting again whenever the session is lost.
///
/// The input runs for the whole process, not per session: it goes on reading (and the broadcast
/// goes on filling) while the relay is away, and each new session announces the same broadcast,
/// so the relay and its viewers pick it up again at its current group.
async fn publish(args: Connect, input: Input) -> anyhow::Result<()> {
    let path = args.path()?;
    let client = args.client()?;
    let origin = OriginProducer::new();
    let mut reconnect = moq_native::Reconnect::new(&args.reconnect);
    let input = input.run(&origin, &path);
    let interrupted = interrupted();
    tokio::pin!(input, interrupted);
    loop {
        let opened = tokio::select! {
            res = &mut input => return res,
            _ = &mut interrupted => return Ok(()),
            res = args.open(&client, |c| c.publish(origin.consume())) => res,
        };
        let delay = match opened {
            Ok(session) => {
                let up = reconnect.connected();
                let lost = tokio::select! {
                    res = &mut input => {
                        // Let what is in flight reach the relay before hanging up.
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        hang_up(&client, &session).await;
                        return res;
                    }
                    err = session.closed() => anyhow::anyhow!("session closed: {err}"),
                    _ = report(&session, "out", None) => unreachable!("report never ends"),
                    _ = &mut interrupted => {
                        tracing::info!("interrupted: closing the session");
                        hang_up(&client, &session).await;
                        return Ok(());
                    }
                };
                reconnect.retry(lost, Some(up))?
            }
            Err(err) => reconnect.retry(err, None)?,
        };
        tokio::select! {
            res = &mut input => return res,
            _ = &mut interrupted => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn interrupted() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

/// Close the session cleanly so the relay ends our broadcasts at once (a vanished peer is only
/// noticed at the QUIC idle timeout), and wait until the CONNECTION_CLOSE has left: exiting
/// straight after `close` can lose it when the machine is busy.
async fn hang_up(client: &moq_native::QuicClient, session: &Session) {
    session.close(moq_lite::Error::Cancel);
    if tokio::time::timeout(HANG_UP_TIMEOUT, client.wait_idle())
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?HANG_UP_TIMEOUT, "the connection did not finish closing");
    }
}

/// How long [`hang_up`] waits for the connection to finish closing.
const HANG_UP_TIMEOUT: Duration = Duration::from_secs(2);

/// Write the broadcast to stdout, connecting again whenever the session is lost; the output
/// goes on as one stream (fMP4: one init segment while the catalog stays the same, see
/// [`Fmp4Resume`]). Ends when the broadcast ends.
async fn subscribe(
    args: Connect,
    format: Format,
    fragment: FragmentArg,
    latency: u64,
    abr: bool,
) -> anyhow::Result<()> {
    let path = args.path()?;
    let client = args.client()?;
    let mut reconnect = moq_native::Reconnect::new(&args.reconnect);
    let mut export = Export {
        format,
        fragment: match fragment {
            FragmentArg::Frame => Fragment::Frame,
            FragmentArg::Group => Fragment::Group,
        },
        latency: match latency {
            0 => Duration::MAX,
            ms => Duration::from_millis(ms),
        },
        latency_ms: Arc::new(AtomicI64::new(i64::MIN)),
        abr,
        probe: None,
    };
    let mut resume = Fmp4Resume::default();
    let interrupted = interrupted();
    tokio::pin!(interrupted);
    loop {
        // A new origin per session: the previous one's broadcast ended with its session.
        let origin = OriginProducer::new();
        let opened = tokio::select! {
            _ = &mut interrupted => return Ok(()),
            res = args.open(&client, |c| c.subscribe(origin.clone())) => res,
        };
        let delay = match opened {
            Ok(session) => {
                let up = reconnect.connected();
                // Adaptive bitrate moves up on the relay's estimates of what it could send us.
                let _probes = match export.abr {
                    true => {
                        let (probes, task) = probe_reports(&session).await;
                        export.probe = probes;
                        task
                    }
                    false => None,
                };
                let ended = tokio::select! {
                    res = export.session(&session, &origin, &path, &mut resume, &mut interrupted) => res,
                    _ = report(&session, "in", Some(export.latency_ms.clone())) => unreachable!("report never ends"),
                };
                hang_up(&client, &session).await;
                match ended {
                    Ok(()) => return Ok(()),
                    Err(Ended::Fatal(err)) => return Err(err),
                    Err(Ended::Lost(err)) => reconnect.retry(err, Some(up))?,
                }
            }
            Err(err) => reconnect.retry(err, None)?,
        };
        tokio::select! {
            _ = &mut interrupted => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// The peer's PROBE reports as a watch of its bitrate estimate, fed by a task that ends when the
/// returned guard is dropped; nothing when the peer does not answer PROBE (before lite-03).
async fn probe_reports(
    session: &Session,
) -> (
    Option<tokio::sync::watch::Receiver<u64>>,
    Option<AbortOnDrop>,
) {
    let mut reports = match session.probe().await {
        Ok(reports) => reports,
        Err(err) => {
            tracing::info!(%err, "no PROBE reports: adaptive bitrate will only move down");
            return (None, None);
        }
    };
    let (tx, rx) = tokio::sync::watch::channel(0);
    let task = tokio::spawn(async move {
        while let Ok(Some(probe)) = reports.next().await {
            tracing::debug!(bitrate = probe.bitrate, rtt_ms = probe.rtt_ms, "probe");
            if tx.send(probe.bitrate).is_err() {
                return;
            }
        }
    });
    (Some(rx), Some(AbortOnDrop(task)))
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A lost session, as the reason to reconnect.
fn lost(err: moq_lite::Error) -> Ended {
    Ended::Lost(anyhow::anyhow!("session closed: {err}"))
}

/// Why one session's export stopped before the broadcast ended.
enum Ended {
    /// The session or the broadcast went away: connect again.
    Lost(anyhow::Error),
    /// Nothing a new session would change (stdout closed, a rendition we cannot write).
    Fatal(anyhow::Error),
}

impl From<ExportError> for Ended {
    fn from(err: ExportError) -> Self {
        match err {
            // A read failed (the session was lost), or the catalog track ended with it.
            ExportError::Model(_) | ExportError::NoCatalog => Ended::Lost(err.into()),
            _ => Ended::Fatal(err.into()),
        }
    }
}

/// How `hang subscribe` writes the broadcast.
struct Export {
    format: Format,
    fragment: Fragment,
    latency: Duration,
    /// The end-to-end latency of the newest frame, for the stats line.
    latency_ms: Arc<AtomicI64>,
    /// Adaptive bitrate among the broadcast's renditions (`--abr`).
    abr: bool,
    /// The session's PROBE reports (bits per second), for adaptive bitrate.
    probe: Option<tokio::sync::watch::Receiver<u64>>,
}

impl Export {
    /// Over one session: wait for the broadcast at `path` in `origin` and write it to stdout,
    /// continuing the output that `resume` describes. Returns when the broadcast ends, or
    /// `interrupted` resolves (SIGINT, SIGTERM).
    async fn session(
        &self,
        session: &Session,
        origin: &OriginProducer,
        path: &Path,
        resume: &mut Fmp4Resume,
        interrupted: &mut (impl std::future::Future<Output = ()> + Unpin),
    ) -> Result<(), Ended> {
        tracing::info!(broadcast = %path, "waiting for the broadcast");
        let wanted = origin.consume();
        let broadcast = tokio::select! {
            res = wanted.wait_for_broadcast(path) => res.map_err(|err| Ended::Lost(err.into()))?,
            err = session.closed() => return Err(lost(err)),
            _ = &mut *interrupted => return Ok(()),
        };
        tracing::info!(broadcast = %path, "broadcast found");
        let run = self.run(hang::BroadcastConsumer::new(broadcast), resume);
        tokio::pin!(run);
        tokio::select! {
            res = &mut run => res,
            err = session.closed() => {
                // The exporter's reads fail in a moment: let it end between two writes.
                let _ = tokio::time::timeout(Duration::from_secs(2), &mut run).await;
                Err(lost(err))
            }
            _ = interrupted => {
                // Leave a playable file: end the session so the exporter stops at its next read,
                // letting the fragment it is writing complete (dropping it mid-write would not).
                tracing::info!("interrupted: finishing the current fragment");
                session.close(moq_lite::Error::Cancel);
                let _ = tokio::time::timeout(Duration::from_secs(2), &mut run).await;
                Ok(())
            }
        }
    }

    /// Write `consumer`'s broadcast to stdout, continuing the output that `resume` describes;
    /// returns when the broadcast ends.
    async fn run(
        &self,
        consumer: hang::BroadcastConsumer,
        resume: &mut Fmp4Resume,
    ) -> Result<(), Ended> {
        // With --abr the exporter measures it on the frames it writes: a reader of its own would
        // pull a rendition of its own over the link.
        if !self.abr {
            tokio::spawn(measure_latency(
                consumer.clone(),
                self.latency_ms.clone(),
                self.latency,
            ));
        }
        let stdout = tokio::io::stdout();
        match self.format {
            Format::Fmp4 => {
                Fmp4Exporter::new(consumer)
                    .fragment(self.fragment)
                    .latency(self.latency)
                    .resume(resume, stdout)
                    .await?
            }
            Format::AnnexB => {
                // Every group starts with parameter sets and a keyframe: the stream simply goes on.
                let exporter = AnnexBExporter::new(consumer).latency(self.latency);
                let exporter = match self.abr {
                    true => exporter
                        .abr(hang::abr::AbrConfig::default(), self.probe.clone())
                        .latency_gauge(self.latency_ms.clone()),
                    false => exporter,
                };
                exporter.run(stdout).await?
            }
        }
        Ok(())
    }
}

async fn serve(
    name: String,
    input: Input,
    config: moq_native::QuicServerConfig,
) -> anyhow::Result<()> {
    let path = Path::new(&name).context("invalid --name")?;
    let mut server = moq_native::QuicServer::new(config)?;
    let addr = server.local_addr()?;
    let fingerprint = server.fingerprints().first().cloned().unwrap_or_default();
    // The fingerprint endpoint on the same port number over TCP, for http:// URLs.
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind TCP {addr}"))?;
    tokio::spawn(moq_native::serve_fingerprint(listener, fingerprint.clone()));
    tracing::info!(%addr, %fingerprint, broadcast = %path, "serving");

    let origin = OriginProducer::new();
    let sessions = origin.clone();
    let accept = async move {
        let mut live = Vec::new();
        while let Some(request) = server.accept().await {
            let transport = match request.ok().await {
                Ok(t) => t,
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    continue;
                }
            };
            match moq_lite::Server::new()
                .publish(sessions.consume())
                .accept(transport)
                .await
            {
                Ok(session) => {
                    tracing::info!(version = %session.version(), "viewer connected");
                    live.retain(|s: &Session| s.stats().get(Metric::Sessions) > 0);
                    live.push(session);
                }
                Err(err) => tracing::warn!(%err, "session failed"),
            }
        }
    };
    tokio::select! {
        res = input.run(&origin, &path) => res,
        _ = accept => Ok(()),
    }
}
