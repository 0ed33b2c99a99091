//! The counters every task of a run shares, and what they add up to.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

use crate::stats::{Histogram, Subscriber};

/// Counters shared by every task.
pub(super) struct Shared {
    pub(super) subscribers: Vec<Subscriber>,
    /// All latencies of the run (frame latency, or announce latency for churn).
    pub(super) latency: Histogram,
    /// Latencies since the last per-second report.
    pub(super) interval: Histogram,
    /// Frames (or churn broadcasts) started by our publisher.
    pub(super) published: AtomicU64,
    /// Frames (or churn broadcasts) with a sequence at or above this are not counted: set when
    /// the measured period ends; `u64::MAX` until then.
    pub(super) cutoff: AtomicU64,
    /// The negotiated moq-lite version (first session to set up).
    pub(super) version: OnceLock<String>,
    /// Whether our publisher runs here (else the frames published are inferred from the
    /// highest sequence received).
    pub(super) publishing: bool,
    /// Frames per group, as published (1 for churn).
    pub(super) group_size: u64,
}

/// Sums over every subscriber.
#[derive(Default, Clone, Copy)]
pub(super) struct Totals {
    pub(super) bytes: u64,
    pub(super) frames: u64,
    pub(super) groups: u64,
    pub(super) lost_frames: u64,
    pub(super) lost_groups: u64,
    pub(super) unannounces: u64,
}

impl Shared {
    /// Frames (or churn broadcasts) that subscribers should have, counting from sequence 0.
    pub(super) fn published(&self) -> u64 {
        match self.cutoff.load(Relaxed) {
            u64::MAX if self.publishing => self.published.load(Relaxed),
            u64::MAX => self.highest_received(),
            cutoff => cutoff,
        }
    }

    pub(super) fn highest_received(&self) -> u64 {
        self.subscribers
            .iter()
            .map(|s| s.last_frame.load(Relaxed))
            .max()
            .unwrap_or(0)
    }

    pub(super) fn totals(&self) -> Totals {
        let published = self.published();
        let published_groups = published.div_ceil(self.group_size);
        // A subscriber that received nothing missed everything since the first frame anyone
        // here received (our own publisher starts at 0 once every subscriber is set up).
        let base = match self.publishing {
            true => 0,
            false => self
                .subscribers
                .iter()
                .map(|s| s.first_frame.load(Relaxed))
                .filter(|f| *f > 0)
                .min()
                .map_or(0, |f| f - 1),
        };
        let mut t = Totals::default();
        for s in &self.subscribers {
            let frames = s.frames.load(Relaxed);
            let groups = s.groups.load(Relaxed);
            let (expected_frames, expected_groups) = match frames {
                0 => (
                    published.saturating_sub(base),
                    published_groups.saturating_sub(base / self.group_size),
                ),
                _ => s.expected(published, published_groups),
            };
            t.bytes += s.bytes.load(Relaxed);
            t.frames += frames;
            t.groups += groups;
            t.lost_frames += expected_frames.saturating_sub(frames);
            t.lost_groups += expected_groups.saturating_sub(groups);
            t.unannounces += s.unannounces.load(Relaxed);
        }
        t
    }

    pub(super) fn setup_ms(&self) -> Vec<f64> {
        let mut setups: Vec<f64> = self
            .subscribers
            .iter()
            .map(|s| s.setup_us.load(Relaxed))
            .filter(|us| *us > 0)
            .map(|us| us as f64 / 1000.0)
            .collect();
        setups.sort_unstable_by(f64::total_cmp);
        setups
    }
}

/// The value at quantile `q` of sorted `values`.
pub(super) fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}
