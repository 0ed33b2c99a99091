//! One subscriber session of a run: connect, find the broadcast, count and time what arrives.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::stream::{FuturesUnordered, StreamExt};
use moq_lite::{GroupConsumer, OriginProducer, Path, Track};
use url::Url;

use super::report::now_us;
use super::shared::Shared;
use super::{CONNECT_TIMEOUT, TRACK};
use crate::preset::HEADER_LEN;

/// One subscriber session.
pub(super) struct Sub {
    pub(super) index: usize,
    pub(super) client: moq_native::QuicClient,
    pub(super) url: Url,
    pub(super) path: Path,
    pub(super) shared: Arc<Shared>,
    pub(super) permits: Arc<tokio::sync::Semaphore>,
    pub(super) ready: tokio::sync::mpsc::UnboundedSender<Result<(), String>>,
    pub(super) stop: tokio::sync::watch::Receiver<bool>,
    pub(super) churn: bool,
    pub(super) announce_timeout: Duration,
}

impl Sub {
    /// From connect until `stop` turns true.
    pub(super) async fn run(mut self) -> anyhow::Result<()> {
        let permit = self.permits.clone().acquire_owned().await?;
        let begin = Instant::now();
        let connection = tokio::time::timeout(CONNECT_TIMEOUT, self.client.connect_any(self.url))
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
