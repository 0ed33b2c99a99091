//! `hang`: get live media into and out of a moq relay.
//!
//! - `hang publish --url URL --name NAME [--format fmp4|annex-b] < media`
//! - `hang subscribe --url URL --name NAME [--format fmp4|annex-b] > media`
//! - `hang serve --name NAME [--format ...] < media` (its own server, no relay needed)
//! - `--test-pattern` instead of stdin (publish, serve): a built-in live clock and tone
//!
//! Media goes through stdin/stdout; progress and stats go to stderr.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::BytesMut;
use clap::{Parser, Subcommand, ValueEnum};
use hang::export::{AnnexBExporter, Fmp4Exporter, Fragment};
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
        server: moq_native::ServerConfig,
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
    client: moq_native::ClientConfig,
    #[command(flatten)]
    quic: moq_native::QuicConfig,
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
    let cli = Cli::parse();
    cli.log.init();
    match cli.command {
        Command::Publish {
            connect,
            format,
            fps,
            test_pattern,
        } => publish(connect, Input::new(format, fps, test_pattern)).await,
        Command::Subscribe {
            connect,
            format,
            fragment,
            latency,
        } => subscribe(connect, format, fragment, latency).await,
        Command::Serve {
            name,
            format,
            fps,
            test_pattern,
            server,
        } => serve(name, Input::new(format, fps, test_pattern), server).await,
    }
}

/// Where the published media comes from.
enum Input {
    /// `format` on stdin, Annex-B stamped at `fps`.
    Stdin(Format, f64),
    /// The built-in live source ([`pattern`]).
    TestPattern,
}

impl Input {
    fn new(format: Format, fps: f64, test_pattern: bool) -> Self {
        if test_pattern {
            Input::TestPattern
        } else {
            Input::Stdin(format, fps)
        }
    }

    /// Publish the broadcast at `path` in `origin`; returns at the end of stdin (the pattern
    /// only on failure).
    async fn run(self, origin: &OriginProducer, path: &Path) -> anyhow::Result<()> {
        match self {
            Input::Stdin(format, fps) => import(Importer::new(format, fps), origin, path).await,
            Input::TestPattern => pattern::run(origin, path).await,
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

async fn connect(
    connect: &Connect,
) -> anyhow::Result<(moq_native::Client, moq_native::Connection, Path)> {
    let path = Path::new(&connect.name).context("invalid --name")?;
    let mut config = connect.client.clone();
    config.quic = connect.quic.clone();
    let client = moq_native::Client::new(config)?;
    let connection = client
        .connect(connect.url.clone())
        .await
        .with_context(|| format!("cannot connect to {}", connect.url))?;
    Ok((client, connection, path))
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
        let shown = wall.saturating_add(frame.timestamp);
        let behind = hang::catalog::wall_now_us() as i64 - shown as i64;
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

async fn publish(connect_args: Connect, input: Input) -> anyhow::Result<()> {
    let (client, connection, path) = connect(&connect_args).await?;
    let origin = OriginProducer::new();
    let session = moq_lite::Client::new()
        .with_setup_path(connection.setup_path)
        .publish(origin.consume())
        .connect(connection.session)
        .await?;
    tracing::info!(version = %session.version(), "connected");
    let result = tokio::select! {
        res = input.run(&origin, &path) => res,
        err = session.closed() => Err(anyhow::anyhow!("session closed: {err}")),
        _ = report(&session, "out", None) => unreachable!("report never ends"),
        _ = interrupted() => {
            tracing::info!("interrupted: closing the session");
            hang_up(&client, &session).await;
            return Ok(());
        }
    };
    // Let what is in flight reach the relay before hanging up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    hang_up(&client, &session).await;
    result
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
async fn hang_up(client: &moq_native::Client, session: &Session) {
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

async fn subscribe(
    connect_args: Connect,
    format: Format,
    fragment: FragmentArg,
    latency: u64,
) -> anyhow::Result<()> {
    let (client, connection, path) = connect(&connect_args).await?;
    let origin = OriginProducer::new();
    let session = moq_lite::Client::new()
        .with_setup_path(connection.setup_path)
        .subscribe(origin.clone())
        .connect(connection.session)
        .await?;
    tracing::info!(version = %session.version(), broadcast = %path, "waiting for the broadcast");
    let latency = if latency == 0 {
        Duration::MAX
    } else {
        Duration::from_millis(latency)
    };
    let latency_ms = Arc::new(AtomicI64::new(i64::MIN));
    let measured = latency_ms.clone();
    let run = async {
        let broadcast = origin.consume().wait_for_broadcast(&path).await?;
        tracing::info!(broadcast = %path, "broadcast found");
        let consumer = hang::BroadcastConsumer::new(broadcast);
        tokio::spawn(measure_latency(consumer.clone(), measured, latency));
        let stdout = tokio::io::stdout();
        match format {
            Format::Fmp4 => {
                let fragment = match fragment {
                    FragmentArg::Frame => Fragment::Frame,
                    FragmentArg::Group => Fragment::Group,
                };
                Fmp4Exporter::new(consumer)
                    .fragment(fragment)
                    .latency(latency)
                    .run(stdout)
                    .await?
            }
            Format::AnnexB => {
                AnnexBExporter::new(consumer)
                    .latency(latency)
                    .run(stdout)
                    .await?
            }
        }
        anyhow::Ok(())
    };
    tokio::pin!(run);
    let result = tokio::select! {
        res = &mut run => res,
        err = session.closed() => Err(anyhow::anyhow!("session closed: {err}")),
        _ = report(&session, "in", Some(latency_ms.clone())) => unreachable!("report never ends"),
        _ = interrupted() => {
            // Leave a playable file: end the session so the exporter stops at its next read,
            // letting the fragment it is writing complete (dropping it mid-write would not).
            tracing::info!("interrupted: finishing the current fragment");
            session.close(moq_lite::Error::Cancel);
            let _ = tokio::time::timeout(Duration::from_secs(2), &mut run).await;
            Ok(())
        }
    };
    hang_up(&client, &session).await;
    result
}

async fn serve(name: String, input: Input, config: moq_native::ServerConfig) -> anyhow::Result<()> {
    let path = Path::new(&name).context("invalid --name")?;
    let mut server = moq_native::Server::new(config)?;
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
