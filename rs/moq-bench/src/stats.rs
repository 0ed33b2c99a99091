//! Counters shared by the publisher, the subscribers and the reporter, without locks.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A latency histogram in microseconds: exact below 1024 µs, then 128 buckets per power of two
/// (under 1% error), up to 2^40 µs. Lock-free: every subscriber records into the same one.
pub struct Histogram {
    buckets: Vec<AtomicU64>,
    max: AtomicU64,
}

const LINEAR: u64 = 1024;
const SUB_BITS: u32 = 7;
const MAX_EXP: u32 = 40;

impl Default for Histogram {
    fn default() -> Self {
        let len = LINEAR as usize + ((MAX_EXP - 10 + 1) << SUB_BITS) as usize;
        Self {
            buckets: (0..len).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    fn index(us: u64) -> usize {
        if us < LINEAR {
            return us as usize;
        }
        let exp = (63 - us.leading_zeros()).min(MAX_EXP);
        let us = us.min((1 << (MAX_EXP + 1)) - 1);
        let sub = (us >> (exp - SUB_BITS)) & ((1 << SUB_BITS) - 1);
        LINEAR as usize + (((exp - 10) << SUB_BITS) as u64 + sub) as usize
    }

    fn value(index: usize) -> u64 {
        let index = index as u64;
        if index < LINEAR {
            return index;
        }
        let exp = ((index - LINEAR) >> SUB_BITS) + 10;
        let sub = (index - LINEAR) & ((1 << SUB_BITS) - 1);
        // The middle of the bucket.
        ((1 << SUB_BITS) + sub) << (exp - SUB_BITS as u64) | (1 << (exp - SUB_BITS as u64 - 1))
    }

    /// Count one latency.
    pub fn record(&self, us: u64) {
        self.buckets[Self::index(us)].fetch_add(1, Relaxed);
        self.max.fetch_max(us, Relaxed);
    }

    /// A snapshot of the counts so far, and reset them when `reset` (for per-second figures).
    pub fn snapshot(&self, reset: bool) -> Snapshot {
        let counts = self
            .buckets
            .iter()
            .map(|b| {
                if reset {
                    b.swap(0, Relaxed)
                } else {
                    b.load(Relaxed)
                }
            })
            .collect();
        let max = if reset {
            self.max.swap(0, Relaxed)
        } else {
            self.max.load(Relaxed)
        };
        Snapshot { counts, max }
    }
}

/// Frozen histogram counts.
pub struct Snapshot {
    counts: Vec<u64>,
    max: u64,
}

impl Snapshot {
    /// The latency in ms at quantile `q` (0..=1), None when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Histogram::value(i).min(self.max) as f64 / 1000.0);
            }
        }
        None
    }

    /// The largest latency in ms, None when empty.
    pub fn max_ms(&self) -> Option<f64> {
        (self.counts.iter().any(|c| *c > 0)).then(|| self.max as f64 / 1000.0)
    }
}

/// What one subscriber saw; sequence fields hold `seq + 1`, 0 meaning "none yet".
#[derive(Default)]
pub struct Subscriber {
    /// Payload bytes received.
    pub bytes: AtomicU64,
    /// Frames received.
    pub frames: AtomicU64,
    /// Groups of which at least one frame was received.
    pub groups: AtomicU64,
    /// First frame sequence received, + 1.
    pub first_frame: AtomicU64,
    /// First group sequence received, + 1.
    pub first_group: AtomicU64,
    /// Highest frame sequence received, + 1.
    pub last_frame: AtomicU64,
    /// Highest group sequence received, + 1.
    pub last_group: AtomicU64,
    /// Churn broadcasts seen ending (unannounced).
    pub unannounces: AtomicU64,
    /// Microseconds from the start of connecting to an established moq session.
    pub setup_us: AtomicU64,
}

impl Subscriber {
    /// Count a received frame.
    pub fn frame(&self, seq: u64, bytes: usize) {
        let _ = self
            .first_frame
            .compare_exchange(0, seq + 1, Relaxed, Relaxed);
        self.last_frame.fetch_max(seq + 1, Relaxed);
        self.frames.fetch_add(1, Relaxed);
        self.bytes.fetch_add(bytes as u64, Relaxed);
    }

    /// Count a received group (on its first frame).
    pub fn group(&self, seq: u64) {
        let _ = self
            .first_group
            .compare_exchange(0, seq + 1, Relaxed, Relaxed);
        self.last_group.fetch_max(seq + 1, Relaxed);
        self.groups.fetch_add(1, Relaxed);
    }

    /// Frames and groups this subscriber should have received when `published_frames` frames
    /// (and `published_groups` groups) have been written: all from its first one on.
    pub fn expected(&self, published_frames: u64, published_groups: u64) -> (u64, u64) {
        let since = |first: u64, published: u64| match first {
            0 => 0,
            first => published.saturating_sub(first - 1),
        };
        (
            since(self.first_frame.load(Relaxed), published_frames),
            since(self.first_group.load(Relaxed), published_groups),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_within_one_percent() {
        let h = Histogram::default();
        for us in 1..=100_000u64 {
            h.record(us);
        }
        let s = h.snapshot(false);
        let p50 = s.quantile_ms(0.5).unwrap();
        let p99 = s.quantile_ms(0.99).unwrap();
        assert!((p50 - 50.0).abs() / 50.0 < 0.01, "{p50}");
        assert!((p99 - 99.0).abs() / 99.0 < 0.01, "{p99}");
        assert_eq!(s.max_ms(), Some(100.0));
        assert!(h.snapshot(true).quantile_ms(0.5).is_some());
        assert!(h.snapshot(false).quantile_ms(0.5).is_none());
    }

    #[test]
    fn histogram_clamps_huge_values() {
        let h = Histogram::default();
        h.record(u64::MAX / 2);
        assert!(h.snapshot(false).quantile_ms(1.0).is_some());
    }

    #[test]
    fn expected_counts_from_the_first_received() {
        let s = Subscriber::default();
        assert_eq!(s.expected(10, 1), (0, 0));
        s.group(0);
        s.frame(3, 100);
        assert_eq!(s.expected(10, 1), (7, 1));
    }
}
