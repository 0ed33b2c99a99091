//! A probe of the machine's state: how long one dependent memory load takes over a working set
//! the size of a busy relay's (`--memory-probe`).
//!
//! On a shared host the last-level cache available to a VM moves with its neighbours' load, and a
//! relay fanning out to hundreds of viewers walks more state per frame than a contended cache
//! holds; its CPU per delivered byte then moves with it. Recording this figure next to each run
//! tells a slow relay from a slow machine.

use std::time::Instant;

/// The working set probed: 8 MiB, a quarter of this machine's nominal last-level cache, about
/// what our relay touches per frame at 500 viewers.
pub const PROBE_BYTES: usize = 8 << 20;

/// Dependent loads timed (each one's address comes from the one before, so none overlap).
const PROBE_LOADS: usize = 2_000_000;

/// Mean nanoseconds per dependent load over a random cycle through `bytes` of memory.
pub fn memory_latency_ns(bytes: usize, loads: usize) -> f64 {
    let next = random_cycle((bytes / std::mem::size_of::<usize>()).max(2));
    // One pass first, so the pages are mapped and the timed loads are only the cache's doing.
    let mut at = chase(&next, 0, next.len());
    let start = Instant::now();
    at = chase(&next, at, loads);
    let elapsed = start.elapsed();
    std::hint::black_box(at);
    elapsed.as_secs_f64() * 1e9 / loads.max(1) as f64
}

/// [`memory_latency_ns`] over [`PROBE_BYTES`].
pub fn probe() -> f64 {
    memory_latency_ns(PROBE_BYTES, PROBE_LOADS)
}

fn chase(next: &[usize], mut at: usize, loads: usize) -> usize {
    for _ in 0..loads {
        at = next[at];
    }
    at
}

/// `next[i]` for one cycle through all of `0..n` in a random order (Sattolo's algorithm), so the
/// chase cannot settle into a short loop that fits in a cache.
fn random_cycle(n: usize) -> Vec<usize> {
    let mut next: Vec<usize> = (0..n).collect();
    // xorshift64*: statistical quality is beside the point, only that the order is not linear.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for i in (1..n).rev() {
        let j = (random() % i as u64) as usize;
        next.swap(i, j);
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cycle_visits_every_slot_once() {
        for n in [2, 3, 10, 1000] {
            let next = random_cycle(n);
            let mut seen = vec![false; n];
            let mut at = 0;
            for _ in 0..n {
                assert!(!seen[at], "slot {at} visited twice in a cycle of {n}");
                seen[at] = true;
                at = next[at];
            }
            assert_eq!(at, 0, "the cycle of {n} returns to its start");
        }
    }

    #[test]
    fn a_small_working_set_is_no_slower_than_a_large_one() {
        let small = memory_latency_ns(16 << 10, 200_000);
        let large = memory_latency_ns(64 << 20, 200_000);
        assert!(small > 0.0 && large > 0.0);
        // 16 KiB sits in the first-level cache; 64 MiB is past any cache here.
        assert!(
            small < large,
            "16 KiB: {small:.1} ns, 64 MiB: {large:.1} ns"
        );
    }
}
