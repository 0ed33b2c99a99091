//! Bounded waits on an observable event.

use std::time::{Duration, Instant};

/// How often [`until`] checks its condition. Short against any deadline used with it; the
/// condition is the event, this is only how soon it is noticed.
pub const POLL: Duration = Duration::from_millis(10);

/// Check `done` until it returns `Some`, and return that; panic after `within` with `what` and
/// the text `context` gives then (e.g. the logs of the processes involved).
pub fn until<T>(
    what: &str,
    within: Duration,
    mut done: impl FnMut() -> Option<T>,
    context: impl FnOnce() -> String,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = done() {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("{what}: not within {within:?}\n{}", context());
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_value_once_the_condition_holds() {
        let mut n = 0;
        let got = until(
            "three calls",
            Duration::from_secs(5),
            || {
                n += 1;
                (n == 3).then_some(n)
            },
            String::new,
        );
        assert_eq!(got, 3);
    }

    #[test]
    #[should_panic(expected = "never: not within")]
    fn panics_with_the_context_at_the_deadline() {
        until::<()>("never", Duration::from_millis(30), || None, || "ctx".into());
    }
}
