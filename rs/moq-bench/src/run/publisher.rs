//! The publishing side of a run: its session, and the frames or churn broadcasts it sends.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::{BufMut, Bytes, BytesMut};
use moq_lite::{BroadcastProducer, OriginProducer, Path, Track, TrackInfo, TrackProducer};
use url::Url;

use super::report::now_us;
use super::shared::Shared;
use super::{CONNECT_TIMEOUT, TRACK};
use crate::preset::{Preset, HEADER_LEN};

/// Our publisher's session and what it publishes.
pub(super) struct Publisher {
    pub(super) session: moq_lite::Session,
    pub(super) origin: OriginProducer,
    /// The frames broadcast and track (none for announce-only presets).
    pub(super) frames: Option<(BroadcastProducer, TrackProducer)>,
}

/// Connect, publish the frames broadcast (unless the preset only churns), and set up the session.
pub(super) async fn start_publisher(
    client: &moq_native::QuicClient,
    url: &Url,
    path: &Path,
    preset: &Preset,
    shared: &Shared,
) -> anyhow::Result<Publisher> {
    let connection = tokio::time::timeout(CONNECT_TIMEOUT, client.connect_any(url.clone()))
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

/// Write the preset's frames at its rate until `end`; hand the track back, still open.
pub(super) async fn publish_frames(
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
pub(super) async fn publish_churn(
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
