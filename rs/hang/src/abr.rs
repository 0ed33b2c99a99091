//! Rendition choice for adaptive bitrate: which of a broadcast's video renditions a viewer's link
//! carries, from a stream of bandwidth estimates. A pure state machine (time is an argument), so
//! recorded estimate traces replay in tests.
//!
//! # Rules
//! - **Fits**: a rendition fits an estimate when its bitrate is at most `down_fraction` of it.
//! - **Down at once**: when the current rendition stops fitting, or the player reports it is
//!   behind (groups arriving late), switch to the best rendition that fits (the lowest if none
//!   does). One estimate is enough: a link that dropped must be left within about a group.
//! - **Up only when sustained**: the next rendition up must fit with the stricter `up_fraction`
//!   for `up_after` without a break; then move up one step. After a switch down, no switch up for
//!   `hold_after_down` (the estimate that made us leave can come back for a moment).
//! - `up_fraction < down_fraction` is the hysteresis: an estimate between the two keeps the
//!   current rendition, so a steady link never flips between two renditions.
//! - **Failed attempts back off**: leaving a rendition within [`PROBATION`] of moving up to it
//!   counts as a failed attempt, and each one doubles the hold before that rendition is tried
//!   again (up to [`MAX_HOLD`]); staying on it past the probation clears the count. An estimate
//!   that keeps promising more than the link carries then costs a few short attempts, not one
//!   every few seconds.
//!
//! ```
//! use std::time::Duration;
//! use hang::abr::{Abr, AbrConfig, Rendition};
//! let renditions = vec![
//!     Rendition { name: "video0".into(), bitrate: 3_000_000 },
//!     Rendition { name: "video1".into(), bitrate: 800_000 },
//! ];
//! let mut abr = Abr::new(renditions, AbrConfig::default(), Some(10_000_000));
//! assert_eq!(abr.current().name, "video0");
//! // The link drops to 2 Mbit/s: down at once.
//! assert_eq!(abr.update(Duration::from_secs(1), Some(2_000_000), false), Some("video1"));
//! ```

use std::time::Duration;

/// How long a rendition moved up to must hold for the move to count as a success.
pub const PROBATION: Duration = Duration::from_secs(10);

/// The longest hold after failed attempts at a rendition.
pub const MAX_HOLD: Duration = Duration::from_secs(120);

/// A video rendition to choose from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    /// Track name.
    pub name: String,
    /// Bits per second (the catalog's `bitrate`, or a measured rate).
    pub bitrate: u64,
}

/// The thresholds of [`Abr`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AbrConfig {
    /// A rendition fits when its bitrate is at most this fraction of the estimate.
    pub down_fraction: f64,
    /// The next rendition up must fit within this (smaller) fraction to be taken.
    pub up_fraction: f64,
    /// How long the next rendition up must fit without a break.
    pub up_after: Duration,
    /// No switch up for this long after a switch down.
    pub hold_after_down: Duration,
}

impl Default for AbrConfig {
    /// Down when a rendition needs more than 90 % of the estimate; up when the next one needs at
    /// most 70 % of it for 4 s, and not within 8 s of a switch down.
    fn default() -> Self {
        Self {
            down_fraction: 0.9,
            up_fraction: 0.7,
            up_after: Duration::from_secs(4),
            hold_after_down: Duration::from_secs(8),
        }
    }
}

/// Chooses among renditions; see the module docs for the rules.
#[derive(Debug, Clone)]
pub struct Abr {
    /// Sorted by bitrate, lowest first.
    renditions: Vec<Rendition>,
    config: AbrConfig,
    current: usize,
    /// Since when the next rendition up has fitted (`up_fraction`) without a break.
    up_since: Option<Duration>,
    /// When we last switched down, and the hold it imposes before the next move up.
    last_down: Option<(Duration, Duration)>,
    /// When we moved up to the current rendition.
    up_at: Option<Duration>,
    /// Failed attempts at each rendition (by index).
    failures: Vec<u32>,
    switches: u64,
}

impl Abr {
    /// Choose among `renditions` (at least one; an empty list gets a placeholder that never
    /// switches), starting with the best that fits `initial` (the lowest without an estimate).
    pub fn new(mut renditions: Vec<Rendition>, config: AbrConfig, initial: Option<u64>) -> Self {
        renditions.sort_by_key(|r| r.bitrate);
        if renditions.is_empty() {
            renditions.push(Rendition {
                name: String::new(),
                bitrate: 0,
            });
        }
        let failures = vec![0; renditions.len()];
        let mut abr = Self {
            renditions,
            config,
            current: 0,
            up_since: None,
            last_down: None,
            up_at: None,
            failures,
            switches: 0,
        };
        if let Some(estimate) = initial {
            abr.current = abr.best_fit(estimate);
        }
        abr
    }

    /// The rendition chosen now.
    pub fn current(&self) -> &Rendition {
        &self.renditions[self.current]
    }

    /// Switches made so far.
    pub fn switches(&self) -> u64 {
        self.switches
    }

    /// The renditions, lowest bitrate first.
    pub fn renditions(&self) -> &[Rendition] {
        &self.renditions
    }

    /// Pin the choice to rendition `name` (if known), as a manual selection does.
    pub fn pin(&mut self, name: &str) -> bool {
        match self.renditions.iter().position(|r| r.name == name) {
            Some(index) => {
                self.current = index;
                self.up_since = None;
                true
            }
            None => false,
        }
    }

    /// Feed the estimate (bits per second, `None` when there is none yet) at time `now`, and
    /// whether the player is behind (late groups). Returns the name of the rendition to switch
    /// to, if the choice changed.
    pub fn update(&mut self, now: Duration, estimate: Option<u64>, behind: bool) -> Option<&str> {
        let estimate = estimate?;
        // A rendition held past its probation was a success: its failures are forgiven.
        if self
            .up_at
            .is_some_and(|at| now.saturating_sub(at) >= PROBATION)
        {
            self.failures[self.current] = 0;
            self.up_at = None;
        }
        let fits = |bitrate: u64, fraction: f64| bitrate as f64 <= fraction * estimate as f64;

        // Down at once.
        let current = &self.renditions[self.current];
        if self.current > 0 && (behind || !fits(current.bitrate, self.config.down_fraction)) {
            let target = if behind {
                // Late with an estimate that says it fits: the estimate is stale; one step down
                // at least.
                self.best_fit(estimate).min(self.current - 1)
            } else {
                self.best_fit(estimate)
            };
            return self.switch(target, now);
        }

        // Up when the next rendition has fitted, with margin, for long enough.
        let next = self.current + 1;
        let held = self
            .last_down
            .is_some_and(|(down, hold)| now.saturating_sub(down) < hold);
        match self.renditions.get(next) {
            Some(up) if !behind && !held && fits(up.bitrate, self.config.up_fraction) => {
                let since = *self.up_since.get_or_insert(now);
                if now.saturating_sub(since) >= self.config.up_after {
                    return self.switch(next, now);
                }
            }
            _ => self.up_since = None,
        }
        None
    }

    /// The index of the best rendition that fits `estimate` (`down_fraction`), or the lowest.
    fn best_fit(&self, estimate: u64) -> usize {
        self.renditions
            .iter()
            .rposition(|r| r.bitrate as f64 <= self.config.down_fraction * estimate as f64)
            .unwrap_or(0)
    }

    fn switch(&mut self, target: usize, now: Duration) -> Option<&str> {
        if target == self.current {
            return None;
        }
        if target < self.current {
            // Leaving a rendition soon after moving up to it: a failed attempt, held longer.
            if self
                .up_at
                .is_some_and(|at| now.saturating_sub(at) < PROBATION)
            {
                self.failures[self.current] = self.failures[self.current].saturating_add(1);
            }
            let failures = self.failures[self.current..]
                .iter()
                .copied()
                .max()
                .unwrap_or(0);
            let hold = self
                .config
                .hold_after_down
                .saturating_mul(1 << failures.min(8))
                .min(MAX_HOLD.max(self.config.hold_after_down));
            self.last_down = Some((now, hold));
            self.up_at = None;
        } else {
            self.up_at = Some(now);
        }
        self.current = target;
        self.up_since = None;
        self.switches += 1;
        Some(&self.renditions[target].name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MBIT: u64 = 1_000_000;

    fn simulcast() -> Vec<Rendition> {
        vec![
            Rendition {
                name: "hd".into(),
                bitrate: 3 * MBIT,
            },
            Rendition {
                name: "sd".into(),
                bitrate: 800_000,
            },
        ]
    }

    /// Replay `trace` (one estimate per 100 ms) and return the rendition after every step.
    fn replay(abr: &mut Abr, trace: &[u64]) -> Vec<String> {
        trace
            .iter()
            .enumerate()
            .map(|(i, estimate)| {
                abr.update(
                    Duration::from_millis(100 * i as u64),
                    Some(*estimate),
                    false,
                );
                abr.current().name.clone()
            })
            .collect()
    }

    /// A trace of `seconds` at `rate`, with ±`jitter` noise from a fixed sequence.
    fn steady(rate: u64, seconds: u64, jitter: f64) -> Vec<u64> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        (0..seconds * 10)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let unit = (state % 2001) as f64 / 1000.0 - 1.0; // -1..1
                (rate as f64 * (1.0 + jitter * unit)) as u64
            })
            .collect()
    }

    #[test]
    fn starts_with_the_best_fit_or_the_lowest() {
        let abr = Abr::new(simulcast(), AbrConfig::default(), Some(10 * MBIT));
        assert_eq!(abr.current().name, "hd");
        let abr = Abr::new(simulcast(), AbrConfig::default(), Some(2 * MBIT));
        assert_eq!(abr.current().name, "sd");
        let abr = Abr::new(simulcast(), AbrConfig::default(), None);
        assert_eq!(abr.current().name, "sd");
        let abr = Abr::new(Vec::new(), AbrConfig::default(), None);
        assert_eq!(abr.current().bitrate, 0);
    }

    #[test]
    fn a_link_that_drops_is_left_at_the_first_estimate() {
        let mut abr = Abr::new(simulcast(), AbrConfig::default(), Some(10 * MBIT));
        let mut trace = steady(10 * MBIT, 5, 0.1);
        trace.extend(steady(2 * MBIT, 5, 0.1));
        let chosen = replay(&mut abr, &trace);
        assert!(chosen[..50].iter().all(|c| c == "hd"));
        assert_eq!(chosen[50], "sd", "down at the first low estimate");
        assert!(chosen[50..].iter().all(|c| c == "sd"));
        assert_eq!(abr.switches(), 1);
    }

    #[test]
    fn up_only_after_a_sustained_better_estimate_and_the_hold() {
        let config = AbrConfig::default();
        let mut abr = Abr::new(simulcast(), config, Some(10 * MBIT));
        let mut trace = steady(2 * MBIT, 3, 0.1); // down at t=0
        trace.extend(steady(10 * MBIT, 20, 0.1)); // from t=3 s
        let chosen = replay(&mut abr, &trace);
        let up_at = chosen.iter().rposition(|c| c == "sd").unwrap() + 1;
        let up_at = Duration::from_millis(100 * up_at as u64);
        // Held for 8 s after the down switch at 0 s; then 4 s of fitting are needed, counted
        // from when the hold ended at the earliest.
        assert!(up_at >= config.hold_after_down, "up at {up_at:?}");
        assert!(
            up_at <= Duration::from_secs(13),
            "up within 10 s of the better link: {up_at:?}"
        );
        assert_eq!(abr.switches(), 2);
    }

    #[test]
    fn an_estimate_between_the_thresholds_never_switches() {
        // 3 Mbit/s needs ≤ 90 % to stay and ≤ 70 % to be taken: estimates of 3.5–4.2 Mbit/s
        // keep whichever rendition is current.
        for start in [10 * MBIT, 2 * MBIT] {
            let mut abr = Abr::new(simulcast(), AbrConfig::default(), Some(start));
            let first = abr.current().name.clone();
            let chosen = replay(&mut abr, &steady(3_850_000, 120, 0.08));
            assert!(chosen.iter().all(|c| *c == first), "from {first}");
            assert_eq!(abr.switches(), 0);
        }
    }

    #[test]
    fn a_noisy_estimate_around_the_up_threshold_does_not_oscillate() {
        // Hovering around 4.3 Mbit/s (3 Mbit/s = 70 % of it) with ±30 % noise: breaks in the
        // fitting streak keep resetting the 4 s timer, so it does not flip back and forth.
        let mut abr = Abr::new(simulcast(), AbrConfig::default(), Some(2 * MBIT));
        replay(&mut abr, &steady(4_300_000, 120, 0.3));
        assert!(
            abr.switches() <= 2,
            "{} switches in 2 minutes",
            abr.switches()
        );
    }

    #[test]
    fn a_link_alternating_every_20_s_switches_once_each_way_per_period() {
        // 1 ↔ 4.8 Mbit/s every 20 s for 2 minutes: down at each drop, up once per good period.
        let mut abr = Abr::new(simulcast(), AbrConfig::default(), Some(4 * MBIT));
        let mut trace = Vec::new();
        for period in 0..6 {
            let rate = if period % 2 == 0 { MBIT } else { 4_800_000 };
            trace.extend(steady(rate, 20, 0.05));
        }
        let chosen = replay(&mut abr, &trace);
        for period in 0..6 {
            let slice = &chosen[period * 200..(period + 1) * 200];
            let expected = if period % 2 == 0 { "sd" } else { "hd" };
            assert_eq!(slice.last().unwrap(), expected, "end of period {period}");
            // At most one switch inside each period.
            let flips = slice.windows(2).filter(|w| w[0] != w[1]).count();
            assert!(flips <= 1, "period {period}: {flips} switches");
        }
        assert!(abr.switches() <= 6, "{} switches", abr.switches());
    }

    #[test]
    fn behind_steps_down_even_when_the_estimate_says_it_fits() {
        let mut abr = Abr::new(simulcast(), AbrConfig::default(), Some(10 * MBIT));
        assert_eq!(
            abr.update(Duration::ZERO, Some(10 * MBIT), true),
            Some("sd")
        );
        // And it does not go back up while held.
        for i in 1..70 {
            abr.update(Duration::from_millis(100 * i), Some(10 * MBIT), false);
        }
        assert_eq!(abr.current().name, "sd");
    }

    #[test]
    fn failed_attempts_double_the_hold_and_a_success_clears_them() {
        let config = AbrConfig::default();
        let mut abr = Abr::new(simulcast(), config, None);
        let mut now = Duration::ZERO;
        let mut attempts = Vec::new();
        while now < Duration::from_secs(120) {
            now += Duration::from_millis(100);
            abr.update(now, Some(10 * MBIT), false);
            if abr.current().name == "hd" {
                attempts.push(now.as_secs());
                // Each attempt at "hd" falls behind at once.
                now += Duration::from_millis(100);
                abr.update(now, Some(10 * MBIT), true);
            }
        }
        // Holds of 16, 32, 64 s after the first failures (plus the 4 s of fitting each time).
        assert!(attempts.len() <= 4, "attempts at {attempts:?}");
        let gaps: Vec<u64> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.windows(2).all(|w| w[1] > w[0]),
            "growing holds: {attempts:?}"
        );
        // Success: staying past the probation clears the count, so a later drop holds 8 s only.
        let mut abr = Abr::new(simulcast(), config, None);
        let mut now = Duration::ZERO;
        for _ in 0..200 {
            now += Duration::from_millis(100);
            abr.update(now, Some(10 * MBIT), false);
        }
        assert_eq!(abr.current().name, "hd");
        now += Duration::from_millis(100);
        abr.update(now, Some(MBIT), false);
        assert_eq!(abr.current().name, "sd");
        let down = now;
        while abr.current().name == "sd" {
            now += Duration::from_millis(100);
            abr.update(now, Some(10 * MBIT), false);
        }
        let back = now - down;
        assert!(
            back <= config.hold_after_down + config.up_after + Duration::from_millis(200),
            "{back:?}"
        );
    }

    #[test]
    fn three_renditions_move_up_one_step_at_a_time() {
        let renditions = vec![
            Rendition {
                name: "low".into(),
                bitrate: 300_000,
            },
            Rendition {
                name: "mid".into(),
                bitrate: 1_200_000,
            },
            Rendition {
                name: "high".into(),
                bitrate: 3 * MBIT,
            },
        ];
        let mut abr = Abr::new(renditions, AbrConfig::default(), None);
        let chosen = replay(&mut abr, &steady(20 * MBIT, 20, 0.05));
        let first_mid = chosen.iter().position(|c| c == "mid").unwrap();
        let first_high = chosen.iter().position(|c| c == "high").unwrap();
        assert!(
            first_mid >= 40 && first_high >= first_mid + 40,
            "{first_mid} {first_high}"
        );
        assert!(abr.pin("low"));
        assert_eq!(abr.current().name, "low");
        assert!(!abr.pin("none"));
    }
}
