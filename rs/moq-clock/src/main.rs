//! `moq-clock`: the simplest moq application, and an interop check against other implementations.
//!
//! `publish` announces a broadcast with one track: a group per minute (its sequence is the minute
//! number since the Unix epoch) whose first frame is `YYYY-MM-DD HH:MM:` and whose next frames are
//! the seconds `SS`. `subscribe` discovers the broadcast and prints one line per second on stdout
//! (logs go to stderr). The format is the reference clock's, so either side works with it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;
use clap::{Parser, Subcommand};
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
    client: moq_native::ClientConfig,

    #[command(flatten)]
    quic: moq_native::QuicConfig,

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
    let mut cli = Cli::parse();
    cli.log.init();
    cli.client.quic = cli.quic.clone();
    let path = Path::new(&cli.broadcast).context("invalid --broadcast")?;

    let native = moq_native::Client::new(cli.client.clone())?;
    tracing::info!(url = %cli.url, "connecting");
    let connection = native
        .connect(cli.url.clone())
        .await
        .with_context(|| format!("cannot connect to {}", cli.url))?;
    let client = moq_lite::Client::new().with_setup_path(connection.setup_path);

    match cli.command {
        Command::Publish => {
            let origin = OriginProducer::new();
            let broadcast = BroadcastProducer::new();
            let track = broadcast.create_track(Track::new(&cli.track), TrackInfo::default());
            origin.publish_broadcast(&path, broadcast.consume())?;
            let session = client
                .publish(origin.consume())
                .connect(connection.session)
                .await?;
            tracing::info!(version = %session.version(), broadcast = %path, "publishing");
            let result = tokio::select! {
                res = publish(track) => res,
                err = session.closed() => Err(anyhow::anyhow!("session closed: {err}")),
                _ = tokio::signal::ctrl_c() => Ok(()),
            };
            hang_up(&native, &session).await;
            result
        }
        Command::Subscribe => {
            let origin = OriginProducer::new();
            let session = client
                .subscribe(origin.clone())
                .connect(connection.session)
                .await?;
            tracing::info!(version = %session.version(), broadcast = %path, "waiting for the broadcast");
            let result = tokio::select! {
                res = subscribe(origin, path, cli.track) => res,
                err = session.closed() => Err(anyhow::anyhow!("session closed: {err}")),
                _ = tokio::signal::ctrl_c() => Ok(()),
            };
            hang_up(&native, &session).await;
            result
        }
    }
}

/// Close the session and wait (bounded) until the CONNECTION_CLOSE has left, so the relay ends
/// our broadcast at once rather than at its idle timeout.
async fn hang_up(native: &moq_native::Client, session: &moq_lite::Session) {
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

/// Print `base + seconds` for every frame of every group, as they arrive.
async fn subscribe(origin: OriginProducer, path: Path, track: String) -> anyhow::Result<()> {
    loop {
        let broadcast = origin.consume().wait_for_broadcast(&path).await?;
        tracing::info!(broadcast = %path, "broadcast found");
        let mut consumer = broadcast.subscribe_track(&Track::new(&track));
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
            if let Err(err) = print_group(group).await {
                tracing::warn!(%err, "group ended early");
            }
        }
        // The broadcast ended: wait for it to come back.
        let _ = broadcast.closed().await;
    }
}

async fn print_group(mut group: moq_lite::GroupConsumer) -> anyhow::Result<()> {
    let Some((_, base)) = group.read_frame().await? else {
        return Ok(());
    };
    let base = String::from_utf8_lossy(&base).into_owned();
    while let Some((_, seconds)) = group.read_frame().await? {
        println!("{base}{}", String::from_utf8_lossy(&seconds));
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
    fn formats_minutes_like_the_reference() {
        assert_eq!(format_minute(0), "1970-01-01 00:00:");
        // 2026-11-27 18:36 UTC = 1_795_804_560 s.
        assert_eq!(format_minute(1_795_804_560 / 60), "2026-11-27 18:36:");
        // A leap day.
        assert_eq!(format_minute(1_709_164_800 / 60), "2024-02-29 00:00:");
    }
}
