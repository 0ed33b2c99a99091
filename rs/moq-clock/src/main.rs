//! `moq-clock`: the simplest moq application, and an interop check against other implementations.
//!
//! `publish` announces a broadcast with one track: a group per minute (its sequence is the minute
//! number since the Unix epoch) whose first frame is `YYYY-MM-DD HH:MM:` and whose next frames are
//! the seconds `SS`. `subscribe` discovers the broadcast and prints one line per second on stdout
//! (logs go to stderr). The format is the reference clock's, so either side works with it.
//!
//! Both connect again when the relay goes away (`--no-reconnect`: exit with the error instead):
//! the publisher's clock keeps ticking into the same broadcast, announced again on each new
//! session; the subscriber prints each second once, skipping the ones a new session sends again.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use moq_lite::{BroadcastProducer, OriginProducer, Path, Track, TrackInfo, TrackProducer};
use url::Url;

/// Publish the time over moq-lite, or print it as a subscriber.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Relay URL: `https://host:port/path` (WebTransport), `http://…` (fetch and pin the
    /// certificate fingerprint first, for local development), or `moql://host:port/path` (raw QUIC).
    #[arg(long, env = "MOQ_URL")]
    url: Url,

    /// Broadcast path, relative to the URL path.
    #[arg(long, env = "MOQ_BROADCAST")]
    broadcast: String,

    /// Track name.
    #[arg(long, default_value = "seconds")]
    track: String,

    #[command(flatten)]
    client: moq_native::QuicClientConfig,

    #[command(flatten)]
    quic: moq_native::QuicConfig,

    #[command(flatten)]
    reconnect: moq_native::ReconnectConfig,

    #[command(flatten)]
    log: moq_native::Log,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    /// Publish the clock.
    Publish,
    /// Print the clock, one line per second.
    Subscribe,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Notice a vanished relay within seconds (moq_native::QuicConfig::client_defaults).
    let command = moq_native::QuicConfig::client_defaults(Cli::command());
    let mut cli = Cli::from_arg_matches_mut(&mut command.get_matches())?;
    cli.log.init();
    cli.client.quic = cli.quic.clone();
    let path = Path::new(&cli.broadcast).context("invalid --broadcast")?;
    let native = moq_native::QuicClient::new(cli.client.clone())?;
    match cli.command {
        Command::Publish => run_publisher(&cli, &native, path).await,
        Command::Subscribe => run_subscriber(&cli, &native, path).await,
    }
}

/// Dial the relay and open a moq-lite session set up by `role` (publish or subscribe an origin).
async fn open(
    cli: &Cli,
    native: &moq_native::QuicClient,
    role: impl FnOnce(moq_lite::Client) -> moq_lite::Client,
) -> anyhow::Result<moq_lite::Session> {
    tracing::info!(url = %cli.url, "connecting");
    let connection = native
        .connect_any(cli.url.clone())
        .await
        .with_context(|| format!("cannot connect to {}", cli.url))?;
    let client = moq_lite::Client::new().with_setup_path(connection.setup_path);
    let session = role(client).connect(connection.session).await?;
    Ok(session)
}

/// Publish the clock, connecting again whenever the session is lost. The clock and its broadcast
/// live for the whole process; each new session announces the broadcast again.
async fn run_publisher(
    cli: &Cli,
    native: &moq_native::QuicClient,
    path: Path,
) -> anyhow::Result<()> {
    let origin = OriginProducer::new();
    let broadcast = BroadcastProducer::new();
    let track = broadcast.create_track(Track::new(&cli.track), TrackInfo::default());
    origin.publish_broadcast(&path, broadcast.consume())?;
    let mut reconnect = moq_native::Reconnect::new(&cli.reconnect);
    let clock = publish(track);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(clock, interrupted);
    loop {
        let opened = tokio::select! {
            res = &mut clock => return res,
            _ = &mut interrupted => return Ok(()),
            res = open(cli, native, |c| c.publish(origin.consume())) => res,
        };
        let delay = match opened {
            Ok(session) => {
                let up = reconnect.connected();
                tracing::info!(version = %session.version(), broadcast = %path, "publishing");
                let lost = tokio::select! {
                    res = &mut clock => {
                        hang_up(native, &session).await;
                        return res;
                    }
                    err = session.closed() => anyhow::anyhow!("session closed: {err}"),
                    _ = &mut interrupted => {
                        hang_up(native, &session).await;
                        return Ok(());
                    }
                };
                reconnect.retry(lost, Some(up))?
            }
            Err(err) => reconnect.retry(err, None)?,
        };
        tokio::select! {
            res = &mut clock => return res,
            _ = &mut interrupted => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Print the clock, connecting again whenever the session is lost.
async fn run_subscriber(
    cli: &Cli,
    native: &moq_native::QuicClient,
    path: Path,
) -> anyhow::Result<()> {
    let mut reconnect = moq_native::Reconnect::new(&cli.reconnect);
    let mut printed = Printed::default();
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        // A new origin per session: the previous one's broadcast ended with its session.
        let origin = OriginProducer::new();
        let opened = tokio::select! {
            _ = &mut interrupted => return Ok(()),
            res = open(cli, native, |c| c.subscribe(origin.clone())) => res,
        };
        let delay = match opened {
            Ok(session) => {
                let up = reconnect.connected();
                tracing::info!(version = %session.version(), broadcast = %path, "waiting for the broadcast");
                let lost = tokio::select! {
                    res = subscribe(origin, path.clone(), &cli.track, &mut printed) => match res {
                        Ok(never) => match never {},
                        Err(err) => err,
                    },
                    err = session.closed() => anyhow::anyhow!("session closed: {err}"),
                    _ = &mut interrupted => {
                        hang_up(native, &session).await;
                        return Ok(());
                    }
                };
                hang_up(native, &session).await;
                reconnect.retry(lost, Some(up))?
            }
            Err(err) => reconnect.retry(err, None)?,
        };
        tokio::select! {
            _ = &mut interrupted => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Close the session and wait (bounded) until the CONNECTION_CLOSE has left, so the relay ends
/// our broadcast at once rather than at its idle timeout.
async fn hang_up(native: &moq_native::QuicClient, session: &moq_lite::Session) {
    session.close(moq_lite::Error::Cancel);
    let _ = tokio::time::timeout(Duration::from_secs(2), native.wait_idle()).await;
}

/// Write a group per minute and a frame per second, forever.
async fn publish(track: TrackProducer) -> anyhow::Result<()> {
    loop {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
        let minute = now.as_secs() / 60;
        let mut group = track.create_group(moq_lite::Group { sequence: minute })?;
        group.write_frame(now.as_millis() as u64, Bytes::from(format_minute(minute)))?;
        loop {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
            if now.as_secs() / 60 != minute {
                break;
            }
            group.write_frame(
                now.as_millis() as u64,
                Bytes::from(format!("{:02}", now.as_secs() % 60)),
            )?;
            // Sleep to the next whole second.
            let to_next = Duration::from_millis(1000 - (now.as_millis() % 1000) as u64);
            tokio::time::sleep(to_next).await;
        }
        group.finish();
    }
}

/// The newest line printed. Lines sort as the times they show, so a line not after it was
/// printed already: a new session starts again at the current minute's first second.
#[derive(Default)]
struct Printed(Option<String>);

impl Printed {
    /// Print `line` unless it was printed already.
    fn print(&mut self, line: String) {
        if self.0.as_ref().is_some_and(|last| line <= *last) {
            return;
        }
        println!("{line}");
        self.0 = Some(line);
    }
}

/// Print `base + seconds` for every frame of every group, as they arrive; waits for the broadcast
/// again whenever it ends. Returns only on error.
async fn subscribe(
    origin: OriginProducer,
    path: Path,
    track: &str,
    printed: &mut Printed,
) -> anyhow::Result<std::convert::Infallible> {
    loop {
        let broadcast = origin.consume().wait_for_broadcast(&path).await?;
        tracing::info!(broadcast = %path, "broadcast found");
        let mut consumer = broadcast.subscribe_track(&Track::new(track));
        consumer.set_max_latency(Duration::from_secs(60));
        loop {
            let group = match consumer.next_group().await {
                Ok(Some(group)) => group,
                Ok(None) => break,
                Err(err) => {
                    tracing::warn!(%err, "track ended");
                    break;
                }
            };
            if let Err(err) = print_group(group, printed).await {
                tracing::warn!(%err, "group ended early");
            }
        }
        // The broadcast ended: wait for it to come back.
        let _ = broadcast.closed().await;
    }
}

async fn print_group(
    mut group: moq_lite::GroupConsumer,
    printed: &mut Printed,
) -> anyhow::Result<()> {
    let Some((_, base)) = group.read_frame().await? else {
        return Ok(());
    };
    let base = String::from_utf8_lossy(&base).into_owned();
    while let Some((_, seconds)) = group.read_frame().await? {
        printed.print(format!("{base}{}", String::from_utf8_lossy(&seconds)));
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM:` in UTC for a minute number since the Unix epoch.
fn format_minute(minute: u64) -> String {
    let days = (minute / (24 * 60)) as i64;
    let (year, month, day) = civil_from_days(days);
    let hour = (minute / 60) % 24;
    let min = minute % 60;
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{min:02}:")
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_sent_again_is_printed_once() {
        let mut printed = Printed::default();
        printed.print("2026-11-27 18:36:58".into());
        printed.print("2026-11-27 18:36:59".into());
        // A new session starts again at the minute's first second.
        printed.print("2026-11-27 18:36:00".into());
        printed.print("2026-11-27 18:36:59".into());
        assert_eq!(printed.0.as_deref(), Some("2026-11-27 18:36:59"));
        printed.print("2026-11-27 18:37:00".into());
        assert_eq!(printed.0.as_deref(), Some("2026-11-27 18:37:00"));
    }

    #[test]
    fn formats_minutes_like_the_reference() {
        assert_eq!(format_minute(0), "1970-01-01 00:00:");
        // 2026-11-27 18:36 UTC = 1_795_804_560 s.
        assert_eq!(format_minute(1_795_804_560 / 60), "2026-11-27 18:36:");
        // A leap day.
        assert_eq!(format_minute(1_709_164_800 / 60), "2024-02-29 00:00:");
    }
}
