//! Serving our origin to the peer: announcements, track info, subscriptions, fetches, probes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::sync::oneshot;
use tokio::time::Instant;
/// Shared by every part of a session (the connection handle is ~800 bytes: one copy, not one per part).
type Transport = moq_io::Session;

use super::follow::{Current, Follow, Routes};
use super::gate::Gate;
use super::priority;
use super::setup::PeerSetup;
use super::stream::{session_error, Reader, Writer};
use crate::coding::{
    Announce, AnnounceIds, AnnounceInit, AnnounceMessage, AnnounceOk, AnnounceRequest,
    AnnounceStatus, Fetch, FrameHeader, Goaway, GroupHeader, Probe, Subscribe, SubscribeResponse,
    SubscribeUpdate, TrackRequest, UniStreamType, Version,
};
use crate::lock::lock;
use crate::model::{Cost, GroupConsumer, OriginConsumer, Route, Track};
use crate::stats::{Metric, Stats};
use crate::{Error, Path};

/// The peer's SETUP Origin if it is already known (the server has the client's), else 0.
fn peer_setup_origin(peer_setup: &PeerSetup) -> u64 {
    peer_setup.now().and_then(|s| s.origin).unwrap_or(0)
}

/// One served group stream (`Publisher::serve_group`), boxed: a FuturesUnordered keeps a stub
/// task holding an (empty) element for its whole life, ~1 KB per subscription if unboxed.
type GroupFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

/// Most group streams one subscription keeps open at once; older ones are reset with [`Error::Old`].
pub const MAX_INFLIGHT_GROUPS: usize = 64;

pub(crate) struct Publisher {
    pub transport: Transport,
    pub version: Version,
    pub origin: Option<OriginConsumer>,
    pub origin_id: u64,
    /// The peer's origin id, from its ANNOUNCE_REQUEST's exclude hop (lite-04/05) or its SETUP
    /// Origin (lite-06), 0 until known: routes through it are never offered or served back to it
    /// (split horizon, spec §5.6, §13.1).
    peer_id: AtomicU64,
    /// The peer's SETUP (lite-05+).
    peer_setup: PeerSetup,
    /// Subscribe IDs in use by the peer (spec §5.7: unique per session).
    subscribe_ids: Mutex<HashSet<u64>>,
    pub stats: Arc<Stats>,
    /// Group streams being written: the group and how many payload bytes went out so far.
    inflight: Inflight,
    next_inflight: AtomicU64,
    /// Set when the peer's GOAWAY arrives (read by the session and its subscriber).
    goaway: Arc<tokio::sync::watch::Sender<Option<String>>>,
}

impl Publisher {
    pub fn new(
        transport: Transport,
        version: Version,
        origin: Option<OriginConsumer>,
        origin_id: u64,
        stats: Arc<Stats>,
        goaway: Arc<tokio::sync::watch::Sender<Option<String>>>,
        peer_setup: PeerSetup,
    ) -> Self {
        let peer_id = peer_setup_origin(&peer_setup);
        Self {
            goaway,
            peer_setup,
            transport,
            version,
            origin,
            origin_id,
            peer_id: AtomicU64::new(peer_id),
            subscribe_ids: Mutex::default(),
            stats,
            inflight: Mutex::default(),
            next_inflight: AtomicU64::new(0),
        }
    }

    /// Payload bytes held for this peer that have not been handed to QUIC yet: what a stalled
    /// subscriber costs beyond QUIC's own (bounded) send window.
    pub fn queued_bytes(&self) -> u64 {
        lock(&self.inflight)
            .values()
            .map(|(group, written)| {
                group
                    .bytes()
                    .saturating_sub(written.load(Ordering::Relaxed))
            })
            .sum()
    }

    /// The route to serve `path` from: the best one not through the peer.
    fn route(&self, path: &Path) -> Result<Route, Error> {
        let peer = match self.peer_id.load(Ordering::Relaxed) {
            0 => peer_setup_origin(&self.peer_setup),
            peer => peer,
        };
        self.origin
            .as_ref()
            .and_then(|o| o.route(path, peer))
            .ok_or(Error::NotFound)
    }

    fn broadcast(&self, path: &Path) -> Result<crate::model::BroadcastConsumer, Error> {
        self.route(path).map(|r| r.broadcast)
    }

    /// Serve one Announce stream.
    pub async fn run_announce(
        &self,
        writer: &mut Writer,
        reader: &mut Reader,
    ) -> Result<(), Error> {
        let request: AnnounceRequest = reader.decode().await?;
        let Some(origin) = &self.origin else {
            // Nothing to publish: an empty set, then wait for the peer to close (spec §5.1).
            self.write_initial(writer, &request.prefix, Vec::new())
                .await?;
            return reader.closed().await;
        };
        // spec §5.1/§5.6: lite-04/05 name the peer in the request; lite-06 in its SETUP Origin.
        let exclude_hop = match self.version.is_lite06() {
            true => self
                .peer_setup
                .get()
                .await
                .and_then(|s| s.origin)
                .unwrap_or(0),
            false => request.exclude_hop,
        };
        if exclude_hop != 0 {
            self.peer_id.store(exclude_hop, Ordering::Relaxed);
        }
        let mut announced = origin.with_prefix(&request.prefix)?.excluding(exclude_hop);
        let excluded = |hops: &[u64]| exclude_hop != 0 && hops.contains(&exclude_hop);

        let mut active: HashSet<Path> = HashSet::new();
        let mut snapshot = Vec::new();
        while let Some(a) = announced.try_announced() {
            if a.broadcast.is_some() && !excluded(&a.hops) {
                let Some(suffix) = a.path.strip_prefix(&request.prefix) else {
                    continue;
                };
                active.insert(suffix.clone());
                snapshot.push((suffix, a.hops, a.cost));
            }
        }
        if self.version.is_lite06() {
            return self
                .run_announce_06(
                    writer,
                    reader,
                    &request.prefix,
                    announced,
                    snapshot,
                    exclude_hop,
                )
                .await;
        }
        let snapshot = snapshot.into_iter().map(|(s, h, _)| (s, h)).collect();
        self.write_initial(writer, &request.prefix, snapshot)
            .await?;

        loop {
            tokio::select! {
                a = announced.announced() => {
                    let Some(suffix) = a.path.strip_prefix(&request.prefix) else { continue };
                    match a.broadcast {
                        Some(_) if !excluded(&a.hops) => {
                            // A replacement: lite-05 reads a repeated active as a restart; older
                            // versions need the end first (a duplicate active is an error there).
                            if !active.insert(suffix.clone()) && self.version < Version::Lite05 {
                                writer.encode(&self.announce(AnnounceStatus::Ended, suffix.clone(), &[])).await?;
                            }
                            writer.encode(&self.announce(AnnounceStatus::Active, suffix, &a.hops)).await?;
                        }
                        _ => {
                            if active.remove(&suffix) {
                                writer.encode(&self.announce(AnnounceStatus::Ended, suffix, &[])).await?;
                            }
                        }
                    }
                }
                res = reader.closed() => return res,
            }
        }
    }

    /// lite-06 announcements: ANNOUNCE_OK, a START per live route (each takes the next id), then
    /// START / UPDATE (a live suffix's new route) / END as routes change.
    async fn run_announce_06(
        &self,
        writer: &mut Writer,
        reader: &mut Reader,
        prefix: &Path,
        mut announced: OriginConsumer,
        snapshot: Vec<(Path, Vec<u64>, Cost)>,
        exclude_hop: u64,
    ) -> Result<(), Error> {
        let excluded = |hops: &[u64]| exclude_hop != 0 && hops.contains(&exclude_hop);
        // spec §5.5: hops go without the sender (implicit from ANNOUNCE_OK), at most MAX_HOPS.
        let chain = |hops: Vec<u64>| -> Vec<u64> {
            hops.into_iter()
                .take(crate::coding::MAX_HOPS as usize)
                .collect()
        };
        let mut ids = AnnounceIds::default();
        writer
            .encode(&AnnounceOk {
                hop_id: self.origin_id,
                active_count: snapshot.len() as u64,
            })
            .await?;
        for (suffix, hops, cost) in snapshot {
            ids.start(suffix.clone());
            let hops = chain(hops);
            writer
                .encode(&AnnounceMessage::Start { suffix, hops, cost })
                .await?;
        }
        loop {
            tokio::select! {
                a = announced.announced() => {
                    let Some(suffix) = a.path.strip_prefix(prefix) else { continue };
                    let live = ids.id_of(&suffix);
                    let msg = match (a.broadcast, live) {
                        (Some(_), Some(id)) if !excluded(&a.hops) => {
                            AnnounceMessage::Update { id, hops: chain(a.hops), cost: a.cost }
                        }
                        (Some(_), None) if !excluded(&a.hops) => {
                            ids.start(suffix.clone());
                            AnnounceMessage::Start { suffix, hops: chain(a.hops), cost: a.cost }
                        }
                        (_, Some(id)) => {
                            ids.end(id);
                            AnnounceMessage::End { id }
                        }
                        (_, None) => continue,
                    };
                    writer.encode(&msg).await?;
                }
                res = reader.closed() => return res,
            }
        }
    }

    async fn write_initial(
        &self,
        writer: &mut Writer,
        _prefix: &Path,
        snapshot: Vec<(Path, Vec<u64>)>,
    ) -> Result<(), Error> {
        match self.version {
            Version::Lite01 | Version::Lite02 => {
                let suffixes = snapshot.into_iter().map(|(s, _)| s).collect();
                writer.encode(&AnnounceInit { suffixes }).await
            }
            Version::Lite03 | Version::Lite04 => {
                for (suffix, hops) in snapshot {
                    writer
                        .encode(&self.announce(AnnounceStatus::Active, suffix, &hops))
                        .await?;
                }
                Ok(())
            }
            Version::Lite05 | Version::Lite06 => {
                let ok = AnnounceOk {
                    hop_id: self.origin_id,
                    active_count: snapshot.len() as u64,
                };
                writer.encode(&ok).await?;
                for (suffix, hops) in snapshot {
                    writer
                        .encode(&self.announce(AnnounceStatus::Active, suffix, &hops))
                        .await?;
                }
                Ok(())
            }
        }
    }

    /// An announcement with the hop list in this version's form (spec §5.4).
    fn announce(&self, status: AnnounceStatus, suffix: Path, hops: &[u64]) -> Announce {
        let hops = match (status, self.version) {
            (AnnounceStatus::Ended, _) | (_, Version::Lite01 | Version::Lite02) => Vec::new(),
            // lite-03/04: the sender appends itself; lite-03 carries only the count.
            (_, Version::Lite03) => vec![0; hops.len() + 1],
            (_, Version::Lite04) => hops.iter().copied().chain([self.origin_id]).collect(),
            // lite-05: the sender is implicit from ANNOUNCE_OK (lite-06 uses AnnounceMessage).
            (_, Version::Lite05 | Version::Lite06) => hops.to_vec(),
        };
        let hops = hops
            .into_iter()
            .take(crate::coding::MAX_HOPS as usize)
            .collect();
        Announce {
            status,
            suffix,
            hops,
        }
    }

    /// Serve one Track stream (lite-05): reply with TRACK_INFO.
    pub async fn run_track(&self, writer: &mut Writer, reader: &mut Reader) -> Result<(), Error> {
        let request: TrackRequest = reader.decode().await?;
        let track = self
            .broadcast(&request.broadcast)?
            .subscribe_track(&Track::new(request.track));
        let info = track.info_ready().await?;
        writer
            .encode(&crate::coding::TrackInfo {
                priority: info.priority,
                ordered: info.ordered,
                max_latency_ms: info.max_latency.as_millis() as u64,
                timescale: info.timescale,
            })
            .await
    }

    /// Serve one Fetch stream (lite-05): the frames of one cached group.
    pub async fn run_fetch(&self, writer: &mut Writer, reader: &mut Reader) -> Result<(), Error> {
        let fetch: Fetch = reader.decode().await?;
        let track = self
            .broadcast(&fetch.broadcast)?
            .subscribe_track(&Track::new(fetch.track));
        track.info_ready().await?;
        let group = track.get_group(fetch.group).ok_or(Error::NotFound)?;
        // spec (lite-06): FETCH may ask for a frame range of the group.
        let frames = FrameRange {
            start: fetch.start_frame,
            end: fetch.end_frame,
        };
        write_frames(writer, group, self.version, frames, None).await?;
        writer.flush().await
    }

    /// Serve one Probe stream: report our estimate every 100 ms when it moved (spec §5.14).
    pub async fn run_probe(&self, writer: &mut Writer, reader: &mut Reader) -> Result<(), Error> {
        let mut interval = tokio::time::interval(Duration::from_millis(100));
        let mut last: Option<(Probe, Instant)> = None;
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                res = reader.closed() => return res,
            }
            let stats = self.transport.stats();
            let rtt_ms = (stats.rtt.unwrap_or_default().as_millis() as u64).max(1);
            // QUIC: a congestion window per round trip; QMux: the socket's own estimate, if any.
            let bitrate = match (stats.cwnd, stats.send_rate) {
                (Some(cwnd), _) => cwnd.saturating_mul(8).saturating_mul(1000) / rtt_ms,
                (None, Some(rate)) => rate,
                (None, None) => 0,
            }
            .max(1);
            let probe = Probe { bitrate, rtt_ms };
            let now = Instant::now();
            let send = match &last {
                None => true,
                Some((prev, at)) => {
                    let moved = |a: u64, b: u64| a.abs_diff(b) * 4 >= b.max(1);
                    moved(probe.bitrate, prev.bitrate)
                        || moved(probe.rtt_ms, prev.rtt_ms)
                        || now - *at >= Duration::from_secs(10)
                }
            };
            if send {
                writer.encode(&probe).await?;
                last = Some((probe, now));
            }
        }
    }

    /// Read a GOAWAY (lite-04+): the peer's broadcasts are withdrawn from our origin (a relay's
    /// subscriptions move to other routes); moving to the URI is the application's call.
    pub async fn run_goaway(&self, reader: &mut Reader) -> Result<(), Error> {
        let goaway: Goaway = reader.decode().await?;
        tracing::info!(uri = %goaway.uri, "peer sent GOAWAY");
        self.goaway.send_replace(Some(goaway.uri));
        // spec §5.15: the receiver FINs once it is ready; we open nothing new on its account.
        Ok(())
    }

    /// Serve one Subscribe stream.
    pub async fn run_subscribe(
        self: &Arc<Self>,
        writer: &mut Writer,
        reader: &mut Reader,
    ) -> Result<(), Error> {
        let subscribe: Subscribe = reader.decode().await?;
        if !lock(&self.subscribe_ids).insert(subscribe.id) {
            return Err(Error::Duplicate);
        }
        let result = self.serve_subscribe(writer, reader, &subscribe).await;
        lock(&self.subscribe_ids).remove(&subscribe.id);
        result
    }

    async fn serve_subscribe(
        self: &Arc<Self>,
        writer: &mut Writer,
        reader: &mut Reader,
        subscribe: &Subscribe,
    ) -> Result<(), Error> {
        let route = self.route(&subscribe.broadcast)?;
        let broadcast = route.broadcast.clone();
        let root = self
            .origin
            .as_ref()
            .map(|o| o.root().clone())
            .unwrap_or_default();
        let absolute = root
            .join(&subscribe.broadcast)
            .unwrap_or_else(|_| subscribe.broadcast.clone());
        let _viewing = self.stats.viewing(absolute.to_string());
        let track = Track {
            name: subscribe.track.clone(),
            priority: subscribe.priority,
        };
        let mut consumer = broadcast.subscribe_track(&track);
        tracing::debug!(id = subscribe.id, broadcast = %subscribe.broadcast, track = %subscribe.track, "serving subscription");

        match self.version {
            // spec §5.9: lite-01..04 acknowledge at once.
            Version::Lite01 | Version::Lite02 => {
                writer
                    .encode(&SubscribeResponse::OkLegacy {
                        priority: subscribe.priority,
                    })
                    .await?
            }
            Version::Lite03 | Version::Lite04 => {
                let ok = SubscribeResponse::Ok {
                    priority: subscribe.priority,
                    ordered: false,
                    max_latency_ms: 0,
                    start_group: None,
                    end_group: None,
                };
                writer.encode(&ok).await?
            }
            Version::Lite05 | Version::Lite06 => {}
        }

        let mut prefs = Prefs {
            priority: subscribe.priority,
            ordered: subscribe.ordered,
            max_latency: Duration::from_millis(subscribe.max_latency_ms),
            end: subscribe.end_group,
        };
        consumer.set_max_latency(prefs.latency_with(consumer.info().max_latency));
        // A relay carries the longest max latency its viewers asked for upstream (spec §7.1).
        consumer.request_max_latency(prefs.requested_latency());
        // Groups are served in arrival order (spec §7.3): one whose stream reached us after a
        // newer one's is still sent, within the max latency.
        consumer.set_late_groups(true);
        if let Some(start) = subscribe.start_group {
            consumer.start_at(start);
        }

        // Group streams are served inside this task, not spawned: a task per group per
        // subscriber cost a third of the relay's CPU at 1000 × chat. This task then wakes for
        // every frame it forwards, so the two rare events, a SUBSCRIBE_UPDATE and the next group,
        // are waited for behind a [`Gate`]: their waits stay registered and are not polled again
        // (a QUIC stream read, a track-state lock) until they fire.
        let handle = Current::new(
            consumer.clone(),
            subscribe.priority,
            prefs.requested_latency(),
        );
        let max_latency = Arc::new(AtomicU64::new(nanos(prefs.latency(&handle))));
        // A relay's subscription moves to another route when this one goes (see `follow`).
        let routes = self.origin.as_ref().map(|origin| Routes {
            origin: origin.lookup(),
            path: subscribe.broadcast.clone(),
            exclude: self.peer_id.load(Ordering::Relaxed),
        });
        let follow = Follow::new(
            consumer,
            Some(route),
            routes,
            max_latency.clone(),
            handle.clone(),
        );
        let mut updates = Gate::new(futures::stream::unfold(reader, |reader| async move {
            Some((reader.decode_maybe::<SubscribeUpdate>().await, reader))
        }));
        let mut next_groups = Gate::new(futures::stream::unfold(follow, |mut follow| async move {
            let next = follow.next_group().await;
            Some((next, follow))
        }));
        // The newest group is served in this task's own poll, so its frames wake this task
        // directly; older groups still being sent (or waiting to be cancelled) move to
        // `groups`. A viewer rarely has more than one group in flight, and going through a
        // FuturesUnordered per frame (its ready queue, stub and task, each their own heap
        // object) was most of this task's cache misses at 500 × SD.
        let mut current: Option<GroupFuture> = None;
        let mut groups = FuturesUnordered::<GroupFuture>::new();
        let mut inflight: VecDeque<InflightGroup> = VecDeque::new();
        // When the oldest superseded group in flight falls past the max latency.
        let expiry = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(expiry);
        let mut expiry_armed = false;
        let mut first: Option<u64> = None;
        let mut last: Option<u64> = None;
        let mut track_done = false;

        loop {
            if track_done && current.is_none() && groups.is_empty() {
                return Ok(());
            }
            // Wake when the oldest group behind a newer one passes the max latency, so a group
            // starved by newer ones is reset on time even when no newer group comes to check.
            match inflight.front().and_then(|g| g.superseded) {
                Some(superseded) => {
                    let deadline = superseded + prefs.latency(&handle);
                    if !expiry_armed || expiry.deadline() != deadline {
                        expiry.as_mut().reset(deadline);
                        expiry_armed = true;
                    }
                }
                None => expiry_armed = false,
            }
            // Biased, older groups first: a group is polled (and so opens its stream) before a
            // newer one is, so group streams open in sequence order, as with one queue, and a
            // subscriber that drops groups arriving after a newer one does not lose any.
            tokio::select! {
                biased;
                Some(()) = groups.next(), if !groups.is_empty() => {
                    inflight.retain(|g| !g.cancel.is_closed());
                }
                () = std::future::poll_fn(|cx| match current.as_mut() {
                    Some(group) => group.as_mut().poll(cx),
                    None => std::task::Poll::Pending,
                }), if current.is_some() => {
                    current = None;
                    inflight.retain(|g| !g.cancel.is_closed());
                }
                () = &mut expiry, if expiry_armed => {
                    expiry_armed = false;
                    self.expire(&mut inflight, prefs.latency(&handle));
                }
                Some(group) = next_groups.next(), if !track_done => match group? {
                    Some((group, sequence)) => {
                        if prefs.end.is_some_and(|end| sequence > end) {
                            track_done = true;
                            self.write_end(writer, last).await?;
                            continue;
                        }
                        if first.is_none() && self.version >= Version::Lite05 {
                            writer.encode(&SubscribeResponse::Start { group: sequence }).await?;
                        }
                        // spec (lite-06): a subscription may resume partway through its first
                        // group (Frame Start) and stop partway through its last (Frame End).
                        let frames = FrameRange {
                            start: match first.is_none() && subscribe.start_group == Some(sequence) {
                                true => subscribe.start_frame,
                                false => 0,
                            },
                            end: subscribe.end_frame.filter(|_| prefs.end == Some(sequence)),
                        };
                        let base = *first.get_or_insert(sequence);
                        last = Some(last.map_or(sequence, |l| l.max(sequence)));
                        let now = Instant::now();
                        // Every group in flight is now behind a newer one.
                        for group in inflight.iter_mut().filter(|g| g.superseded.is_none()) {
                            group.superseded = Some(now);
                        }
                        self.expire(&mut inflight, prefs.latency(&handle));
                        let (cancel_tx, cancel_rx) = oneshot::channel();
                        inflight.push_back(InflightGroup { sequence, superseded: None, cancel: cancel_tx });
                        let send_order = priority::send_order(prefs.priority, prefs.ordered, sequence.wrapping_sub(base));
                        let group: GroupFuture = Box::pin(self.serve_group(subscribe.id, group, sequence, frames, send_order, cancel_rx));
                        if let Some(older) = current.replace(group) {
                            groups.push(older);
                        }
                    }
                    None => {
                        track_done = true;
                        self.write_end(writer, last).await?;
                    }
                },
                // lite-01/02 have no SUBSCRIBE_UPDATE: any byte there fails to decode (spec appendix A §1.6).
                Some(update) = updates.next() => match update? {
                    Some(update) => {
                        prefs = Prefs {
                            priority: update.priority,
                            ordered: update.ordered,
                            max_latency: Duration::from_millis(update.max_latency_ms),
                            end: update.end_group,
                        };
                        // From the next group on (a wait in progress keeps the old value).
                        max_latency.store(nanos(prefs.latency(&handle)), Ordering::Relaxed);
                        // A relay passes a raised priority and max latency on upstream.
                        handle.request_priority(prefs.priority);
                        handle.request_max_latency(prefs.requested_latency());
                        self.expire(&mut inflight, prefs.latency(&handle));
                    }
                    // The subscriber finished its side: the subscription is cancelled (spec §3.3).
                    None => return Ok(()),
                },
            }
        }
    }

    /// SUBSCRIBE_END (lite-05): the first sequence that will never come.
    async fn write_end(&self, writer: &mut Writer, last: Option<u64>) -> Result<(), Error> {
        if self.version >= Version::Lite05 {
            writer
                .encode(&SubscribeResponse::End {
                    group: last.map_or(0, |l| l + 1),
                })
                .await?;
        }
        Ok(())
    }

    /// Reset in-flight groups that have been behind a newer group for longer than `latency`
    /// (their tail would reach the subscriber too late to matter, and on a link slower than the
    /// stream it would never be sent: newer groups go first), and keep at most
    /// [`MAX_INFLIGHT_GROUPS`] open, so a slow or stalled subscriber costs bounded memory.
    fn expire(&self, inflight: &mut VecDeque<InflightGroup>, latency: Duration) {
        inflight.retain(|g| !g.cancel.is_closed());
        let now = Instant::now();
        while let Some(oldest) = inflight.front() {
            let too_old = oldest
                .superseded
                .is_some_and(|at| now.saturating_duration_since(at) >= latency);
            if !too_old && inflight.len() < MAX_INFLIGHT_GROUPS {
                break;
            }
            if let Some(group) = inflight.pop_front() {
                tracing::trace!(sequence = group.sequence, "resetting expired group stream");
                if group.cancel.send(Error::Old).is_ok() {
                    self.stats.add(Metric::GroupsDropped, 1);
                }
            }
        }
    }

    async fn serve_group(
        &self,
        id: u64,
        group: GroupConsumer,
        sequence: u64,
        frames: FrameRange,
        send_order: i32,
        mut cancel: oneshot::Receiver<Error>,
    ) {
        // Counted as queued from the moment it is scheduled, including while waiting for the peer
        // to grant a stream (flow control), so expiry and the metric both see it.
        let written = Arc::new(AtomicU64::new(0));
        let key = self.next_inflight.fetch_add(1, Ordering::Relaxed);
        lock(&self.inflight).insert(key, (group.clone(), written.clone()));
        // Removed however this ends, also when the subscription is cancelled and this future is
        // dropped mid-write (else the group's bytes stay counted, and held, for the session).
        let _queued = Queued {
            map: &self.inflight,
            key,
        };
        let stream = tokio::select! {
            stream = self.transport.open_uni() => stream.map_err(session_error),
            Ok(err) = &mut cancel => Err(err),
        };
        let mut writer = match stream {
            Ok(stream) => Writer::new(stream, self.version),
            Err(err) => return tracing::debug!(sequence, %err, "group stream not opened"),
        };
        writer.set_priority(send_order);
        self.stats.add(Metric::GroupsOut, 1);
        let result = tokio::select! {
            res = async {
                writer.queue(&UniStreamType::Group);
                writer.queue(&GroupHeader { subscribe_id: id, sequence, frame_start: frames.start });
                let counters = FrameCounters { stats: &self.stats, written: &written };
                write_frames(&mut writer, group, self.version, frames, Some(counters)).await?;
                writer.flush().await
            } => res,
            Ok(err) = &mut cancel => Err(err),
        };
        match result {
            Ok(()) => writer.finish(),
            Err(err) => {
                tracing::trace!(sequence, %err, "group stream ended early");
                writer.reset(&err);
                return;
            }
        }
        // Written is not sent: QUIC may still hold the tail behind newer groups (a link slower
        // than the stream). Until the peer has it all, the group stays in flight, so expiry can
        // reset it and free those buffers instead of sending stale media later.
        tokio::select! {
            () = writer.acknowledged() => {}
            Ok(err) = cancel => {
                tracing::trace!(sequence, %err, "resetting a group not yet delivered");
                writer.reset(&err);
            }
        }
    }
}

/// The groups a session has scheduled and not finished writing, with the bytes written of each.
type Inflight = Mutex<HashMap<u64, (GroupConsumer, Arc<AtomicU64>)>>;

/// Takes one group out of [`Inflight`] when dropped.
struct Queued<'a> {
    map: &'a Inflight,
    key: u64,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        lock(self.map).remove(&self.key);
    }
}

/// A group stream of one subscription, in flight.
struct InflightGroup {
    sequence: u64,
    /// When a newer group of the subscription was scheduled: the age that expires it.
    superseded: Option<Instant>,
    /// Resets the stream with the error sent.
    cancel: oneshot::Sender<Error>,
}

/// A subscription's current preferences (SUBSCRIBE, then each SUBSCRIBE_UPDATE).
struct Prefs {
    priority: u8,
    ordered: bool,
    max_latency: Duration,
    end: Option<u64>,
}

impl Prefs {
    /// The age at which a group is skipped or its stream reset. A subscriber asking for 0 (the
    /// reference default) gets the publisher's retention, so groups are not reset the instant a
    /// newer one starts.
    /// The max latency as a consumer request: `Duration::MAX` when the subscriber gave none.
    fn requested_latency(&self) -> Duration {
        match self.max_latency.is_zero() {
            true => Duration::MAX,
            false => self.max_latency,
        }
    }

    fn latency(&self, current: &Current) -> Duration {
        self.latency_with(current.publisher_latency())
    }

    /// [`Self::latency`] given the publisher's max latency.
    fn latency_with(&self, publisher: Duration) -> Duration {
        match self.max_latency.is_zero() {
            true => publisher,
            false => self.max_latency,
        }
    }
}

/// Which frames of a group [`write_frames`] sends: `start..=end` (lite-06 frame bounds; always
/// the whole group before lite-06, where the codec cannot carry anything else).
#[derive(Debug, Clone, Copy, Default)]
struct FrameRange {
    /// Index of the first frame sent (the GROUP header's Frame Start).
    start: u64,
    /// Index of the last frame sent, inclusive; `None` = to the end of the group.
    end: Option<u64>,
}

/// Where [`write_frames`] counts what it sent.
#[derive(Clone, Copy)]
struct FrameCounters<'a> {
    /// The session's counters (frames and bytes out).
    stats: &'a Stats,
    /// Payload bytes written on this group stream so far.
    written: &'a AtomicU64,
}

/// Write a group's frames (headers + payload chunks as they arrive), the timestamp deltas starting from 0.
async fn write_frames(
    writer: &mut Writer,
    mut group: GroupConsumer,
    version: Version,
    frames: FrameRange,
    counters: Option<FrameCounters<'_>>,
) -> Result<(), Error> {
    let mut previous = 0u64;
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut index = 0u64;
    while let Some(mut frame) = group.next_frame().await? {
        index += 1;
        if index <= frames.start {
            continue;
        }
        if frames.end.is_some_and(|end| index - 1 > end) {
            break;
        }
        let info = *frame.info();
        let delta = (info.timestamp as i128 - previous as i128).clamp(
            -(crate::coding::MAX_ZIGZAG as i128),
            crate::coding::MAX_ZIGZAG as i128,
        ) as i64;
        previous = info.timestamp;
        let header = FrameHeader {
            timestamp_delta: if version >= Version::Lite05 { delta } else { 0 },
            size: info.size,
        };
        // The header goes out with the frame's first payload chunks (an empty frame at once).
        writer.queue(&header);
        if info.size == 0 {
            writer.flush().await?;
        }
        if let Some(counters) = counters {
            counters.stats.add(Metric::FramesOut, 1);
        }
        // Every chunk that has arrived goes out in one write: a relayed 12.5 KB frame arrives as
        // ~10 QUIC-packet-sized chunks, and one write per chunk per subscriber was ~10 connection
        // locks where one does.
        while frame.read_chunks(&mut chunks).await? {
            let len: u64 = chunks.iter().map(|c| c.len() as u64).sum();
            writer.write_chunks(&mut chunks).await?;
            if let Some(counters) = counters {
                counters.stats.add(Metric::BytesOut, len);
                counters.written.fetch_add(len, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

/// A duration in nanoseconds for an atomic, saturating.
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
