//! Counters a session keeps, for metrics. A relay gives every session a child of one shared
//! [`Stats`], so each session has its own figures and the parent has the totals.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::lock::lock;

/// What is counted. Gauges go up and down; the others only grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Gauge: sessions running.
    Sessions,
    /// Gauge: subscriptions we are serving to peers (viewers).
    SubscriptionsServed,
    /// Gauge: subscriptions we hold on peers (upstream).
    SubscriptionsUpstream,
    /// Gauge: broadcasts peers have announced to us and are live.
    Announcements,
    /// Payload bytes sent in group streams.
    BytesOut,
    /// Frames sent.
    FramesOut,
    /// Group streams opened towards subscribers.
    GroupsOut,
    /// Payload bytes received in group streams.
    BytesIn,
    /// Frames received.
    FramesIn,
    /// Group streams received.
    GroupsIn,
    /// Group streams reset because they fell too far behind (code 2, `Old`).
    GroupsDropped,
    /// ANNOUNCE messages received from peers (each broadcast of a lite-01/02 ANNOUNCE_INIT counts
    /// as one): a count that keeps growing while the broadcasts do not change is a flapping route.
    AnnounceMessagesIn,
}

impl Metric {
    /// Every metric, in a stable order.
    pub const ALL: [Metric; 12] = [
        Metric::Sessions,
        Metric::SubscriptionsServed,
        Metric::SubscriptionsUpstream,
        Metric::Announcements,
        Metric::BytesOut,
        Metric::FramesOut,
        Metric::GroupsOut,
        Metric::BytesIn,
        Metric::FramesIn,
        Metric::GroupsIn,
        Metric::GroupsDropped,
        Metric::AnnounceMessagesIn,
    ];

    /// A snake_case name, e.g. for Prometheus.
    pub const fn name(self) -> &'static str {
        match self {
            Metric::Sessions => "sessions",
            Metric::SubscriptionsServed => "subscriptions_served",
            Metric::SubscriptionsUpstream => "subscriptions_upstream",
            Metric::Announcements => "announcements",
            Metric::BytesOut => "bytes_out",
            Metric::FramesOut => "frames_out",
            Metric::GroupsOut => "groups_out",
            Metric::BytesIn => "bytes_in",
            Metric::FramesIn => "frames_in",
            Metric::GroupsIn => "groups_in",
            Metric::GroupsDropped => "groups_dropped",
            Metric::AnnounceMessagesIn => "announce_messages_in",
        }
    }

    /// True for values that go up and down.
    pub const fn is_gauge(self) -> bool {
        matches!(
            self,
            Metric::Sessions
                | Metric::SubscriptionsServed
                | Metric::SubscriptionsUpstream
                | Metric::Announcements
        )
    }
}

/// A set of counters, optionally rolling up into a parent.
#[derive(Debug, Default)]
pub struct Stats {
    values: [AtomicU64; Metric::ALL.len()],
    viewers: Mutex<BTreeMap<String, u64>>,
    parent: Option<Arc<Stats>>,
}

impl Stats {
    /// Fresh counters.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Counters whose updates also count in `self`.
    pub fn child(self: &Arc<Self>) -> Arc<Self> {
        Arc::new(Self {
            parent: Some(self.clone()),
            ..Default::default()
        })
    }

    /// The current value.
    pub fn get(&self, metric: Metric) -> u64 {
        self.values[Self::index(metric)].load(Ordering::Relaxed)
    }

    /// Active subscriptions served per broadcast path (viewers), for broadcasts that have any.
    pub fn viewers(&self) -> BTreeMap<String, u64> {
        lock(&self.viewers).clone()
    }

    fn index(metric: Metric) -> usize {
        Metric::ALL.iter().position(|m| *m == metric).unwrap_or(0)
    }

    pub(crate) fn add(&self, metric: Metric, n: u64) {
        self.values[Self::index(metric)].fetch_add(n, Ordering::Relaxed);
        if let Some(parent) = &self.parent {
            parent.add(metric, n);
        }
    }

    fn sub(&self, metric: Metric, n: u64) {
        self.values[Self::index(metric)].fetch_sub(n, Ordering::Relaxed);
        if let Some(parent) = &self.parent {
            parent.sub(metric, n);
        }
    }

    fn viewer(&self, path: &str, up: bool) {
        let mut viewers = lock(&self.viewers);
        let count = viewers.entry(path.to_string()).or_default();
        match up {
            true => *count += 1,
            false => *count = count.saturating_sub(1),
        }
        if *count == 0 {
            viewers.remove(path);
        }
        drop(viewers);
        if let Some(parent) = &self.parent {
            parent.viewer(path, up);
        }
    }

    /// Count one more of a gauge until the returned guard is dropped.
    pub(crate) fn gauge(self: &Arc<Self>, metric: Metric) -> Gauge {
        self.add(metric, 1);
        Gauge {
            stats: self.clone(),
            metric,
            viewer: None,
        }
    }

    /// Count a served subscription, and a viewer of `path`, until the guard is dropped.
    pub(crate) fn viewing(self: &Arc<Self>, path: String) -> Gauge {
        self.viewer(&path, true);
        let mut gauge = self.gauge(Metric::SubscriptionsServed);
        gauge.viewer = Some(path);
        gauge
    }
}

/// Holds one unit of a gauge; dropping it gives it back.
#[derive(Debug)]
pub(crate) struct Gauge {
    stats: Arc<Stats>,
    metric: Metric,
    viewer: Option<String>,
}

impl Drop for Gauge {
    fn drop(&mut self) {
        self.stats.sub(self.metric, 1);
        if let Some(path) = &self.viewer {
            self.stats.viewer(path, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_roll_up_and_gauges_return() {
        let parent = Stats::new();
        let a = parent.child();
        let b = parent.child();
        a.add(Metric::BytesOut, 10);
        b.add(Metric::BytesOut, 5);
        assert_eq!(
            (a.get(Metric::BytesOut), parent.get(Metric::BytesOut)),
            (10, 15)
        );
        let g1 = a.viewing("live".into());
        let g2 = b.viewing("live".into());
        assert_eq!(parent.viewers().get("live"), Some(&2));
        assert_eq!(parent.get(Metric::SubscriptionsServed), 2);
        drop((g1, g2));
        assert!(parent.viewers().is_empty());
        assert_eq!(parent.get(Metric::SubscriptionsServed), 0);
    }
}
