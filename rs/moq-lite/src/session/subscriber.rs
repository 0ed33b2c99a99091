//! Consuming the peer's broadcasts: announcements into our origin, requested tracks as subscriptions,
//! and group streams into those tracks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use tokio::time::Instant;
/// Shared by every part of a session (the connection handle is ~800 bytes: one copy, not one per part).
type Transport = moq_io::Session;

use super::setup::PeerSetup;
use super::stream::{session_error, Reader, Writer};
use crate::coding::{
    Announce, AnnounceIds, AnnounceInit, AnnounceMessage, AnnounceOk, AnnounceRequest,
    AnnounceStatus, BiStreamType, Fetch, FrameHeader, GroupHeader, Subscribe, SubscribeResponse,
    SubscribeUpdate, TrackRequest, Version, MAX_FRAME_SIZE,
};
use crate::lock::lock;
use crate::model::{
    BroadcastProducer, Cost, Frame, Group, OriginProducer, TrackInfo, TrackProducer,
};
use crate::stats::{Gauge, Metric, Stats};
use crate::{Error, Path};

/// Most broadcasts one peer may announce to us at once; past it the announce stream is closed.
pub const MAX_ANNOUNCED: usize = 16 * 1024;

/// Largest chunk read from a group stream at once.
const MAX_CHUNK: usize = 1024 * 1024;

/// How long an upstream subscription outlives its last consumer. A viewer asks TRACK and then
/// SUBSCRIBE through a relay; without this the first would cancel the upstream before the second
/// could share it, and quick re-subscribes would churn upstream.
const TRACK_LINGER: Duration = Duration::from_secs(2);

/// Resolves once `track` has had no consumer for `linger`.
async fn unused_for(track: &TrackProducer, linger: Duration) {
    loop {
        track.unused().await;
        tokio::time::sleep(linger).await;
        if track.is_unused() {
            return;
        }
    }
}

pub(crate) struct Subscriber {
    pub transport: Transport,
    pub version: Version,
    pub origin: OriginProducer,
    pub origin_id: u64,
    subscriptions: Mutex<HashMap<u64, TrackProducer>>,
    next_id: AtomicU64,
    started: Instant,
    stats: Arc<Stats>,
    /// The peer's GOAWAY: its announcements are withdrawn when it comes.
    goaway: tokio::sync::watch::Receiver<Option<String>>,
    /// Upstream subscriptions open (for [`crate::Session::drained`]).
    upstream: Arc<tokio::sync::watch::Sender<usize>>,
    /// The peer's SETUP (its Cost prices the link on lite-06).
    peer_setup: PeerSetup,
    /// Our own price for this link, if configured (wins over the peer's SETUP Cost).
    link_cost: Option<u64>,
}

/// Counts one open upstream subscription while it lives.
struct Upstream<'a>(&'a tokio::sync::watch::Sender<usize>);

impl<'a> Upstream<'a> {
    fn new(count: &'a tokio::sync::watch::Sender<usize>) -> Self {
        count.send_modify(|n| *n += 1);
        Self(count)
    }
}

impl Drop for Upstream<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Subscriber {
    // One call site (Session::start), which names every part; a builder would only add code.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        transport: Transport,
        version: Version,
        origin: OriginProducer,
        origin_id: u64,
        stats: Arc<Stats>,
        goaway: tokio::sync::watch::Receiver<Option<String>>,
        upstream: Arc<tokio::sync::watch::Sender<usize>>,
        peer_setup: PeerSetup,
        link_cost: Option<u64>,
    ) -> Self {
        Self {
            goaway,
            upstream,
            peer_setup,
            link_cost,
            transport,
            version,
            origin,
            origin_id,
            subscriptions: Mutex::default(),
            next_id: AtomicU64::new(0),
            started: Instant::now(),
            stats,
        }
    }

    /// Ask for every announcement under the root and mirror them into our origin.
    pub async fn run_announce(self: Arc<Self>) -> Result<(), Error> {
        let (send, recv) = self.transport.open_bi().await.map_err(session_error)?;
        let mut writer = Writer::new(send, self.version);
        let mut reader = Reader::new(recv, self.version);
        writer.encode(&BiStreamType::Announce).await?;
        writer
            .encode(&AnnounceRequest {
                prefix: Path::ROOT,
                exclude_hop: self.origin_id,
            })
            .await?;

        let mut broadcasts: HashMap<Path, (BroadcastProducer, Gauge)> = HashMap::new();
        let mut upstream_hop = 0;
        match self.version {
            Version::Lite01 | Version::Lite02 => {
                let init: AnnounceInit = reader.decode().await?;
                // Each broadcast it lists stands for one ANNOUNCE of later versions.
                self.stats
                    .add(Metric::AnnounceMessagesIn, init.suffixes.len() as u64);
                for suffix in init.suffixes.into_iter().take(MAX_ANNOUNCED) {
                    self.start_broadcast(&mut broadcasts, suffix, Vec::new(), Cost::UNKNOWN);
                }
            }
            Version::Lite05 | Version::Lite06 => {
                let ok: AnnounceOk = reader.decode().await?;
                upstream_hop = ok.hop_id;
            }
            Version::Lite03 | Version::Lite04 => {}
        }
        if self.version.is_lite06() {
            return self
                .run_announce_06(&mut reader, upstream_hop, &mut broadcasts)
                .await;
        }

        let mut goaway = self.goaway.clone();
        loop {
            let announce = tokio::select! {
                announce = reader.decode_maybe::<Announce>() => announce?,
                Ok(_) = goaway.wait_for(Option::is_some) => {
                    // The peer is leaving: its routes go now, so subscriptions move elsewhere
                    // while it still serves them.
                    tracing::debug!(routes = broadcasts.len(), "peer sent GOAWAY: withdrawing its routes");
                    broadcasts.clear();
                    return Ok(());
                }
            };
            let Some(announce) = announce else { break };
            self.stats.add(Metric::AnnounceMessagesIn, 1);
            let Announce {
                status,
                suffix,
                mut hops,
            } = announce;
            match status {
                AnnounceStatus::Active | AnnounceStatus::Restart => {
                    // spec §5.2: the full chain is hops ++ [ANNOUNCE_OK hop].
                    if upstream_hop != 0 {
                        hops.push(upstream_hop);
                    }
                    // spec §5.6: discard a path through ourselves (a loop).
                    if self.origin_id != 0 && hops.contains(&self.origin_id) {
                        tracing::debug!(path = %suffix, "ignoring announcement that loops through us");
                        continue;
                    }
                    if broadcasts.len() >= MAX_ANNOUNCED && !broadcasts.contains_key(&suffix) {
                        return Err(Error::ProtocolViolation("too many announced broadcasts"));
                    }
                    self.start_broadcast(&mut broadcasts, suffix, hops, Cost::UNKNOWN);
                }
                AnnounceStatus::Ended => {
                    if broadcasts.remove(&suffix).is_none() {
                        tracing::debug!(path = %suffix, "ended announcement for an unknown broadcast");
                    }
                }
            }
        }
        Ok(())
    }

    /// lite-06 announcements after ANNOUNCE_OK: START / UPDATE / END with implicit ids, route cost
    /// charged with this link's price.
    async fn run_announce_06(
        self: &Arc<Self>,
        reader: &mut Reader,
        upstream_hop: u64,
        broadcasts: &mut HashMap<Path, (BroadcastProducer, Gauge)>,
    ) -> Result<(), Error> {
        // spec §5.5: the link's price is ours if configured, else the peer's SETUP Cost, else 1.
        let link_cost = match self.link_cost {
            Some(cost) => cost,
            None => self
                .peer_setup
                .get()
                .await
                .and_then(|s| s.cost)
                .unwrap_or(1),
        };
        let mut ids = AnnounceIds::default();
        let mut goaway = self.goaway.clone();
        loop {
            let msg = tokio::select! {
                msg = reader.decode_maybe::<AnnounceMessage>() => msg?,
                Ok(_) = goaway.wait_for(Option::is_some) => {
                    tracing::debug!(routes = broadcasts.len(), "peer sent GOAWAY: withdrawing its routes");
                    broadcasts.clear();
                    return Ok(());
                }
            };
            let Some(msg) = msg else { return Ok(()) };
            self.stats.add(Metric::AnnounceMessagesIn, 1);
            let (suffix, mut hops, cost) = match msg {
                AnnounceMessage::Start { suffix, hops, cost } => {
                    // spec §5.5: one live announcement per suffix; a replacement is an UPDATE.
                    if ids.id_of(&suffix).is_some() {
                        return Err(Error::ProtocolViolation("ANNOUNCE_START for a live path"));
                    }
                    if ids.len() >= MAX_ANNOUNCED {
                        return Err(Error::ProtocolViolation("too many announced broadcasts"));
                    }
                    ids.start(suffix.clone());
                    (suffix, hops, cost)
                }
                AnnounceMessage::Update { id, hops, cost } => {
                    let Some(suffix) = ids.get(id).cloned() else {
                        return Err(Error::ProtocolViolation(
                            "ANNOUNCE_UPDATE for an unknown id",
                        ));
                    };
                    (suffix, hops, cost)
                }
                AnnounceMessage::End { id } => {
                    let Some(suffix) = ids.end(id) else {
                        return Err(Error::ProtocolViolation("ANNOUNCE_END for an unknown id"));
                    };
                    broadcasts.remove(&suffix);
                    continue;
                }
                AnnounceMessage::Unknown { kind } => {
                    tracing::debug!(kind, "skipping an unknown announcement type");
                    continue;
                }
            };
            // spec §5.2: the full chain is hops ++ [ANNOUNCE_OK hop].
            if upstream_hop != 0 {
                hops.push(upstream_hop);
            }
            // spec §5.6: discard a path through ourselves (a loop).
            if self.origin_id != 0 && hops.contains(&self.origin_id) {
                tracing::debug!(path = %suffix, "ignoring announcement that loops through us");
                broadcasts.remove(&suffix);
                continue;
            }
            self.start_broadcast(broadcasts, suffix, hops, cost.charged(link_cost));
        }
    }

    fn start_broadcast(
        self: &Arc<Self>,
        broadcasts: &mut HashMap<Path, (BroadcastProducer, Gauge)>,
        path: Path,
        hops: Vec<u64>,
        cost: Cost,
    ) {
        tracing::debug!(%path, ?hops, ?cost, "remote broadcast announced");
        let producer = BroadcastProducer::new();
        let mut requests = producer.requests();
        let fetches = (self.version >= Version::Lite05).then(|| producer.fetch_requests());
        if let Err(err) = self
            .origin
            .publish_route(&path, producer.consume(), hops, cost)
        {
            tracing::warn!(%path, %err, "cannot publish remote broadcast");
            return;
        }
        // Replacing an entry drops (and so closes) the previous broadcast at this path.
        broadcasts.insert(
            path.clone(),
            (producer, self.stats.gauge(Metric::Announcements)),
        );
        if let Some(mut fetches) = fetches {
            let (transport, path, version) = (self.transport.clone(), path.clone(), self.version);
            // Ends when the broadcast closes (its fetch queue closes with it).
            tokio::spawn(async move {
                while let Some(request) = fetches.next().await {
                    let sequence = request.group.info().sequence;
                    if let Err(err) =
                        fetch_into(&transport, version, &path, &request.track, 0, request.group)
                            .await
                    {
                        tracing::debug!(%path, sequence, %err, "upstream fetch failed");
                    }
                }
            });
        }
        let this = self.clone();
        // Ends when the broadcast closes (its request queue closes with it).
        tokio::spawn(async move {
            while let Some(track) = requests.next().await {
                let this = this.clone();
                let path = path.clone();
                tokio::spawn(async move { this.run_subscribe(path, track).await });
            }
        });
    }

    /// One upstream subscription feeding `track`, cancelled once nobody consumes it.
    async fn run_subscribe(self: Arc<Self>, path: Path, track: TrackProducer) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let _upstream = self.stats.gauge(Metric::SubscriptionsUpstream);
        let _open = Upstream::new(&self.upstream);
        let result = tokio::select! {
            res = self.subscribe(id, &path, &track) => res,
            _ = unused_for(&track, TRACK_LINGER) => Err(Error::Cancel),
        };
        lock(&self.subscriptions).remove(&id);
        match result {
            Ok(()) => track.finish(),
            Err(err) => {
                tracing::debug!(%path, track = %track.track().name, %err, "subscription ended");
                track.abort(err);
            }
        }
    }

    async fn subscribe(&self, id: u64, path: &Path, track: &TrackProducer) -> Result<(), Error> {
        let name = track.track().name.clone();
        if self.version >= Version::Lite05 {
            // spec §5.10: learn the timescale before reading frames.
            let (send, recv) = self.transport.open_bi().await.map_err(session_error)?;
            let mut writer = Writer::new(send, self.version);
            let mut reader = Reader::new(recv, self.version);
            writer.encode(&BiStreamType::Track).await?;
            writer
                .encode(&TrackRequest {
                    broadcast: path.clone(),
                    track: name.clone(),
                })
                .await?;
            // Our FIN would read as a cancel (spec §3.3), so it waits for the reply.
            let info: crate::coding::TrackInfo = reader.decode().await?;
            writer.finish();
            track.set_info(TrackInfo {
                priority: info.priority,
                ordered: info.ordered,
                max_latency: Duration::from_millis(info.max_latency_ms),
                timescale: info.timescale,
            });
        } else {
            // No TRACK_INFO before lite-05: frames are stamped with the local receive time in ms.
            track.set_info(TrackInfo::default());
        }

        lock(&self.subscriptions).insert(id, track.clone());
        let (send, recv) = self.transport.open_bi().await.map_err(session_error)?;
        let mut writer = Writer::new(send, self.version);
        let mut reader = Reader::new(recv, self.version);
        writer.encode(&BiStreamType::Subscribe).await?;
        let mut requested = track.requested();
        let subscribe = Subscribe {
            id,
            broadcast: path.clone(),
            track: name,
            priority: requested.priority,
            ordered: false,
            max_latency_ms: requested.max_latency_ms(),
            start_group: None,
            end_group: None,
            start_frame: 0,
            end_frame: None,
        };
        writer.encode(&subscribe).await?;

        let mut first = true;
        loop {
            let response = tokio::select! {
                response = reader.decode_maybe::<SubscribeResponse>() => response?,
                // A local consumer asked for more (priority, max latency): tell the publisher
                // (lite-03+).
                changed = track.requested_changed(requested), if self.version >= Version::Lite03 => {
                    let update = (changed.priority, changed.max_latency_ms())
                        != (requested.priority, requested.max_latency_ms());
                    requested = changed;
                    if !update {
                        continue;
                    }
                    let update = SubscribeUpdate {
                        priority: requested.priority,
                        ordered: false,
                        max_latency_ms: requested.max_latency_ms(),
                        start_group: None,
                        end_group: None,
                        start_frame: 0,
                        end_frame: None,
                    };
                    writer.encode(&update).await?;
                    continue;
                }
            };
            let Some(response) = response else { break };
            match response {
                SubscribeResponse::Ok { .. }
                | SubscribeResponse::OkLegacy { .. }
                | SubscribeResponse::Start { .. } => {}
                SubscribeResponse::End { group } => {
                    tracing::debug!(id, group, "publisher ended the subscription")
                }
                SubscribeResponse::Drop {
                    start,
                    end,
                    error_code,
                } => {
                    tracing::debug!(id, start, end, error_code, "publisher dropped groups")
                }
            }
            // spec §5.9: on lite-03/04 the first response must be an OK.
            if first
                && matches!(self.version, Version::Lite03 | Version::Lite04)
                && !matches!(response, SubscribeResponse::Ok { .. })
            {
                return Err(Error::ProtocolViolation(
                    "first subscribe response is not SUBSCRIBE_OK",
                ));
            }
            first = false;
        }
        writer.finish();
        Ok(())
    }

    /// Receive one group stream (after its type) into the subscribed track.
    pub async fn run_group(&self, reader: &mut Reader) -> Result<(), Error> {
        let header: GroupHeader = reader.decode().await?;
        let track = lock(&self.subscriptions).get(&header.subscribe_id).cloned();
        let Some(track) = track else {
            // spec §3.3: a group for an unknown subscription is cancelled.
            reader.stop(&Error::Cancel);
            return Ok(());
        };
        let mut group = match track.create_group(Group {
            sequence: header.sequence,
        }) {
            Ok(group) => group,
            Err(err) => {
                reader.stop(&err);
                return Ok(());
            }
        };
        self.stats.add(Metric::GroupsIn, 1);
        let result = read_frames(
            reader,
            &mut group,
            self.version,
            Some(self.started),
            Some(&self.stats),
        )
        .await;
        match &result {
            Ok(()) => group.finish(),
            Err(err) => group.abort(err.clone()),
        }
        result
    }
}

/// Send FETCH for one group (lite-05) and stream its frames into `group` from a spawned task that
/// ends with the fetch stream. Errors before the request is sent are returned; later ones abort
/// the group.
pub(crate) async fn fetch_into(
    transport: &Transport,
    version: Version,
    broadcast: &Path,
    track: &str,
    priority: u8,
    mut group: crate::model::GroupProducer,
) -> Result<(), Error> {
    let (send, recv) = transport.open_bi().await.map_err(session_error)?;
    let mut writer = Writer::new(send, version);
    let mut reader = Reader::new(recv, version);
    writer.encode(&BiStreamType::Fetch).await?;
    let fetch = Fetch {
        broadcast: broadcast.clone(),
        track: track.to_string(),
        priority,
        group: group.info().sequence,
        start_frame: 0,
        end_frame: None,
    };
    writer.encode(&fetch).await?;
    // Ends with the fetch stream; dropping every consumer does not cancel it early.
    tokio::spawn(async move {
        match read_frames(&mut reader, &mut group, version, None, None).await {
            Ok(()) => {
                group.finish();
                // Our FIN only after theirs: an early FIN would read as a cancel.
                writer.finish();
            }
            Err(err) => group.abort(err),
        }
    });
    Ok(())
}

/// `first` joined with the rest of its frame's payload that has already arrived (read without
/// waiting; at most `remaining` bytes in all). A 12.5 KB frame arrives as ~9 packet-sized chunks:
/// forwarded as they are, every subscriber's QUIC stream would hold, packetise and acknowledge 9
/// buffer segments per frame. One copy here, shared by every subscriber, makes them one. Bytes that
/// have not arrived yet are not waited for (cut-through forwarding stays).
fn gather(reader: &mut Reader, first: Bytes, remaining: u64) -> Result<Bytes, Error> {
    let mut left = remaining.saturating_sub(first.len() as u64);
    let mut more: Vec<Bytes> = Vec::new();
    while left > 0 {
        let max = left.min(MAX_CHUNK as u64) as usize;
        match reader.read_chunk(max).now_or_never() {
            Some(Ok(Some(chunk))) => {
                left -= chunk.len() as u64;
                more.push(chunk);
            }
            // Finished early (the caller's next read reports it) or nothing more yet.
            Some(Ok(None)) | None => break,
            Some(Err(err)) => return Err(err),
        }
    }
    if more.is_empty() {
        return Ok(first);
    }
    let len = first.len() + more.iter().map(Bytes::len).sum::<usize>();
    let mut joined = BytesMut::with_capacity(len);
    joined.extend_from_slice(&first);
    for chunk in &more {
        joined.extend_from_slice(chunk);
    }
    Ok(joined.freeze())
}

/// Read FRAMEs (header, then the payload streamed in chunks) into `group` until the stream ends.
/// lite-05 timestamps are deltas from the previous frame (the first from 0). Older versions carry
/// none, so frames get the local receive time in ms since `started`.
pub(crate) async fn read_frames(
    reader: &mut Reader,
    group: &mut crate::model::GroupProducer,
    version: Version,
    started: Option<Instant>,
    stats: Option<&Stats>,
) -> Result<(), Error> {
    let mut timestamp: u64 = 0;
    while let Some(header) = reader.decode_maybe::<FrameHeader>().await? {
        if header.size > MAX_FRAME_SIZE {
            return Err(Error::FrameTooLarge);
        }
        timestamp = match (version, started) {
            (Version::Lite05 | Version::Lite06, _) | (_, None) => timestamp
                .checked_add_signed(header.timestamp_delta)
                .ok_or(Error::ProtocolViolation("frame timestamp below zero"))?,
            (_, Some(started)) => started.elapsed().as_millis() as u64,
        };
        let mut frame = group.create_frame(Frame {
            timestamp,
            size: header.size,
        })?;
        let mut remaining = header.size;
        while remaining > 0 {
            let max = remaining.min(MAX_CHUNK as u64) as usize;
            let chunk = reader.read_chunk(max).await?.ok_or(Error::WrongSize)?;
            let chunk = gather(reader, chunk, remaining)?;
            remaining -= chunk.len() as u64;
            if let Some(stats) = stats {
                stats.add(Metric::BytesIn, chunk.len() as u64);
            }
            frame.write_chunk(chunk)?;
        }
        frame.finish()?;
        if let Some(stats) = stats {
            stats.add(Metric::FramesIn, 1);
        }
    }
    Ok(())
}
