//! QUIC send order for group streams (spec §7).
//!
//! quinn sends the stream with the **higher** priority first. Every group stream gets
//! `(subscriber priority − 256) · 2^23 + position`, so:
//! - all group data is negative and control streams (priority 0) always go first;
//! - a higher subscriber priority always beats a lower one, whatever the sequences;
//! - within a subscription, `position` puts the newest group first (or the oldest, when the
//!   subscriber asked for ordered delivery). `position` is the offset from the subscription's first
//!   group, kept to 23 bits: after 8 388 608 groups in one subscription the order wraps once.

const POSITION_BITS: u32 = 23;
const POSITION_MASK: u64 = (1 << POSITION_BITS) - 1;

/// The quinn priority of a group stream.
pub(crate) fn send_order(priority: u8, ordered: bool, offset: u64) -> i32 {
    let offset = (offset & POSITION_MASK) as i32;
    let position = if ordered {
        POSITION_MASK as i32 - offset
    } else {
        offset
    };
    ((priority as i32) - 256) * (1 << POSITION_BITS) + position
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_priority_wins_then_newest() {
        assert!(send_order(200, false, 0) > send_order(100, false, 1_000_000));
        assert!(send_order(100, false, 5) > send_order(100, false, 4));
        assert!(send_order(100, true, 4) > send_order(100, true, 5));
        assert!(
            send_order(255, false, POSITION_MASK) < 0,
            "data never beats control streams"
        );
        assert_eq!(send_order(0, false, 0), i32::MIN);
    }
}
