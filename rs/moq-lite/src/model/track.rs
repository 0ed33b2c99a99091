//! A track: a sequence of groups, fanned out to any number of consumers.
//!
//! # Fan-out contract
//! - A new consumer starts at the **latest** group, from its first frame (late join lands on a
//!   group boundary, which for media is a keyframe); one created before the track had any group
//!   starts at the first group that arrives.
//! - A consumer that lags skips groups: when it asks for the next group and a newer group arrived
//!   more than its max latency after the one it would get, it jumps ahead; [`TrackConsumer::skipped`]
//!   says how many sequence numbers it passed over. It never blocks the producer or other consumers.
//! - Group streams race, so a group can arrive after a newer one was already taken. By default a
//!   consumer reads in sequence order and never sees it; one that opts in with
//!   [`TrackConsumer::set_late_groups`] gets it next, in arrival order, if it arrives within the
//!   consumer's max latency of being passed over (a relay serves groups this way, spec §7.3).
//! - The producer keeps the latest group always, and older groups only while they are younger than
//!   the track's max latency and within [`MAX_CACHE_GROUPS`] / [`MAX_CACHE_BYTES`]; so however slow
//!   a consumer is, the track's memory stays bounded (a consumer still reading an evicted group keeps
//!   only that group alive).
//! - [`TrackProducer::finish`] ends the track after its last group; [`TrackProducer::abort`] ends it
//!   with an error. Consumers see the end once they have taken every group they will get.
//! - [`TrackConsumer::next_group`] is cancel-safe.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Group, GroupConsumer, GroupProducer};
use crate::Error;

/// Most passed-over sequence numbers a consumer waits for (see [`TrackConsumer::set_late_groups`]).
pub const MAX_LATE_GROUPS: usize = 64;
/// Most groups a track keeps besides the latest.
pub const MAX_CACHE_GROUPS: usize = 1024;
/// Most payload bytes a track keeps in groups other than the latest.
pub const MAX_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// What a subscriber asks for: a track name and its priority.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Track {
    /// Name within the broadcast (free-form; may contain `/`).
    pub name: String,
    /// Subscriber priority: higher is delivered first.
    pub priority: u8,
}

impl Track {
    /// A track request with priority 0.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            priority: 0,
        }
    }

    /// The same request with another priority.
    pub fn with_priority(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }
}

/// A track's publisher-side properties, fixed for its life (TRACK_INFO on lite-05).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackInfo {
    /// Publisher priority (breaks ties between subscriber priorities).
    pub priority: u8,
    /// Deliver oldest group first.
    pub ordered: bool,
    /// How long groups other than the latest are kept.
    pub max_latency: Duration,
    /// Frame timestamp units per second (never 0).
    pub timescale: u64,
}

impl Default for TrackInfo {
    /// The reference defaults: priority 0, unordered, 5 s, millisecond timestamps.
    fn default() -> Self {
        Self {
            priority: 0,
            ordered: false,
            max_latency: Duration::from_secs(5),
            timescale: 1000,
        }
    }
}

#[derive(Debug)]
struct Cached {
    group: GroupConsumer,
    arrived: Instant,
}

#[derive(Debug)]
struct State {
    info: TrackInfo,
    /// False until the publisher's properties are known (a remote track before TRACK_INFO).
    info_known: bool,
    groups: VecDeque<Cached>,
    latest: Option<u64>,
    /// Groups below this sequence were evicted and are refused.
    floor: u64,
    closed: Option<Result<(), Error>>,
}

impl State {
    fn evict(&mut self, now: Instant) {
        let Some(latest) = self.latest else { return };
        let max_age = self.info.max_latency;
        let mut bytes: u64 = self
            .groups
            .iter()
            .filter(|c| c.group.info().sequence != latest)
            .map(|c| c.group.bytes())
            .sum();
        let mut kept = self.groups.len().saturating_sub(1);
        while let Some(oldest) = self.groups.front() {
            let sequence = oldest.group.info().sequence;
            if sequence == latest {
                break;
            }
            let too_old = now.saturating_duration_since(oldest.arrived) > max_age;
            if !too_old && kept <= MAX_CACHE_GROUPS && bytes <= MAX_CACHE_BYTES {
                break;
            }
            bytes -= oldest.group.bytes().min(bytes);
            kept -= 1;
            self.floor = self.floor.max(sequence + 1);
            self.groups.pop_front();
        }
    }
}

#[derive(Debug)]
struct Shared {
    track: Track,
    state: watch::Sender<State>,
    /// What consumers asked for, aggregated: what an upstream subscription should use.
    priority: Arc<watch::Sender<Requested>>,
}

/// What a track's consumers asked of it, aggregated as an upstream subscription carries it
/// (spec §7.1: the highest priority, the longest max latency). Both only ever rise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requested {
    /// The highest subscriber priority asked for.
    pub priority: u8,
    /// The longest max latency asked for: `None` until a consumer asks; `Some(Duration::MAX)`
    /// once one asks for no limit (the publisher's own retention then applies).
    pub max_latency: Option<Duration>,
}

impl Requested {
    /// The max latency as SUBSCRIBE carries it: milliseconds, 0 for none (the publisher's own).
    pub fn max_latency_ms(&self) -> u64 {
        match self.max_latency {
            Some(latency) if latency != Duration::MAX => {
                u64::try_from(latency.as_millis()).unwrap_or(0).max(1)
            }
            _ => 0,
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.state.send_if_modified(|state| {
            if state.closed.is_some() {
                return false;
            }
            state.closed = Some(Err(Error::Dropped));
            true
        });
    }
}

/// Creates a track's groups. Clones share the track; when the last one is dropped unfinished,
/// consumers see [`Error::Dropped`].
#[derive(Debug, Clone)]
pub struct TrackProducer {
    shared: Arc<Shared>,
}

impl TrackProducer {
    /// A new track with the given properties.
    pub fn new(track: Track, info: TrackInfo) -> Self {
        Self::with_state(track, info, true)
    }

    /// A track whose properties are not known yet; [`TrackConsumer::info_ready`] waits for
    /// [`TrackProducer::set_info`].
    pub fn pending(track: Track) -> Self {
        Self::with_state(track, TrackInfo::default(), false)
    }

    fn with_state(track: Track, info: TrackInfo, info_known: bool) -> Self {
        let state = State {
            info,
            info_known,
            groups: VecDeque::new(),
            latest: None,
            floor: 0,
            closed: None,
        };
        Self {
            shared: Arc::new(Shared {
                priority: Arc::new(
                    watch::channel(Requested {
                        priority: track.priority,
                        max_latency: None,
                    })
                    .0,
                ),
                track,
                state: watch::channel(state).0,
            }),
        }
    }

    /// The track's name and priority.
    pub fn track(&self) -> &Track {
        &self.shared.track
    }

    /// The track's current properties.
    pub fn info(&self) -> TrackInfo {
        self.shared.state.borrow().info
    }

    /// Replace the properties (a subscriber learning them from TRACK_INFO).
    pub fn set_info(&self, info: TrackInfo) {
        self.shared.state.send_modify(|state| {
            state.info = info;
            state.info_known = true;
        });
    }

    /// Start group `sequence`. Refused with [`Error::Duplicate`] if it already exists, or
    /// [`Error::Old`] if it is older than what the cache still holds; otherwise it is cached and
    /// offered to consumers (even when older than the latest, which happens when group streams race).
    pub fn create_group(&self, group: Group) -> Result<GroupProducer, Error> {
        let mut result = Err(Error::Closed);
        self.shared.state.send_if_modified(|state| {
            if state.closed.is_some() {
                return false;
            }
            if group.sequence < state.floor {
                result = Err(Error::Old);
                return false;
            }
            let pos = state
                .groups
                .partition_point(|c| c.group.info().sequence < group.sequence);
            if state
                .groups
                .get(pos)
                .is_some_and(|c| c.group.info().sequence == group.sequence)
            {
                result = Err(Error::Duplicate);
                return false;
            }
            let producer = GroupProducer::new(group);
            let now = Instant::now();
            state.groups.insert(
                pos,
                Cached {
                    group: producer.consume(),
                    arrived: now,
                },
            );
            state.latest = Some(
                state
                    .latest
                    .map_or(group.sequence, |l| l.max(group.sequence)),
            );
            state.evict(now);
            result = Ok(producer);
            true
        });
        result
    }

    /// Start the group after the latest (0 for the first).
    pub fn append_group(&self) -> Result<GroupProducer, Error> {
        let sequence = self.shared.state.borrow().latest.map_or(0, |l| l + 1);
        self.create_group(Group { sequence })
    }

    /// Write a one-frame group.
    pub fn write_frame(&self, timestamp: u64, payload: Bytes) -> Result<(), Error> {
        let mut group = self.append_group()?;
        group.write_frame(timestamp, payload)?;
        group.finish();
        Ok(())
    }

    /// End the track normally after its last group.
    pub fn finish(&self) {
        self.close(Ok(()));
    }

    /// End the track with an error.
    pub fn abort(&self, err: Error) {
        self.close(Err(err));
    }

    fn close(&self, result: Result<(), Error>) {
        self.shared.state.send_if_modified(|state| {
            if state.closed.is_some() {
                return false;
            }
            state.closed = Some(result);
            true
        });
    }

    /// The highest priority requested by any consumer so far (an upstream subscription's priority).
    pub fn requested_priority(&self) -> u8 {
        self.shared.priority.borrow().priority
    }

    /// What consumers asked for so far (an upstream subscription's priority and max latency).
    pub fn requested(&self) -> Requested {
        *self.shared.priority.borrow()
    }

    /// Resolves when a consumer asks for a priority above `current`, with the new value.
    pub async fn priority_raised(&self, current: u8) -> u8 {
        let mut rx = self.shared.priority.subscribe();
        let raised = rx
            .wait_for(|p| p.priority > current)
            .await
            .map(|p| p.priority);
        match raised {
            Ok(p) => p,
            // Cannot happen while `self` holds the sender; never resolve rather than guess.
            Err(_) => std::future::pending().await,
        }
    }

    /// Resolves when what consumers asked for differs from `current`, with the new value.
    pub async fn requested_changed(&self, current: Requested) -> Requested {
        let mut rx = self.shared.priority.subscribe();
        let changed = rx.wait_for(|r| *r != current).await.map(|r| *r);
        match changed {
            Ok(r) => r,
            Err(_) => std::future::pending().await,
        }
    }

    /// True once finished or aborted.
    pub fn is_closed(&self) -> bool {
        self.shared.state.borrow().closed.is_some()
    }

    /// A consumer starting at the latest group.
    pub fn consume(&self) -> TrackConsumer {
        TrackConsumer::new(
            self.shared.track.clone(),
            self.shared.state.subscribe(),
            self.shared.priority.clone(),
        )
    }

    /// Resolves once no consumer is left (the moment to cancel an upstream subscription).
    pub async fn unused(&self) {
        self.shared.state.closed().await
    }

    /// True when no consumer exists right now.
    pub fn is_unused(&self) -> bool {
        self.shared.state.receiver_count() == 0
    }

    /// Payload bytes held by cached groups (for tests and stats).
    pub fn cached_bytes(&self) -> u64 {
        self.shared
            .state
            .borrow()
            .groups
            .iter()
            .map(|c| c.group.bytes())
            .sum()
    }

    /// Number of cached groups.
    pub fn cached_groups(&self) -> usize {
        self.shared.state.borrow().groups.len()
    }

    /// A handle that does not keep the track alive.
    pub(crate) fn downgrade(&self) -> TrackWeak {
        TrackWeak(Arc::downgrade(&self.shared))
    }
}

fn raise(aggregate: &watch::Sender<Requested>, priority: u8) {
    aggregate.send_if_modified(|r| {
        let raised = priority > r.priority;
        if raised {
            r.priority = priority;
        }
        raised
    });
}

fn raise_latency(aggregate: &watch::Sender<Requested>, latency: Duration) {
    aggregate.send_if_modified(|r| {
        let raised = r.max_latency.is_none_or(|current| latency > current);
        if raised {
            r.max_latency = Some(latency);
        }
        raised
    });
}

/// A non-owning reference to a track, used for de-duplicating subscriptions.
#[derive(Debug, Clone)]
pub(crate) struct TrackWeak(Weak<Shared>);

impl TrackWeak {
    /// A consumer, if the track is still alive and open.
    pub fn consume(&self) -> Option<TrackConsumer> {
        self.consume_with_priority(0)
    }

    /// A consumer for a subscriber asking for `priority`, raising the track's aggregate priority.
    pub fn consume_with_priority(&self, priority: u8) -> Option<TrackConsumer> {
        let shared = self.0.upgrade()?;
        if shared.state.borrow().closed.is_some() {
            return None;
        }
        raise(&shared.priority, priority);
        Some(TrackConsumer::new(
            shared.track.clone(),
            shared.state.subscribe(),
            shared.priority.clone(),
        ))
    }
}

/// Reads a track's groups. See the module docs for what a lagging consumer sees.
#[derive(Debug, Clone)]
pub struct TrackConsumer {
    track: Track,
    state: watch::Receiver<State>,
    priority: Arc<watch::Sender<Requested>>,
    /// Next sequence wanted; `None` until the first group is taken (join at latest).
    next: Option<u64>,
    max_latency: Duration,
    skipped: u64,
    /// Whether groups arriving after a newer one was taken are still returned.
    late: bool,
    /// Sequences passed over before they arrived, with when and whether they count in
    /// `skipped`: returned if they arrive within `max_latency` of that (only when `late`).
    /// Oldest first, at most [`MAX_LATE_GROUPS`]. Those below the first group a consumer
    /// subscribed before any group sees are not counted: they may never exist.
    holes: VecDeque<Hole>,
    /// Whether a group was returned yet (holes are only below a returned group's successor).
    returned: bool,
    /// Created before the track had any group: the first read starts at the first group that
    /// arrived since, not at the latest one then (a subscriber that was there before group 0 gets
    /// group 0, however late its task first asks).
    from_first: bool,
}

/// A sequence a [`TrackConsumer`] passed over before it arrived (it may still come, late).
#[derive(Clone, Copy, Debug)]
struct Hole {
    /// The group sequence that was missing.
    sequence: u64,
    /// When the consumer went past it: it is returned if it arrives within the max latency of this.
    passed: Instant,
    /// Whether it was counted in [`TrackConsumer::skipped`] (to be taken back if it arrives).
    counted: bool,
}

impl TrackConsumer {
    fn new(
        track: Track,
        state: watch::Receiver<State>,
        priority: Arc<watch::Sender<Requested>>,
    ) -> Self {
        let from_first = state.borrow().latest.is_none();
        Self {
            track,
            state,
            priority,
            next: None,
            max_latency: Duration::ZERO,
            skipped: 0,
            late: false,
            holes: VecDeque::new(),
            returned: false,
            from_first,
        }
    }

    /// The track's name and priority as requested.
    pub fn track(&self) -> &Track {
        &self.track
    }

    /// The track's publisher properties (may change once, when TRACK_INFO arrives).
    pub fn info(&self) -> TrackInfo {
        self.state.borrow().info
    }

    /// The publisher's properties once known; fails if the track ends first.
    pub async fn info_ready(&self) -> Result<TrackInfo, Error> {
        let mut state = self.state.clone();
        let result = match state.wait_for(|s| s.info_known || s.closed.is_some()).await {
            Ok(s) if s.info_known => Ok(s.info),
            Ok(s) => Err(s
                .closed
                .clone()
                .and_then(Result::err)
                .unwrap_or(Error::NotFound)),
            Err(_) => Err(Error::Dropped),
        };
        result
    }

    /// A cached group by sequence (for FETCH), if it is still held.
    pub fn get_group(&self, sequence: u64) -> Option<GroupConsumer> {
        let state = self.state.borrow();
        position(&state.groups, sequence).map(|i| state.groups[i].group.clone())
    }

    /// Ask for a higher priority: an upstream subscription serving this track is updated
    /// (SUBSCRIBE_UPDATE) when this raises the highest priority any consumer asked for.
    pub fn request_priority(&self, priority: u8) {
        raise(&self.priority, priority);
    }

    /// Tell the publisher how stale a group may get for this consumer before its stream may be
    /// reset (`Duration::MAX`: no limit but the publisher's own). An upstream subscription
    /// carries the longest any consumer asked for (SUBSCRIBE_UPDATE when it grows).
    pub fn request_max_latency(&self, max_latency: Duration) {
        raise_latency(&self.priority, max_latency);
    }

    /// How far behind a newer group this consumer lets itself fall before skipping ahead.
    /// Default 0: whenever a newer group exists, older ones are skipped.
    pub fn set_max_latency(&mut self, max_latency: Duration) {
        self.max_latency = max_latency;
    }

    /// Also return a group that arrives after a newer one was returned (its stream lost the race),
    /// if it arrives within the max latency of being passed over; it comes next, out of sequence
    /// order. Off by default: a consumer then sees strictly increasing sequences. A relay turns it
    /// on, so one-frame groups (chat, events) that race are all forwarded.
    pub fn set_late_groups(&mut self, late: bool) {
        self.late = late;
        if !late {
            self.holes.clear();
        }
    }

    /// Whether [`Self::set_late_groups`] is on.
    pub fn takes_late_groups(&self) -> bool {
        self.late
    }

    /// Start at group `sequence` (or the oldest cached after it) instead of the latest.
    pub fn start_at(&mut self, sequence: u64) {
        self.next = Some(sequence);
    }

    /// Sequence numbers passed over so far because this consumer lagged or groups were missing.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Payload bytes the track currently caches (what this track costs in memory).
    pub fn cached_bytes(&self) -> u64 {
        self.state
            .borrow()
            .groups
            .iter()
            .map(|c| c.group.bytes())
            .sum()
    }

    /// The latest group sequence the track has seen.
    pub fn latest(&self) -> Option<u64> {
        self.state.borrow().latest
    }

    /// The next group to read, or `None` once the track has finished. Cancel-safe.
    pub async fn next_group(&mut self) -> Result<Option<GroupConsumer>, Error> {
        loop {
            let next = self.next;
            self.expire_holes(Instant::now());
            let holes = &self.holes;
            // The cache is sorted by sequence, so these look at the newest group and binary-search
            // for holes instead of walking the cache: at 50 one-frame groups a second (audio) a
            // 5-second cache holds 250 groups, and every subscriber asks once per group.
            let late_present = |groups: &VecDeque<Cached>| {
                holes
                    .iter()
                    .filter_map(|h| position(groups, h.sequence))
                    .min()
            };
            let state = self
                .state
                .wait_for(|s| {
                    s.closed.is_some()
                        || match next {
                            None => !s.groups.is_empty(),
                            Some(n) => s
                                .groups
                                .back()
                                .is_some_and(|c| c.group.info().sequence >= n),
                        }
                        || late_present(&s.groups).is_some()
                })
                .await
                .map_err(|_| Error::Dropped)?;

            // A late group first: it is the oldest wanted, and it has waited.
            let late = late_present(&state.groups).and_then(|i| state.groups.get(i));
            if let Some(late) = late {
                let group = late.group.clone();
                let sequence = group.info().sequence;
                drop(state);
                let now = Instant::now();
                let hole = self.holes.iter().find(|h| h.sequence == sequence);
                let in_time = hole
                    .is_some_and(|h| now.saturating_duration_since(h.passed) <= self.max_latency);
                let counted = hole.is_some_and(|h| h.counted);
                self.holes.retain(|h| h.sequence != sequence);
                if !in_time {
                    continue;
                }
                if counted {
                    self.skipped = self.skipped.saturating_sub(1);
                }
                return Ok(Some(group));
            }

            // Subscribed before the first group: read from the oldest group there is (all of them
            // arrived since), under the usual max-latency rule, as if it had been asked for.
            let first_of_all = next.is_none() && self.from_first && !self.returned;
            let next = match next {
                None if self.from_first => state.groups.front().map(|c| c.group.info().sequence),
                next => next,
            };
            let first_candidate = next.map_or(0, |n| {
                state
                    .groups
                    .partition_point(|c| c.group.info().sequence < n)
            });
            let candidates = state.groups.range(first_candidate..);
            let newest = state.groups.back();
            let chosen = match next {
                // Join at the latest group.
                None => newest,
                Some(_) => {
                    let mut chosen = None;
                    for candidate in candidates {
                        let behind = newest.map_or(Duration::ZERO, |n| {
                            n.arrived.saturating_duration_since(candidate.arrived)
                        });
                        let is_newest = newest.is_some_and(|n| {
                            n.group.info().sequence == candidate.group.info().sequence
                        });
                        if is_newest || behind <= self.max_latency {
                            chosen = Some(candidate);
                            break;
                        }
                    }
                    chosen
                }
            };

            if let Some(chosen) = chosen {
                let group = chosen.group.clone();
                let sequence = group.info().sequence;
                // Sequences below this one that may still arrive, from where, and whether they
                // count as skipped.
                let waited = if first_of_all && self.late {
                    // The first group to arrive since we subscribed: older ones may still come
                    // (their streams raced this one's), and they are as much ours; not counted
                    // as skipped, as they may never exist.
                    Some((state.floor, false))
                } else if let Some(n) = next {
                    self.skipped += sequence.saturating_sub(n);
                    // Passed over without having arrived: may still come (after a group already
                    // returned, so never below the first one returned).
                    (self.late && self.returned).then(|| (n.max(state.floor), true))
                } else {
                    None
                };
                if let Some((from, counted)) = waited {
                    let missing = (from..sequence)
                        .rev()
                        .take(MAX_LATE_GROUPS)
                        .filter(|m| position(&state.groups, *m).is_none())
                        .collect::<Vec<_>>();
                    let now = Instant::now();
                    drop(state);
                    for m in missing.into_iter().rev() {
                        if self.holes.len() == MAX_LATE_GROUPS {
                            self.holes.pop_front();
                        }
                        self.holes.push_back(Hole {
                            sequence: m,
                            passed: now,
                            counted,
                        });
                    }
                }
                self.returned = true;
                self.next = Some(sequence + 1);
                return Ok(Some(group));
            }

            match state.closed.clone() {
                Some(Ok(())) => return Ok(None),
                Some(Err(err)) => return Err(err),
                None => continue,
            }
        }
    }

    /// Forget passed-over sequences waited for longer than the max latency.
    fn expire_holes(&mut self, now: Instant) {
        while let Some(hole) = self.holes.front() {
            if now.saturating_duration_since(hole.passed) <= self.max_latency {
                break;
            }
            self.holes.pop_front();
        }
    }

    /// Resolves when the track ends: `Ok` when finished, the error when aborted.
    pub async fn closed(&self) -> Result<(), Error> {
        let mut state = self.state.clone();
        let result = match state.wait_for(|s| s.closed.is_some()).await {
            Ok(s) => s.closed.clone().unwrap_or(Ok(())),
            Err(_) => Err(Error::Dropped),
        };
        result
    }

    /// A fresh consumer of the same track, starting at the latest group.
    pub fn resubscribe(&self) -> TrackConsumer {
        TrackConsumer::new(
            self.track.clone(),
            self.state.clone(),
            self.priority.clone(),
        )
    }
}

/// Where group `sequence` is in the cache (sorted by sequence), if there.
fn position(groups: &VecDeque<Cached>, sequence: u64) -> Option<usize> {
    groups
        .binary_search_by_key(&sequence, |c| c.group.info().sequence)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track() -> TrackProducer {
        TrackProducer::new(Track::new("t"), TrackInfo::default())
    }

    /// `get_group` (FETCH) finds a cached group by sequence, also one that arrived out of order,
    /// and nothing for a sequence the cache does not hold.
    #[test]
    fn get_group_finds_cached_groups_by_sequence() {
        let producer = track();
        for sequence in [0u64, 1, 2, 5, 4, 7] {
            producer.create_group(Group { sequence }).unwrap().finish();
        }
        let consumer = producer.consume();
        for sequence in [0u64, 1, 2, 4, 5, 7] {
            let group = consumer.get_group(sequence).expect("cached");
            assert_eq!(group.info().sequence, sequence);
        }
        for sequence in [3u64, 6, 8, u64::MAX] {
            assert!(consumer.get_group(sequence).is_none(), "{sequence}");
        }
    }

    /// A consumer made before the track's first group gets that group even if it first asks after
    /// newer ones arrived (a loaded relay polls a new subscription late), and skips nothing.
    #[tokio::test]
    async fn a_consumer_from_before_the_first_group_starts_at_the_first() {
        let producer = track();
        let mut early = producer.consume();
        early.set_max_latency(Duration::from_secs(60));
        for i in 0..3u8 {
            let mut g = producer.append_group().unwrap();
            g.write_frame(i as u64, Bytes::from(vec![i])).unwrap();
            g.finish();
        }
        let mut late = producer.consume();
        for want in 0..3 {
            let group = early.next_group().await.unwrap().unwrap();
            assert_eq!(group.info().sequence, want);
        }
        assert_eq!(early.skipped(), 0);
        // One made after groups exist still joins at the latest.
        assert_eq!(late.next_group().await.unwrap().unwrap().info().sequence, 2);
    }

    #[tokio::test]
    async fn late_join_starts_at_latest_group() {
        let producer = track();
        for i in 0..3u8 {
            let mut g = producer.append_group().unwrap();
            g.write_frame(i as u64, Bytes::from(vec![i])).unwrap();
            g.write_frame(i as u64 + 1, Bytes::from(vec![i, i]))
                .unwrap();
            g.finish();
        }
        let mut consumer = producer.consume();
        let mut group = consumer.next_group().await.unwrap().unwrap();
        assert_eq!(group.info().sequence, 2);
        let (frame, payload) = group.read_frame().await.unwrap().unwrap();
        assert_eq!((frame.timestamp, &payload[..]), (2, &[2u8][..]));
        producer.finish();
        assert!(consumer.next_group().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn stalled_consumer_skips_to_newest_and_memory_stays_bounded() {
        let info = TrackInfo {
            max_latency: Duration::from_millis(0),
            ..Default::default()
        };
        let producer = TrackProducer::new(Track::new("t"), info);
        let mut consumer = producer.consume();
        producer
            .write_frame(0, Bytes::from(vec![0u8; 1000]))
            .unwrap();
        assert_eq!(
            consumer
                .next_group()
                .await
                .unwrap()
                .unwrap()
                .info()
                .sequence,
            0
        );
        tokio::time::pause();
        for i in 1..=1000u64 {
            tokio::time::advance(Duration::from_millis(1)).await;
            producer
                .write_frame(i, Bytes::from(vec![0u8; 1000]))
                .unwrap();
        }
        // Only the latest group is kept; the consumer jumps to it and learns what it missed.
        assert!(
            producer.cached_groups() <= 2,
            "cached {}",
            producer.cached_groups()
        );
        assert!(producer.cached_bytes() <= 2000);
        let group = consumer.next_group().await.unwrap().unwrap();
        assert_eq!(group.info().sequence, 1000);
        assert_eq!(consumer.skipped(), 999);
        // Evicted groups are refused.
        assert_eq!(
            producer.create_group(Group { sequence: 5 }).err(),
            Some(Error::Old)
        );
    }

    #[tokio::test]
    async fn cache_is_bounded_by_bytes_even_with_long_latency() {
        let info = TrackInfo {
            max_latency: Duration::from_secs(3600),
            ..Default::default()
        };
        let producer = TrackProducer::new(Track::new("t"), info);
        for i in 0..200u64 {
            producer
                .write_frame(i, Bytes::from(vec![0u8; 1024 * 1024]))
                .unwrap();
        }
        assert!(producer.cached_bytes() <= MAX_CACHE_BYTES + 1024 * 1024);
    }

    #[tokio::test]
    async fn consumer_within_latency_gets_every_group_in_order() {
        let producer = track();
        for i in 0..5 {
            producer.write_frame(i, Bytes::from_static(b"x")).unwrap();
        }
        let mut consumer = producer.consume();
        consumer.set_max_latency(Duration::from_secs(10));
        // Joined at the latest group (4): made after the first groups.
        assert_eq!(
            consumer
                .next_group()
                .await
                .unwrap()
                .unwrap()
                .info()
                .sequence,
            4
        );
        for i in 5..8 {
            producer.write_frame(i, Bytes::from_static(b"x")).unwrap();
        }
        for want in 5..8 {
            assert_eq!(
                consumer
                    .next_group()
                    .await
                    .unwrap()
                    .unwrap()
                    .info()
                    .sequence,
                want
            );
        }
        assert_eq!(consumer.skipped(), 0);
    }

    #[tokio::test]
    async fn groups_arriving_out_of_order_are_accepted() {
        let producer = track();
        let mut consumer = producer.consume();
        consumer.start_at(0);
        consumer.set_max_latency(Duration::from_secs(10));
        let mut g2 = producer.create_group(Group { sequence: 2 }).unwrap();
        let mut g1 = producer.create_group(Group { sequence: 1 }).unwrap();
        g1.finish();
        g2.finish();
        assert_eq!(
            producer.create_group(Group { sequence: 2 }).err(),
            Some(Error::Duplicate)
        );
        assert_eq!(
            consumer
                .next_group()
                .await
                .unwrap()
                .unwrap()
                .info()
                .sequence,
            1
        );
        assert_eq!(
            consumer
                .next_group()
                .await
                .unwrap()
                .unwrap()
                .info()
                .sequence,
            2
        );
    }

    /// The sequence of the next group `consumer` returns.
    async fn next_sequence(consumer: &mut TrackConsumer) -> u64 {
        consumer
            .next_group()
            .await
            .unwrap()
            .unwrap()
            .info()
            .sequence
    }

    /// Start group `sequence` and finish it at once.
    fn add(producer: &TrackProducer, sequence: u64) {
        producer.create_group(Group { sequence }).unwrap().finish();
    }

    /// Group 1 loses the race to group 2 and arrives `delay` after group 2 was taken, by a consumer
    /// with `max_latency`: (group 1 if it was returned, sequences skipped in the end).
    async fn race(late: bool, max_latency: Duration, delay: Duration) -> (Option<u64>, u64) {
        tokio::time::pause();
        let producer = track();
        let mut consumer = producer.consume();
        consumer.set_max_latency(max_latency);
        consumer.set_late_groups(late);
        add(&producer, 0);
        assert_eq!(next_sequence(&mut consumer).await, 0);
        add(&producer, 2);
        assert_eq!(next_sequence(&mut consumer).await, 2);
        assert_eq!(consumer.skipped(), 1);
        tokio::time::advance(delay).await;
        add(&producer, 1);
        add(&producer, 3);
        let returned = match next_sequence(&mut consumer).await {
            1 => Some(1),
            other => {
                assert_eq!(other, 3);
                None
            }
        };
        if returned.is_some() {
            assert_eq!(next_sequence(&mut consumer).await, 3);
        }
        (returned, consumer.skipped())
    }

    #[tokio::test]
    async fn a_group_that_loses_the_race_is_returned_late_when_asked() {
        let within = race(true, Duration::from_secs(10), Duration::from_millis(10)).await;
        assert_eq!(within, (Some(1), 0));
    }

    #[tokio::test]
    async fn a_group_that_loses_the_race_is_skipped_by_default() {
        let strict = race(false, Duration::from_secs(10), Duration::from_millis(10)).await;
        assert_eq!(strict, (None, 1));
    }

    #[tokio::test]
    async fn a_late_group_past_the_max_latency_is_not_returned() {
        let too_late = race(true, Duration::from_millis(100), Duration::from_millis(150)).await;
        assert_eq!(too_late, (None, 1));
    }

    /// A consumer subscribed before any group: group 1's stream overtakes group 0's. With late
    /// groups on, group 0 still comes (it is as much this subscriber's), and nothing counts as
    /// skipped; with them off it is passed over, as any late group is.
    #[tokio::test]
    async fn the_first_groups_racing_each_other_are_all_returned_when_late_groups_are_on() {
        for late in [true, false] {
            let producer = track();
            let mut consumer = producer.consume();
            consumer.set_max_latency(Duration::from_secs(10));
            consumer.set_late_groups(late);
            add(&producer, 1);
            assert_eq!(next_sequence(&mut consumer).await, 1);
            add(&producer, 0);
            add(&producer, 2);
            let next = next_sequence(&mut consumer).await;
            if late {
                assert_eq!(next, 0, "the group that lost the race");
                assert_eq!(next_sequence(&mut consumer).await, 2);
            } else {
                assert_eq!(next, 2);
            }
            assert_eq!(consumer.skipped(), 0, "late {late}");
        }
    }

    /// A consumer that joined a track already running does not wait for groups below the one
    /// it joined at.
    #[tokio::test]
    async fn a_late_joiner_does_not_wait_for_older_groups() {
        let producer = track();
        add(&producer, 4);
        let mut consumer = producer.consume();
        consumer.set_max_latency(Duration::from_secs(10));
        consumer.set_late_groups(true);
        assert_eq!(next_sequence(&mut consumer).await, 4);
        add(&producer, 3);
        add(&producer, 5);
        assert_eq!(next_sequence(&mut consumer).await, 5);
        assert!(consumer.holes.is_empty());
    }

    #[tokio::test]
    async fn late_groups_waited_for_are_bounded() {
        let producer = track();
        let mut consumer = producer.consume();
        consumer.set_max_latency(Duration::from_secs(10));
        consumer.set_late_groups(true);
        add(&producer, 0);
        assert_eq!(next_sequence(&mut consumer).await, 0);
        // 10 000 sequences never arrived: only the newest MAX_LATE_GROUPS are waited for.
        add(&producer, 10_001);
        assert_eq!(next_sequence(&mut consumer).await, 10_001);
        assert_eq!(consumer.holes.len(), MAX_LATE_GROUPS);
        add(&producer, 5);
        let newest_hole = 10_000;
        add(&producer, newest_hole);
        add(&producer, 10_002);
        assert_eq!(next_sequence(&mut consumer).await, newest_hole);
        assert_eq!(next_sequence(&mut consumer).await, 10_002);
        assert_eq!(consumer.skipped(), 9_999);
    }

    #[tokio::test]
    async fn dropping_the_producer_aborts() {
        let producer = track();
        let mut consumer = producer.consume();
        drop(producer);
        assert_eq!(consumer.next_group().await.err(), Some(Error::Dropped));
    }
}
