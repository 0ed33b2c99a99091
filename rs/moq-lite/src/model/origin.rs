//! An origin: the table of live broadcasts by path, and the announcements of changes to it.
//!
//! Publishers insert broadcasts at paths; consumers look them up or follow announcements under a
//! prefix. Several broadcasts (routes) may be published at one path: the one with the lowest
//! [`Cost`] is active, then the shortest hop chain (a local publisher, cost 0 and no hops, first),
//! then the newest among equals, and the others are backups that take over, re-announced, when it closes. A broadcast is unannounced
//! automatically when it closes. A consumer made with [`OriginConsumer::excluding`] never sees a
//! route whose chain holds a given origin id (split horizon: what a peer sent us is not offered
//! back to it), and each consumer is told of a path only when the route it sees there changes.
//!
//! Handles can be scoped: [`OriginProducer::with_root`] and [`OriginConsumer::with_root`] make every
//! path relative to a root (a relay scopes each session to its URL path this way), and
//! [`OriginConsumer::with_prefix`] follows only part of the tree. Prefixes match whole segments.
//!
//! Announcement queues coalesce: a consumer that reads slowly sees each path's newest state once,
//! so its memory is bounded by the number of live paths, never by the rate of changes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

use super::BroadcastConsumer;
use crate::lock::lock;
use crate::{Error, Path};

/// What pulling a broadcast through a route costs (lite-06 route cost), compared warm first, then
/// cold; lower wins.
///
/// `warm` is the cost as the mesh stands (a relay already carrying the broadcast may advertise a
/// discount), `cold` the same path without any discount. Each link a route crosses adds its price
/// to both, saturating at [`Cost::MAX_VALUE`] (the largest a QUIC varint carries).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cost {
    /// Cost now.
    pub warm: u64,
    /// Cost without discounts.
    pub cold: u64,
}

impl Cost {
    /// The largest value either half can take.
    pub const MAX_VALUE: u64 = (1 << 62) - 1;
    /// A local publisher: free.
    pub const ZERO: Cost = Cost { warm: 0, cold: 0 };
    /// A route learned over a version without route cost (before lite-06): free now, unknown
    /// cold, as the reference ranks it (so hop count decides among such routes).
    pub const UNKNOWN: Cost = Cost {
        warm: 0,
        cold: Self::MAX_VALUE,
    };

    /// Both halves at `cost`.
    pub const fn new(cost: u64) -> Self {
        Cost {
            warm: cost,
            cold: cost,
        }
    }

    /// This cost after crossing a link priced `link`, saturating.
    #[must_use]
    pub fn charged(self, link: u64) -> Self {
        Cost {
            warm: self.warm.saturating_add(link).min(Self::MAX_VALUE),
            cold: self.cold.saturating_add(link).min(Self::MAX_VALUE),
        }
    }

    /// Both halves clamped to [`Cost::MAX_VALUE`].
    #[must_use]
    pub fn clamped(self) -> Self {
        Cost {
            warm: self.warm.min(Self::MAX_VALUE),
            cold: self.cold.min(Self::MAX_VALUE),
        }
    }
}

/// A change seen by an [`OriginConsumer`].
#[derive(Debug, Clone)]
pub struct Announced {
    /// The broadcast's path relative to the consumer's root.
    pub path: Path,
    /// The live broadcast, or `None` when it ended.
    pub broadcast: Option<BroadcastConsumer>,
    /// Origin IDs the announcement travelled through, original publisher first and the nearest
    /// relay last (empty when published locally).
    pub hops: Vec<u64>,
    /// What the route costs ([`Cost::ZERO`] when published locally or ended).
    pub cost: Cost,
}

#[derive(Debug, Clone)]
struct Entry {
    id: u64,
    broadcast: BroadcastConsumer,
    hops: Vec<u64>,
    cost: Cost,
}

impl Entry {
    /// Ordering key: the largest is the best route (lowest cost, then shortest chain, then newest).
    fn rank(&self) -> (std::cmp::Reverse<Cost>, std::cmp::Reverse<usize>, u64) {
        (
            std::cmp::Reverse(self.cost),
            std::cmp::Reverse(self.hops.len()),
            self.id,
        )
    }
}

/// A route found by [`OriginConsumer::route`].
#[derive(Debug, Clone)]
pub struct Route {
    /// The broadcast.
    pub broadcast: BroadcastConsumer,
    /// Origin IDs the announcement travelled through (see [`Announced::hops`]).
    pub hops: Vec<u64>,
    /// What the route costs.
    pub cost: Cost,
}

#[derive(Debug, Default)]
struct QueueState {
    order: VecDeque<Path>,
    pending: HashMap<Path, Option<Entry>>,
    /// The route last queued per path (entry id), so an unchanged route is not announced again.
    current: HashMap<Path, u64>,
}

#[derive(Debug)]
struct Queue {
    /// Absolute prefixes followed (a path is followed if it is under any of them).
    prefixes: Vec<Path>,
    /// Routes whose chain holds this origin id are invisible to this queue (0 = none hidden).
    exclude: u64,
    state: Mutex<QueueState>,
    notify: Notify,
}

impl Queue {
    /// Queue `path`'s route as this queue sees it, if it differs from the last one queued.
    fn push(&self, path: &Path, entries: Option<&Vec<Entry>>) {
        let entry = entries.and_then(|e| best(e, self.exclude)).cloned();
        let mut state = lock(&self.state);
        let changed = match &entry {
            Some(e) => state.current.insert(path.clone(), e.id) != Some(e.id),
            None => state.current.remove(path).is_some(),
        };
        if !changed {
            return;
        }
        if state.pending.insert(path.clone(), entry).is_none() {
            state.order.push_back(path.clone());
        }
        drop(state);
        self.notify.notify_one();
    }
}

/// The route to use among `entries`: the lowest cost, then the shortest hop chain, then the most
/// recent (spec §5.6), skipping chains that hold `exclude` (when not 0).
fn best(entries: &[Entry], exclude: u64) -> Option<&Entry> {
    entries
        .iter()
        .filter(|e| exclude == 0 || !e.hops.contains(&exclude))
        .max_by_key(|e| e.rank())
}

#[derive(Debug, Default)]
struct State {
    broadcasts: BTreeMap<Path, Vec<Entry>>,
    queues: Vec<Weak<Queue>>,
    next_id: u64,
}

impl State {
    /// Tell every queue following `path` about its route there (each skips an unchanged one).
    fn announce(&mut self, path: &Path) {
        let entries = self.broadcasts.get(path);
        self.queues.retain(|q| q.strong_count() > 0);
        for queue in self.queues.iter().filter_map(Weak::upgrade) {
            if matches_any(path, &queue.prefixes) {
                queue.push(path, entries);
            }
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
}

fn matches_any(path: &Path, prefixes: &[Path]) -> bool {
    prefixes.iter().any(|p| path.has_prefix(p))
}

/// The paths under both some prefix of `a` and some prefix of `b` (segment-aware), as prefixes.
fn intersect(a: &[Path], b: &[Path]) -> Vec<Path> {
    let mut out: Vec<Path> = Vec::new();
    for x in a {
        for y in b {
            let deeper = match (x.has_prefix(y), y.has_prefix(x)) {
                (true, _) => x,
                (_, true) => y,
                _ => continue,
            };
            if !out.contains(deeper) {
                out.push(deeper.clone());
            }
        }
    }
    out
}

fn join(root: &Path, paths: &[Path]) -> Result<Vec<Path>, Error> {
    paths
        .iter()
        .map(|p| {
            root.join(p)
                .map_err(|_| Error::ProtocolViolation("path too long"))
        })
        .collect()
}

/// Publishes broadcasts into an origin. Cheap to clone; clones share the table.
#[derive(Debug, Clone, Default)]
pub struct OriginProducer {
    shared: Arc<Shared>,
    root: Path,
    /// Absolute prefixes this handle may publish under; `None` = anywhere.
    allowed: Option<Vec<Path>>,
}

impl OriginProducer {
    /// An empty origin.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same origin with every path relative to `root` (below this handle's own root).
    pub fn with_root(&self, root: &Path) -> Result<Self, Error> {
        let root = self
            .root
            .join(root)
            .map_err(|_| Error::ProtocolViolation("root path too long"))?;
        Ok(Self {
            shared: self.shared.clone(),
            root,
            allowed: self.allowed.clone(),
        })
    }

    /// The same origin, allowed to publish only under `prefixes` (relative to the root; segment
    /// aware). Publishing elsewhere fails with [`Error::Unauthorized`].
    pub fn publish_only(&self, prefixes: &[Path]) -> Result<Self, Error> {
        let wanted = join(&self.root, prefixes)?;
        let allowed = match &self.allowed {
            Some(current) => intersect(current, &wanted),
            None => wanted,
        };
        Ok(Self {
            shared: self.shared.clone(),
            root: self.root.clone(),
            allowed: Some(allowed),
        })
    }

    /// This handle's root, absolute.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Publish `broadcast` at `path` (relative to the root), announcing it to consumers. It is
    /// unannounced when it closes. Must be called within a tokio runtime.
    pub fn publish_broadcast(
        &self,
        path: &Path,
        broadcast: BroadcastConsumer,
    ) -> Result<(), Error> {
        self.publish_route(path, broadcast, Vec::new(), Cost::ZERO)
    }

    /// Publish a broadcast that arrived through other origins (`hops`, original publisher first),
    /// at no cost.
    pub fn publish_with_hops(
        &self,
        path: &Path,
        broadcast: BroadcastConsumer,
        hops: Vec<u64>,
    ) -> Result<(), Error> {
        self.publish_route(path, broadcast, hops, Cost::ZERO)
    }

    /// Publish a broadcast that arrived through other origins (`hops`, original publisher first)
    /// at `cost` (already charged with the link it came over).
    pub fn publish_route(
        &self,
        path: &Path,
        broadcast: BroadcastConsumer,
        hops: Vec<u64>,
        cost: Cost,
    ) -> Result<(), Error> {
        let absolute = self
            .root
            .join(path)
            .map_err(|_| Error::ProtocolViolation("path too long"))?;
        if let Some(allowed) = &self.allowed {
            if !matches_any(&absolute, allowed) {
                return Err(Error::Unauthorized);
            }
        }
        if broadcast.is_closed() {
            return Err(Error::Closed);
        }
        let mut state = lock(&self.shared.state);
        let id = state.next_id;
        state.next_id += 1;
        let entry = Entry {
            id,
            broadcast: broadcast.clone(),
            hops,
            cost: cost.clamped(),
        };
        state
            .broadcasts
            .entry(absolute.clone())
            .or_default()
            .push(entry);
        state.announce(&absolute);
        drop(state);

        let weak = Arc::downgrade(&self.shared);
        tokio::spawn(async move {
            let _ = broadcast.closed().await;
            if let Some(shared) = weak.upgrade() {
                remove(&shared, &absolute, id);
            }
        });
        Ok(())
    }

    /// A consumer of everything under this handle's root.
    pub fn consume(&self) -> OriginConsumer {
        OriginConsumer::new(
            self.shared.clone(),
            self.root.clone(),
            vec![self.root.clone()],
            0,
        )
    }
}

fn remove(shared: &Shared, path: &Path, id: u64) {
    let mut state = lock(&shared.state);
    let Some(entries) = state.broadcasts.get_mut(path) else {
        return;
    };
    let Some(pos) = entries.iter().position(|e| e.id == id) else {
        return;
    };
    entries.remove(pos);
    if entries.is_empty() {
        state.broadcasts.remove(path);
    }
    state.announce(path);
}

/// Looks up broadcasts and follows announcements under a prefix.
#[derive(Debug)]
pub struct OriginConsumer {
    shared: Arc<Shared>,
    root: Path,
    queue: Arc<Queue>,
}

impl OriginConsumer {
    fn new(shared: Arc<Shared>, root: Path, prefixes: Vec<Path>, exclude: u64) -> Self {
        let queue = Arc::new(Queue {
            prefixes: prefixes.clone(),
            exclude,
            state: Mutex::default(),
            notify: Notify::new(),
        });
        let mut state = lock(&shared.state);
        state.queues.push(Arc::downgrade(&queue));
        // The initial snapshot: every live broadcast under the prefixes.
        for (path, entries) in state.broadcasts.iter() {
            if matches_any(path, &prefixes) {
                queue.push(path, Some(entries));
            }
        }
        drop(state);
        Self {
            shared,
            root,
            queue,
        }
    }

    /// This handle's root, absolute.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A new consumer with paths relative to `root` (below this root), following what this one
    /// follows under it.
    pub fn with_root(&self, root: &Path) -> Result<Self, Error> {
        let root = self
            .root
            .join(root)
            .map_err(|_| Error::ProtocolViolation("root path too long"))?;
        let prefixes = intersect(&self.queue.prefixes, std::slice::from_ref(&root));
        Ok(Self::new(
            self.shared.clone(),
            root,
            prefixes,
            self.queue.exclude,
        ))
    }

    /// A new consumer with the same root that follows only `prefix` (relative to the root), within
    /// what this one may see.
    pub fn with_prefix(&self, prefix: &Path) -> Result<Self, Error> {
        self.consume_only(std::slice::from_ref(prefix))
    }

    /// A new consumer with the same root that sees only broadcasts under `prefixes` (relative to
    /// the root; segment aware), within what this one may see. An empty list sees nothing.
    pub fn consume_only(&self, prefixes: &[Path]) -> Result<Self, Error> {
        let wanted = join(&self.root, prefixes)?;
        let prefixes = intersect(&self.queue.prefixes, &wanted);
        Ok(Self::new(
            self.shared.clone(),
            self.root.clone(),
            prefixes,
            self.queue.exclude,
        ))
    }

    /// A new consumer like this one that never sees a route whose hop chain holds `hop` (split
    /// horizon toward the relay with that origin id; 0 hides nothing). Announcements and lookups
    /// fall back to the best route that does not pass through it.
    pub fn excluding(&self, hop: u64) -> Self {
        Self::new(
            self.shared.clone(),
            self.root.clone(),
            self.queue.prefixes.clone(),
            hop,
        )
    }

    /// The route this consumer would use at `path` (relative to the root), skipping chains that
    /// hold `exclude` as well as this consumer's own exclusion.
    pub fn route(&self, path: &Path, exclude: u64) -> Option<Route> {
        find_route(
            &self.shared,
            &self.root,
            &self.queue.prefixes,
            self.queue.exclude,
            path,
            exclude,
        )
    }

    /// A handle that looks routes up as this consumer does but follows no announcements: cheap to
    /// keep (nothing is queued for it), e.g. one per served subscription.
    pub fn lookup(&self) -> OriginLookup {
        OriginLookup {
            shared: self.shared.clone(),
            root: self.root.clone(),
            prefixes: self.queue.prefixes.clone(),
            exclude: self.queue.exclude,
        }
    }

    /// Every route this consumer can see, by path (relative to the root): each route's hop chain,
    /// the one in use first.
    pub fn routes(&self) -> BTreeMap<Path, Vec<Vec<u64>>> {
        let state = lock(&self.shared.state);
        let mut out = BTreeMap::new();
        for (path, entries) in state.broadcasts.iter() {
            if !matches_any(path, &self.queue.prefixes) {
                continue;
            }
            let Some(relative) = path.strip_prefix(&self.root) else {
                continue;
            };
            let Some(active) = best(entries, self.queue.exclude) else {
                continue;
            };
            let mut chains = vec![active.hops.clone()];
            chains.extend(
                entries
                    .iter()
                    .filter(|e| e.id != active.id)
                    .filter(|e| self.queue.exclude == 0 || !e.hops.contains(&self.queue.exclude))
                    .map(|e| e.hops.clone()),
            );
            out.insert(relative, chains);
        }
        out
    }

    /// The next change: first every broadcast live when this consumer was made, then updates.
    /// Cancel-safe.
    pub async fn announced(&mut self) -> Announced {
        loop {
            let queue = self.queue.clone();
            let notified = queue.notify.notified();
            if let Some(announced) = self.try_announced() {
                return announced;
            }
            notified.await;
        }
    }

    /// The next change if one is pending.
    pub fn try_announced(&mut self) -> Option<Announced> {
        let mut state = lock(&self.queue.state);
        while let Some(path) = state.order.pop_front() {
            let Some(entry) = state.pending.remove(&path) else {
                continue;
            };
            let Some(relative) = path.strip_prefix(&self.root) else {
                continue;
            };
            return Some(match entry {
                Some(e) => Announced {
                    path: relative,
                    broadcast: Some(e.broadcast),
                    hops: e.hops,
                    cost: e.cost,
                },
                None => Announced {
                    path: relative,
                    broadcast: None,
                    hops: Vec::new(),
                    cost: Cost::ZERO,
                },
            });
        }
        None
    }

    /// The live broadcast at `path` (relative to the root), if any.
    pub fn consume_broadcast(&self, path: &Path) -> Option<BroadcastConsumer> {
        self.route(path, 0).map(|r| r.broadcast)
    }

    /// Wait until a broadcast is live at `path` and return it.
    pub async fn wait_for_broadcast(&self, path: &Path) -> Result<BroadcastConsumer, Error> {
        let mut watcher = self.with_prefix(path)?;
        loop {
            if let Some(broadcast) = self.consume_broadcast(path) {
                return Ok(broadcast);
            }
            let announced = watcher.announced().await;
            if let (true, Some(broadcast)) = (&announced.path == path, announced.broadcast) {
                return Ok(broadcast);
            }
        }
    }
}

/// Looks routes up in an origin without following its announcements (see
/// [`OriginConsumer::lookup`]).
#[derive(Debug, Clone)]
pub struct OriginLookup {
    shared: Arc<Shared>,
    root: Path,
    prefixes: Vec<Path>,
    exclude: u64,
}

impl OriginLookup {
    /// As [`OriginConsumer::route`].
    pub fn route(&self, path: &Path, exclude: u64) -> Option<Route> {
        find_route(
            &self.shared,
            &self.root,
            &self.prefixes,
            self.exclude,
            path,
            exclude,
        )
    }

    /// A consumer that follows announcements at and under `path` only (relative to the root), to
    /// wait for a route to change; drop it when done.
    pub fn watch(&self, path: &Path) -> Result<OriginConsumer, Error> {
        let wanted = join(&self.root, std::slice::from_ref(path))?;
        let prefixes = intersect(&self.prefixes, &wanted);
        Ok(OriginConsumer::new(
            self.shared.clone(),
            self.root.clone(),
            prefixes,
            self.exclude,
        ))
    }
}

/// The best route at `path` under `root` among those visible through `prefixes` and not through
/// `hidden` (a consumer's own exclusion) or `exclude`.
fn find_route(
    shared: &Shared,
    root: &Path,
    prefixes: &[Path],
    hidden: u64,
    path: &Path,
    exclude: u64,
) -> Option<Route> {
    let absolute = root.join(path).ok()?;
    if !matches_any(&absolute, prefixes) {
        return None;
    }
    let state = lock(&shared.state);
    let entries = state.broadcasts.get(&absolute)?;
    entries
        .iter()
        .filter(|e| hidden == 0 || !e.hops.contains(&hidden))
        .filter(|e| exclude == 0 || !e.hops.contains(&exclude))
        .max_by_key(|e| e.rank())
        .map(|e| Route {
            broadcast: e.broadcast.clone(),
            hops: e.hops.clone(),
            cost: e.cost,
        })
}

impl Clone for OriginConsumer {
    /// A fresh consumer with the same root and prefix; it replays the current snapshot.
    fn clone(&self) -> Self {
        Self::new(
            self.shared.clone(),
            self.root.clone(),
            self.queue.prefixes.clone(),
            self.queue.exclude,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::BroadcastProducer;

    fn p(s: &str) -> Path {
        Path::new(s).unwrap()
    }

    #[tokio::test]
    async fn snapshot_then_updates() {
        let origin = OriginProducer::new();
        let a = BroadcastProducer::new();
        origin.publish_broadcast(&p("room/a"), a.consume()).unwrap();
        let mut consumer = origin.consume();
        let first = consumer.announced().await;
        assert_eq!(first.path, p("room/a"));
        assert!(first.broadcast.is_some());
        drop(a);
        let ended = consumer.announced().await;
        assert_eq!(ended.path, p("room/a"));
        assert!(ended.broadcast.is_none());
        assert!(origin.consume().consume_broadcast(&p("room/a")).is_none());
    }

    #[tokio::test]
    async fn prefixes_are_segment_aware_and_roots_scope() {
        let origin = OriginProducer::new();
        let demo = BroadcastProducer::new();
        let demo2 = BroadcastProducer::new();
        origin
            .publish_broadcast(&p("demo/x"), demo.consume())
            .unwrap();
        origin
            .publish_broadcast(&p("demo2/y"), demo2.consume())
            .unwrap();
        let mut scoped = origin.consume().with_root(&p("demo")).unwrap();
        let a = scoped.announced().await;
        assert_eq!(a.path, p("x"));
        assert!(scoped.try_announced().is_none());
        // A producer scoped to a root publishes below it.
        let inner = origin.with_root(&p("demo")).unwrap();
        let z = BroadcastProducer::new();
        inner.publish_broadcast(&p("z"), z.consume()).unwrap();
        assert!(origin.consume().consume_broadcast(&p("demo/z")).is_some());
        assert_eq!(scoped.announced().await.path, p("z"));
    }

    #[tokio::test]
    async fn permissions_restrict_publishing_and_discovery() {
        let origin = OriginProducer::new();
        let limited = origin.publish_only(&[p("room/me")]).unwrap();
        let mine = BroadcastProducer::new();
        assert_eq!(
            limited.publish_broadcast(&p("room/me/cam"), mine.consume()),
            Ok(())
        );
        let other = BroadcastProducer::new();
        assert_eq!(
            limited.publish_broadcast(&p("room/mean"), other.consume()),
            Err(Error::Unauthorized)
        );
        origin
            .publish_broadcast(&p("room/you"), other.consume())
            .unwrap();

        // A viewer allowed only `room/me` sees only that, even when asking for everything.
        let viewer = origin.consume().consume_only(&[p("room/me")]).unwrap();
        assert!(viewer.consume_broadcast(&p("room/you")).is_none());
        assert!(viewer.consume_broadcast(&p("room/me/cam")).is_some());
        let mut all = viewer.with_prefix(&Path::ROOT).unwrap();
        assert_eq!(all.announced().await.path, p("room/me/cam"));
        assert!(all.try_announced().is_none());
        // Scoping to a root keeps the restriction.
        let rooted = viewer.with_root(&p("room")).unwrap();
        assert!(rooted.consume_broadcast(&p("me/cam")).is_some());
        assert!(rooted.consume_broadcast(&p("you")).is_none());
        // Nothing allowed: nothing seen.
        assert!(origin
            .consume()
            .consume_only(&[])
            .unwrap()
            .consume_broadcast(&p("room/me/cam"))
            .is_none());
    }

    #[tokio::test]
    async fn backup_takes_over_when_active_closes() {
        let origin = OriginProducer::new();
        let first = BroadcastProducer::new();
        let second = BroadcastProducer::new();
        origin.publish_broadcast(&p("a"), first.consume()).unwrap();
        origin.publish_broadcast(&p("a"), second.consume()).unwrap();
        let consumer = origin.consume();
        assert!(consumer
            .consume_broadcast(&p("a"))
            .unwrap()
            .same(&second.consume()));
        drop(second);
        tokio::task::yield_now().await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(consumer
            .consume_broadcast(&p("a"))
            .unwrap()
            .same(&first.consume()));
    }

    #[tokio::test]
    async fn slow_consumer_queue_coalesces() {
        let origin = OriginProducer::new();
        let mut consumer = origin.consume();
        let mut keep = Vec::new();
        for _ in 0..100 {
            let b = BroadcastProducer::new();
            origin.publish_broadcast(&p("same"), b.consume()).unwrap();
            keep.push(b);
        }
        assert!(consumer.try_announced().is_some());
        assert!(consumer.try_announced().is_none());
    }

    #[tokio::test]
    async fn the_shortest_chain_wins_then_the_newest_and_unchanged_routes_are_not_reannounced() {
        let origin = OriginProducer::new();
        let mut consumer = origin.consume();
        let far = BroadcastProducer::new();
        origin
            .publish_with_hops(&p("a"), far.consume(), vec![1, 2])
            .unwrap();
        assert_eq!(consumer.announced().await.hops, vec![1, 2]);
        let near = BroadcastProducer::new();
        origin
            .publish_with_hops(&p("a"), near.consume(), vec![3])
            .unwrap();
        assert_eq!(consumer.announced().await.hops, vec![3]);
        // A newer but longer route changes nothing: no announcement.
        let longer = BroadcastProducer::new();
        origin
            .publish_with_hops(&p("a"), longer.consume(), vec![4, 5, 6])
            .unwrap();
        assert!(consumer.try_announced().is_none());
        // A newer route as short as the best takes over.
        let newer = BroadcastProducer::new();
        origin
            .publish_with_hops(&p("a"), newer.consume(), vec![7])
            .unwrap();
        assert_eq!(consumer.announced().await.hops, vec![7]);
        assert_eq!(
            consumer.routes().get(&p("a")).unwrap()[0],
            vec![7],
            "the route in use first"
        );
        assert_eq!(consumer.routes().get(&p("a")).unwrap().len(), 4);
        // It goes: back to the older short one.
        drop(newer);
        assert_eq!(consumer.announced().await.hops, vec![3]);
    }

    #[tokio::test]
    async fn a_consumer_excluding_a_hop_never_sees_routes_through_it() {
        let origin = OriginProducer::new();
        let via_peer = BroadcastProducer::new();
        origin
            .publish_with_hops(&p("a"), via_peer.consume(), vec![9])
            .unwrap();
        let mut toward_peer = origin.consume().excluding(9);
        assert!(toward_peer.try_announced().is_none());
        assert!(toward_peer.consume_broadcast(&p("a")).is_none());
        assert!(origin.consume().route(&p("a"), 9).is_none());
        // Another route appears, longer but not through the peer: that one is offered.
        let other = BroadcastProducer::new();
        origin
            .publish_with_hops(&p("a"), other.consume(), vec![1, 2])
            .unwrap();
        let seen = toward_peer.announced().await;
        assert_eq!(seen.hops, vec![1, 2]);
        assert!(seen.broadcast.unwrap().same(&other.consume()));
        assert_eq!(
            origin.consume().route(&p("a"), 0).unwrap().hops,
            vec![9],
            "others still use the shorter route"
        );
        drop(other);
        let gone = toward_peer.announced().await;
        assert!(
            gone.broadcast.is_none(),
            "withdrawn once only its route left"
        );
    }

    #[tokio::test]
    async fn the_cheapest_route_wins_then_the_shortest_then_the_newest() {
        let origin = OriginProducer::new();
        let mut consumer = origin.consume();
        // A short but expensive route (a metered link) ...
        let short = BroadcastProducer::new();
        origin
            .publish_route(&p("a"), short.consume(), vec![1], Cost::new(10))
            .unwrap();
        assert_eq!(consumer.announced().await.hops, vec![1]);
        // ... loses to a longer, cheaper one.
        let cheap = BroadcastProducer::new();
        origin
            .publish_route(&p("a"), cheap.consume(), vec![2, 3, 4], Cost::new(3))
            .unwrap();
        let seen = consumer.announced().await;
        assert_eq!((seen.hops, seen.cost), (vec![2, 3, 4], Cost::new(3)));
        // Equal warm cost: the lower cold cost wins (the undiscounted path).
        let colder = BroadcastProducer::new();
        origin
            .publish_route(
                &p("a"),
                colder.consume(),
                vec![5, 6, 7],
                Cost { warm: 3, cold: 2 },
            )
            .unwrap();
        assert_eq!(consumer.announced().await.hops, vec![5, 6, 7]);
        // Same cost: the shorter chain wins; same length: the newer.
        let shorter = BroadcastProducer::new();
        origin
            .publish_route(
                &p("a"),
                shorter.consume(),
                vec![8],
                Cost { warm: 3, cold: 2 },
            )
            .unwrap();
        assert_eq!(consumer.announced().await.hops, vec![8]);
        let newer = BroadcastProducer::new();
        origin
            .publish_route(&p("a"), newer.consume(), vec![9], Cost { warm: 3, cold: 2 })
            .unwrap();
        assert_eq!(consumer.announced().await.hops, vec![9]);
        // A local publisher is free and has no hops: it beats them all.
        let local = BroadcastProducer::new();
        origin.publish_broadcast(&p("a"), local.consume()).unwrap();
        let seen = consumer.announced().await;
        assert_eq!((seen.hops, seen.cost), (vec![], Cost::ZERO));
        // Costs saturate instead of wrapping round to cheap.
        assert_eq!(
            Cost::new(Cost::MAX_VALUE).charged(5),
            Cost::new(Cost::MAX_VALUE)
        );
        assert!(
            Cost::UNKNOWN < Cost::new(1),
            "a lite-05 route ranks as free now"
        );
    }
}
