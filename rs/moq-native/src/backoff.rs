//! Delays between reconnection attempts.

use std::time::Duration;

/// Delays between reconnection attempts: exponential from [`Backoff::initial`] doubling up to
/// [`Backoff::max`], each one jittered down by up to half.
///
/// The jitter spreads out clients that lost the same relay at the same moment, so they do not all
/// dial the restarted relay in the same instant ("equal jitter": delay `d` becomes a uniform pick
/// in `[d/2, d]`, so it never falls below half the nominal delay).
///
/// ```
/// use std::time::Duration;
/// let mut backoff = moq_native::Backoff::default();
/// let first = backoff.next_delay();
/// assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
/// backoff.reset(); // after a connection that held
/// ```
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    /// The nominal delay of the next attempt (before jitter).
    next: Duration,
    /// splitmix64 state: the jitter needs no cryptographic randomness, only a different sequence
    /// per process (seeded from the OS) or a fixed one (tests).
    state: u64,
}

impl Default for Backoff {
    /// [`Backoff::DEFAULT_INITIAL`] doubling to [`Backoff::DEFAULT_MAX`], seeded from the OS.
    fn default() -> Self {
        Self::new(Self::DEFAULT_INITIAL, Self::DEFAULT_MAX)
    }
}

impl Backoff {
    /// The first nominal delay of [`Backoff::default`].
    pub const DEFAULT_INITIAL: Duration = Duration::from_millis(100);
    /// The largest nominal delay of [`Backoff::default`]: a restarted relay is found again within
    /// about this long.
    pub const DEFAULT_MAX: Duration = Duration::from_secs(2);

    /// Delays starting at `initial` and doubling up to `max` (`max` below `initial` is raised to
    /// it), jitter seeded from the OS.
    pub fn new(initial: Duration, max: Duration) -> Self {
        use rand_core::RngCore;
        Self::with_seed(initial, max, rand_core::OsRng.next_u64())
    }

    /// Like [`Backoff::new`] with a fixed jitter seed (reproducible tests).
    pub fn with_seed(initial: Duration, max: Duration, seed: u64) -> Self {
        Self {
            initial,
            max: max.max(initial),
            next: initial,
            state: seed,
        }
    }

    /// The first nominal delay.
    pub fn initial(&self) -> Duration {
        self.initial
    }

    /// The largest nominal delay.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The delay to wait before the next attempt; each call doubles the nominal delay (up to the
    /// maximum) for the one after.
    pub fn next_delay(&mut self) -> Duration {
        let nominal = self.next;
        self.next = nominal.saturating_mul(2).min(self.max);
        // Uniform in [nominal/2, nominal], at nanosecond resolution.
        let half = nominal / 2;
        let span = (nominal - half).as_nanos() as u64;
        let jitter = match span {
            0 => 0,
            span => self.random() % (span + 1),
        };
        half + Duration::from_nanos(jitter)
    }

    /// Start again from the initial delay (call once a connection has held).
    pub fn reset(&mut self) {
        self.next = self.initial;
    }

    /// splitmix64 (Steele, Lea and Flood): a full-period 64-bit generator in three lines.
    fn random(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn backoff(seed: u64) -> Backoff {
        Backoff::with_seed(100 * MS, 2000 * MS, seed)
    }

    #[test]
    fn doubles_up_to_the_cap_with_each_delay_jittered_down_by_at_most_half() {
        for seed in 0..100 {
            let mut backoff = backoff(seed);
            for nominal in [100, 200, 400, 800, 1600, 2000, 2000, 2000] {
                let delay = backoff.next_delay();
                assert!(
                    delay >= nominal * MS / 2 && delay <= nominal * MS,
                    "seed {seed}: {delay:?} for a nominal {nominal} ms"
                );
            }
        }
    }

    #[test]
    fn reset_starts_again_from_the_initial_delay() {
        let mut backoff = backoff(7);
        for _ in 0..10 {
            backoff.next_delay();
        }
        assert!(backoff.next_delay() > 100 * MS);
        backoff.reset();
        assert!(backoff.next_delay() <= 100 * MS);
    }

    #[test]
    fn jitter_spreads_clients_that_start_together() {
        // Ten clients that lose the relay at the same moment do not all retry at the same one.
        let mut firsts: Vec<Duration> = (0..10).map(|seed| backoff(seed).next_delay()).collect();
        firsts.sort();
        firsts.dedup();
        assert!(firsts.len() >= 9, "{firsts:?}");
        // Over many draws the delays cover the whole [d/2, d] range, not one corner of it.
        let mut backoff = backoff(1);
        let draws: Vec<Duration> = (0..1000)
            .map(|_| {
                backoff.reset();
                backoff.next_delay()
            })
            .collect();
        assert!(draws.iter().any(|d| *d < 60 * MS));
        assert!(draws.iter().any(|d| *d > 90 * MS));
    }

    #[test]
    fn a_cap_below_the_initial_delay_is_raised_to_it() {
        let mut backoff = Backoff::with_seed(500 * MS, 100 * MS, 3);
        assert_eq!(backoff.max(), 500 * MS);
        for _ in 0..5 {
            let delay = backoff.next_delay();
            assert!(delay >= 250 * MS && delay <= 500 * MS, "{delay:?}");
        }
        let mut zero = Backoff::with_seed(Duration::ZERO, Duration::ZERO, 3);
        assert_eq!(zero.next_delay(), Duration::ZERO);
    }
}
