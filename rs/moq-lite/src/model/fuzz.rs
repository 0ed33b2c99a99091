//! A stateful fuzz target for the track tables: random operation sequences on a producer and its
//! consumers, checking the fan-out contract. Shared by `fuzz/fuzz_targets/track.rs` and the
//! corpus replay test.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;

use super::{
    Group, Track, TrackConsumer, TrackInfo, TrackProducer, MAX_CACHE_BYTES, MAX_CACHE_GROUPS,
};

/// Interpret `data` as operations on one track; panics if an invariant breaks.
pub fn track_ops(data: &[u8]) {
    let max_latency = Duration::from_millis(*data.first().unwrap_or(&0) as u64);
    let producer = TrackProducer::new(
        Track::new("t"),
        TrackInfo {
            max_latency,
            ..Default::default()
        },
    );
    // Each consumer, the highest sequence it returned, every sequence it returned.
    let mut consumers: Vec<(TrackConsumer, Option<u64>, HashSet<u64>)> = Vec::new();
    let mut largest_group = 0u64;

    for op in data.chunks(3).skip(1) {
        let (kind, a, b) = (
            op[0] % 8,
            *op.get(1).unwrap_or(&0),
            *op.get(2).unwrap_or(&0),
        );
        match kind {
            0 => {
                if let Ok(mut group) = producer.append_group() {
                    for i in 0..(a % 4) {
                        let size = b as usize * 1024;
                        largest_group = largest_group.max(size as u64 * (a % 4) as u64);
                        let _ = group.write_frame(i as u64, Bytes::from(vec![0u8; size]));
                    }
                    group.finish();
                }
            }
            1 => {
                let _ = producer.create_group(Group {
                    sequence: a as u64 * 3 + b as u64 % 3,
                });
            }
            2 if consumers.len() < 16 => {
                let mut consumer = producer.consume();
                // Odd `a`: this consumer also takes groups that lost the race to a newer one.
                consumer.set_late_groups(a % 2 == 1);
                consumers.push((consumer, None, HashSet::new()));
            }
            3 => {
                let n = consumers.len();
                if let Some((consumer, last, seen)) = consumers.get_mut(a as usize % n.max(1)) {
                    if let Some(Ok(Some(group))) = consumer.next_group().now_or_never() {
                        let seq = group.info().sequence;
                        // A consumer never repeats a group, and without late groups it never goes
                        // backwards either.
                        assert!(seen.insert(seq), "sequence {seq} returned twice");
                        assert!(
                            consumer.takes_late_groups() || last.is_none_or(|l| seq > l),
                            "sequence {seq} after {last:?}"
                        );
                        *last = Some(last.map_or(seq, |l| l.max(seq)));
                    }
                }
            }
            4 if !consumers.is_empty() => {
                let n = consumers.len();
                consumers.swap_remove(a as usize % n);
            }
            5 => producer.finish(),
            6 => producer.abort(crate::Error::Cancel),
            7 => {
                let n = consumers.len();
                if let Some((consumer, _, _)) = consumers.get_mut(a as usize % n.max(1)) {
                    consumer.set_max_latency(Duration::from_millis(b as u64));
                }
            }
            _ => {}
        }
        // The cache stays bounded whatever the consumers do.
        assert!(producer.cached_groups() <= MAX_CACHE_GROUPS + 1);
        assert!(producer.cached_bytes() <= MAX_CACHE_BYTES + largest_group);
    }
}
