//! A served subscription that follows its broadcast from route to route.
//!
//! A relay serves a SUBSCRIBE from one route of the broadcast (spec §13.1: the shortest hop chain,
//! then the most recent). When that route goes away, because the link it came over died or its
//! relay drains (GOAWAY) or the publisher moved to another relay, the subscription is not failed:
//! it moves to the next route the origin offers, so viewers do not notice and do not re-subscribe.
//!
//! * Route withdrawn while its track still delivers (a drain): the next route is subscribed at once
//!   and the old one is read until the new one delivers its first group (so the old route's
//!   upstream subscription can end and its relay leave); a group is forwarded once, from whichever
//!   route has it first, so the groups the viewer gets stay contiguous.
//! * Track failed with its route (a dead link): the next route is waited for up to
//!   [`REROUTE_WAIT`], then the subscription continues from it.
//! * A new route whose first group is older than what was sent (a publisher that moved and counts
//!   its groups from 0 again) has its group sequences shifted to follow on from the last one sent,
//!   so the viewer sees one increasing sequence.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::model::{GroupConsumer, OriginLookup, Route, Track, TrackConsumer};
use crate::{Error, Path};

/// How long a subscription whose route failed waits for another route before it fails too.
pub const REROUTE_WAIT: Duration = Duration::from_secs(2);

/// How long after its track fails a route's broadcast may take to close for the failure to count
/// as the route's (a link's session ends both, in either order).
const ROUTE_FAILURE_GRACE: Duration = Duration::from_millis(500);

/// The route's track a subscription reads now, shared with the subscription loop: what it asks
/// for (a SUBSCRIBE_UPDATE's priority and max latency) goes to the route in use, and is asked of
/// the next route too.
#[derive(Clone)]
pub(crate) struct Current(Arc<Mutex<CurrentState>>);

struct CurrentState {
    consumer: TrackConsumer,
    priority: u8,
    latency: Duration,
}

impl Current {
    /// Reading `consumer`, which was asked for `priority` and `latency`.
    pub fn new(consumer: TrackConsumer, priority: u8, latency: Duration) -> Self {
        Self(Arc::new(Mutex::new(CurrentState {
            consumer,
            priority,
            latency,
        })))
    }

    /// The publisher's max latency on the route in use.
    pub fn publisher_latency(&self) -> Duration {
        crate::lock::lock(&self.0).consumer.info().max_latency
    }

    /// Ask the route in use (and any later one) for this priority.
    pub fn request_priority(&self, priority: u8) {
        let mut state = crate::lock::lock(&self.0);
        state.priority = priority;
        state.consumer.request_priority(priority);
    }

    /// Ask the route in use (and any later one) for this max latency.
    pub fn request_max_latency(&self, latency: Duration) {
        let mut state = crate::lock::lock(&self.0);
        state.latency = latency;
        state.consumer.request_max_latency(latency);
    }

    /// Move to `consumer`, asking it what the previous one was asked.
    fn set(&self, consumer: TrackConsumer) {
        let mut state = crate::lock::lock(&self.0);
        consumer.request_priority(state.priority);
        consumer.request_max_latency(state.latency);
        state.consumer = consumer;
    }
}

/// Where a subscription finds its routes.
pub(crate) struct Routes {
    /// The session's view of the origin (a lookup: nothing is queued for it).
    pub origin: OriginLookup,
    /// The broadcast path, relative to the origin's root.
    pub path: Path,
    /// The subscriber's origin id: routes through it are never used (split horizon).
    pub exclude: u64,
}

/// A rare event waited for across calls, boxed so the common path stays small.
type Waiting<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// The track of a served subscription, across routes.
pub(crate) struct Follow {
    routes: Option<Routes>,
    track: Track,
    route: Option<Route>,
    consumer: TrackConsumer,
    /// The previous route's track, read until it ends after a drain moved us off it.
    old: Option<TrackConsumer>,
    /// Resolves when the current route is withdrawn (its broadcast closes); made once per route.
    closed: Option<Waiting<()>>,
    /// The current route was withdrawn: the next one, waited for until a deadline.
    seeking: Option<Waiting<Option<Route>>>,
    /// The highest sequence handed out (after shifting).
    last: Option<u64>,
    /// Added to the current route's sequences; decided by its first group.
    shift: Option<u64>,
    /// Added to the old route's sequences.
    old_shift: u64,
    /// The subscription has left its first route: groups are deduplicated from now on.
    moved: bool,
    /// Max latency applied to every route's consumer (shared with the subscription loop).
    max_latency: Arc<AtomicU64>,
    /// The route in use, as the subscription loop sees it.
    current: Current,
}

impl Follow {
    /// Follow `consumer` (read from `route`); `routes` is where to look for the next one (`None`:
    /// never reroute, as for a publisher that is not a relay).
    pub fn new(
        consumer: TrackConsumer,
        route: Option<Route>,
        routes: Option<Routes>,
        max_latency: Arc<AtomicU64>,
        current: Current,
    ) -> Self {
        let mut follow = Self {
            routes,
            track: consumer.track().clone(),
            route,
            consumer,
            old: None,
            closed: None,
            seeking: None,
            last: None,
            shift: Some(0),
            old_shift: 0,
            moved: false,
            max_latency,
            current,
        };
        follow.watch_route();
        follow
    }

    fn latency(&self) -> Duration {
        Duration::from_nanos(self.max_latency.load(Ordering::Relaxed))
    }

    /// Watch the current route's broadcast for its withdrawal (only when rerouting is possible).
    fn watch_route(&mut self) {
        self.closed = match (&self.route, &self.routes) {
            (Some(route), Some(_)) => {
                let broadcast = route.broadcast.clone();
                Some(Box::pin(async move {
                    let _ = broadcast.closed().await;
                }))
            }
            _ => None,
        };
    }

    /// Start looking for a route other than the current one, until `deadline`.
    fn seek(&mut self, deadline: Instant) {
        self.seeking = self.routes.as_ref().map(|routes| {
            let (origin, path, exclude) =
                (routes.origin.clone(), routes.path.clone(), routes.exclude);
            let current = self.route.as_ref().map(|r| r.broadcast.clone());
            Box::pin(wait_route(origin, path, exclude, current, deadline)) as Waiting<_>
        });
    }

    /// The next group to serve and the sequence to send it as; `None` when the track finished.
    pub async fn next_group(&mut self) -> Result<Option<(GroupConsumer, u64)>, Error> {
        loop {
            let latency = self.latency();
            self.consumer.set_max_latency(latency);
            if let Some(old) = &mut self.old {
                old.set_max_latency(latency);
            }
            // The rare branches cost a check each when idle: nothing is created per group.
            let old = async {
                match &mut self.old {
                    Some(old) => Box::pin(old.next_group()).await,
                    None => std::future::pending().await,
                }
            };
            let closed = async {
                match &mut self.closed {
                    Some(closed) => closed.as_mut().await,
                    None => std::future::pending().await,
                }
            };
            let seeking = async {
                match &mut self.seeking {
                    Some(seeking) => seeking.as_mut().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                group = old => match group {
                    Ok(Some(group)) => {
                        let sequence = group.info().sequence.saturating_add(self.old_shift);
                        if self.last.is_none_or(|last| sequence > last) {
                            self.last = Some(sequence);
                            return Ok(Some((group, sequence)));
                        }
                    }
                    _ => self.old = None,
                },
                () = closed => {
                    self.closed = None;
                    self.seek(Instant::now() + REROUTE_WAIT);
                    tracing::debug!(track = %self.track.name, "route withdrawn, looking for another");
                }
                found = seeking => {
                    self.seeking = None;
                    if let Some(route) = found {
                        tracing::debug!(track = %self.track.name, hops = ?route.hops, "moving the subscription to another route");
                        let previous = self.switch(route);
                        self.old = Some(previous);
                    }
                }
                group = self.consumer.next_group() => match group {
                    Ok(Some(group)) => {
                        if let Some(out) = self.take(group) {
                            return Ok(Some(out));
                        }
                    }
                    Ok(None) => return Ok(None),
                    Err(err) => {
                        let Some(route) = Box::pin(self.route_failed(&err)).await else {
                            return Err(err);
                        };
                        tracing::debug!(track = %self.track.name, %err, hops = ?route.hops, "route failed, moving the subscription to another");
                        self.switch(route);
                        self.seeking = None;
                    }
                },
            }
        }
    }

    /// A group of the current route: shifted and handed out, or skipped if already sent.
    fn take(&mut self, group: GroupConsumer) -> Option<(GroupConsumer, u64)> {
        let sequence = group.info().sequence;
        if !self.moved {
            // The first route: groups as they come (late ones too).
            self.last = Some(self.last.map_or(sequence, |l| l.max(sequence)));
            return Some((group, sequence));
        }
        // The new route has started: the old one is not needed any more.
        self.old = None;
        let last = self.last;
        let shift = *self.shift.get_or_insert_with(|| match last {
            // Far behind what was sent: a publisher counting from 0 again.
            Some(last) if sequence.saturating_add(1) < last => last + 1 - sequence,
            _ => 0,
        });
        let shifted = sequence.saturating_add(shift);
        if last.is_some_and(|last| shifted <= last) {
            return None;
        }
        self.last = Some(shifted);
        Some((group, shifted))
    }

    /// The track failed: if its route went with it, the next route (waited for).
    async fn route_failed(&mut self, err: &Error) -> Option<Route> {
        let routes = self.routes.as_ref()?;
        let route = self.route.as_ref()?;
        // Errors about the request itself, not the route: no other route would answer better.
        if matches!(
            err,
            Error::Unauthorized
                | Error::ProtocolViolation(_)
                | Error::Decode(_)
                | Error::Duplicate
                | Error::UnexpectedStream(_)
                | Error::UnexpectedMessage
                | Error::WrongSize
                | Error::FrameTooLarge
                | Error::Unsupported(_)
                | Error::Version
        ) {
            return None;
        }
        // The link's session ends both the track and the broadcast, in either order; a relay
        // upstream that lost its own route answers NotFound before its withdrawal reaches us. A
        // broadcast that stays open failed the track for its own reasons: the error stands.
        let _closed = tokio::time::timeout(ROUTE_FAILURE_GRACE, route.broadcast.closed())
            .await
            .ok()?;
        self.old = None;
        let current = route.broadcast.clone();
        wait_route(
            routes.origin.clone(),
            routes.path.clone(),
            routes.exclude,
            Some(current),
            Instant::now() + REROUTE_WAIT,
        )
        .await
    }

    /// Subscribe to the track on `route`; returns the previous route's consumer.
    fn switch(&mut self, route: Route) -> TrackConsumer {
        let mut consumer = route.broadcast.subscribe_track(&self.track);
        consumer.set_late_groups(true);
        consumer.set_max_latency(self.latency());
        self.current.set(consumer.clone());
        self.route = Some(route);
        self.watch_route();
        self.old_shift = self.shift.unwrap_or(0);
        self.shift = None;
        self.moved = true;
        std::mem::replace(&mut self.consumer, consumer)
    }
}

/// A route at `path` other than `current` and still open, not through `exclude`, waited for until
/// `deadline`.
async fn wait_route(
    origin: OriginLookup,
    path: Path,
    exclude: u64,
    current: Option<crate::model::BroadcastConsumer>,
    deadline: Instant,
) -> Option<Route> {
    let mut watcher = origin.watch(&path).ok()?;
    loop {
        if let Some(route) = origin.route(&path, exclude) {
            let same = current.as_ref().is_some_and(|c| c.same(&route.broadcast));
            if !same && !route.broadcast.is_closed() {
                return Some(route);
            }
        }
        tokio::time::timeout_at(deadline, watcher.announced())
            .await
            .ok()?;
    }
}
