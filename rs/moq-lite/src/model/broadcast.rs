//! A broadcast: a named collection of tracks, published once and consumed by many.
//!
//! Tracks are either published up front ([`BroadcastProducer::create_track`]) or produced on demand:
//! a consumer asking for an unknown track creates it and queues it on [`TrackRequests`] for whoever
//! serves the broadcast (for a remote broadcast, the session that sends SUBSCRIBE upstream).
//! Several consumers of one track share one producer, so one upstream subscription serves them all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};

use super::{
    Group, GroupConsumer, GroupProducer, Track, TrackConsumer, TrackInfo, TrackProducer, TrackWeak,
};
use crate::Error;

#[derive(Debug, Default)]
struct State {
    published: HashMap<String, TrackWeak>,
    requested: HashMap<String, TrackWeak>,
    requests: Option<mpsc::UnboundedSender<TrackProducer>>,
    fetches: Option<mpsc::UnboundedSender<FetchRequest>>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    closed: watch::Sender<Option<Result<(), Error>>>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        crate::lock::lock(&self.state)
    }
}

/// Publishes a broadcast's tracks. Dropping every producer handle closes the broadcast.
#[derive(Debug)]
pub struct BroadcastProducer {
    shared: Arc<Shared>,
}

impl Default for BroadcastProducer {
    fn default() -> Self {
        Self::new()
    }
}

impl BroadcastProducer {
    /// An empty, open broadcast.
    pub fn new() -> Self {
        let shared = Shared {
            state: Mutex::new(State::default()),
            closed: watch::channel(None).0,
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    /// Publish a track; consumers asking for `track.name` get it.
    pub fn create_track(&self, track: Track, info: TrackInfo) -> TrackProducer {
        let producer = TrackProducer::new(track.clone(), info);
        self.shared
            .lock()
            .published
            .insert(track.name, producer.downgrade());
        producer
    }

    /// Serve tracks on demand: from now on, a consumer asking for a track that was not published
    /// creates it and it is queued here. Calling it again replaces the previous queue.
    pub fn requests(&self) -> TrackRequests {
        let (tx, rx) = mpsc::unbounded_channel();
        self.shared.lock().requests = Some(tx);
        TrackRequests { rx }
    }

    /// Serve fetches of groups that are not cached: from now on
    /// [`BroadcastConsumer::fetch_group`] queues them here (e.g. for a session to FETCH upstream).
    pub fn fetch_requests(&self) -> FetchRequests {
        let (tx, rx) = mpsc::unbounded_channel();
        self.shared.lock().fetches = Some(tx);
        FetchRequests { rx }
    }

    /// A consumer of this broadcast.
    pub fn consume(&self) -> BroadcastConsumer {
        BroadcastConsumer {
            shared: self.shared.clone(),
        }
    }

    /// Close the broadcast normally.
    pub fn finish(&self) {
        self.close(Ok(()));
    }

    /// Close the broadcast with an error.
    pub fn abort(&self, err: Error) {
        self.close(Err(err));
    }

    fn close(&self, result: Result<(), Error>) {
        self.shared.closed.send_if_modified(|closed| {
            if closed.is_some() {
                return false;
            }
            *closed = Some(result);
            true
        });
        // Pending and future requests fail: nobody will serve them.
        let mut state = self.shared.lock();
        state.requests = None;
        state.fetches = None;
    }
}

impl Drop for BroadcastProducer {
    fn drop(&mut self) {
        self.close(Err(Error::Dropped));
    }
}

/// Tracks requested by consumers that were not published; serve each (e.g. by subscribing
/// upstream) and drop it when [`TrackProducer::unused`] resolves.
#[derive(Debug)]
pub struct TrackRequests {
    rx: mpsc::UnboundedReceiver<TrackProducer>,
}

impl TrackRequests {
    /// The next requested track, or `None` once the broadcast is closed.
    pub async fn next(&mut self) -> Option<TrackProducer> {
        self.rx.recv().await
    }
}

/// A request for one group that is not cached; fill `group` (or drop it to fail the fetch).
#[derive(Debug)]
pub struct FetchRequest {
    /// The track name.
    pub track: String,
    /// Where the frames go; consumers already wait on it.
    pub group: GroupProducer,
}

/// Fetch requests for groups the broadcast does not hold (see [`BroadcastProducer::fetch_requests`]).
#[derive(Debug)]
pub struct FetchRequests {
    rx: mpsc::UnboundedReceiver<FetchRequest>,
}

impl FetchRequests {
    /// The next request, or `None` once the broadcast is closed.
    pub async fn next(&mut self) -> Option<FetchRequest> {
        self.rx.recv().await
    }
}

/// Reads a broadcast's tracks. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BroadcastConsumer {
    shared: Arc<Shared>,
}

impl BroadcastConsumer {
    /// Subscribe to a track: a published one, an already requested one (shared), or a new request.
    /// If the broadcast cannot serve it, the returned consumer ends with [`Error::NotFound`].
    pub fn subscribe_track(&self, track: &Track) -> TrackConsumer {
        let mut state = self.shared.lock();
        if let Some(consumer) = state
            .published
            .get(&track.name)
            .and_then(TrackWeak::consume)
        {
            return consumer;
        }
        if let Some(consumer) = state
            .requested
            .get(&track.name)
            .and_then(|weak| weak.consume_with_priority(track.priority))
        {
            return consumer;
        }
        let producer = TrackProducer::pending(track.clone());
        let consumer = producer.consume();
        let sent = match state.requests.clone() {
            Some(tx) => {
                state.requested.retain(|_, weak| weak.consume().is_some());
                state
                    .requested
                    .insert(track.name.clone(), producer.downgrade());
                tx.send(producer.clone()).is_ok()
            }
            None => false,
        };
        if !sent {
            producer.abort(Error::NotFound);
        }
        consumer
    }

    /// One group of a track: from a cached copy if the track is live here and still holds it,
    /// else fetched through [`BroadcastProducer::fetch_requests`]. `None` when neither can serve it.
    pub fn fetch_group(&self, track: &str, sequence: u64) -> Option<GroupConsumer> {
        let state = self.shared.lock();
        let live = state
            .published
            .get(track)
            .or_else(|| state.requested.get(track))
            .and_then(TrackWeak::consume);
        if let Some(group) = live.and_then(|t| t.get_group(sequence)) {
            return Some(group);
        }
        let tx = state.fetches.clone()?;
        drop(state);
        let group = GroupProducer::new(Group { sequence });
        let consumer = group.consume();
        tx.send(FetchRequest {
            track: track.to_string(),
            group,
        })
        .ok()?;
        Some(consumer)
    }

    /// Resolves when the broadcast is closed.
    pub async fn closed(&self) -> Result<(), Error> {
        let mut rx = self.shared.closed.subscribe();
        let result = match rx.wait_for(|c| c.is_some()).await {
            Ok(c) => c.clone().unwrap_or(Ok(())),
            Err(_) => Err(Error::Dropped),
        };
        result
    }

    /// True once the broadcast is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.borrow().is_some()
    }

    /// True when both handles refer to the same broadcast.
    pub fn same(&self, other: &BroadcastConsumer) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[tokio::test]
    async fn published_track_is_served() {
        let broadcast = BroadcastProducer::new();
        let track = broadcast.create_track(Track::new("a"), TrackInfo::default());
        track.write_frame(0, Bytes::from_static(b"x")).unwrap();
        let mut consumer = broadcast.consume().subscribe_track(&Track::new("a"));
        let mut group = consumer.next_group().await.unwrap().unwrap();
        assert_eq!(group.read_frame().await.unwrap().unwrap().1, "x");
    }

    #[tokio::test]
    async fn unknown_track_is_not_found_without_requests() {
        let broadcast = BroadcastProducer::new();
        let mut consumer = broadcast.consume().subscribe_track(&Track::new("nope"));
        assert_eq!(consumer.next_group().await.err(), Some(Error::NotFound));
    }

    #[tokio::test]
    async fn requested_tracks_are_deduplicated() {
        let broadcast = BroadcastProducer::new();
        let mut requests = broadcast.requests();
        let c1 = broadcast.consume().subscribe_track(&Track::new("v"));
        let c2 = broadcast.consume().subscribe_track(&Track::new("v"));
        let producer = requests.next().await.unwrap();
        assert_eq!(producer.track().name, "v");
        // Only one request for two consumers.
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(10), requests.next())
                .await
                .is_err()
        );
        drop((c1, c2));
        producer.unused().await;
        // After the upstream is gone, a new consumer triggers a new request.
        producer.abort(Error::Cancel);
        let _c3 = broadcast.consume().subscribe_track(&Track::new("v"));
        assert!(requests.next().await.is_some());
    }

    #[tokio::test]
    async fn closing_is_seen_by_consumers() {
        let broadcast = BroadcastProducer::new();
        let consumer = broadcast.consume();
        drop(broadcast);
        assert_eq!(consumer.closed().await, Err(Error::Dropped));
    }
}
