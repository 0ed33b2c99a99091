//! Fan-out micro-benchmarks (model only, no network): one `TrackProducer`, N consumers
//! (N = 1, 100, 1000), one group of 30 × 12.5 KB frames (one second of a 3 Mbps, 30 fps stream)
//! read by every consumer, frame by frame and chunk by chunk as a relay's publisher does.
//! Throughput is per frame delivery (one frame to one consumer).
//!
//! - `fanout/write`: the producer alone (no consumer), per frame written.
//! - `fanout/drained`: the group is written, then each consumer reads it all; every future is
//!   ready when polled, so this is the data structures' own cost (no runtime, no wake-ups).
//! - `fanout/live`: each consumer is a task on a current-thread tokio runtime, parked until the
//!   next frame; the producer writes a frame and waits until every consumer has read it. This adds
//!   the wake-up and task-poll cost a relay pays per frame and subscriber.
//!
//! - `fanout/next_group`: one-frame groups (audio, chat) with the track's cache holding 10, 250
//!   or 1000 groups (a 5-second cache of 50 groups a second holds 250); per iteration the
//!   producer appends a group and 100 consumers each take it with `next_group`. Throughput is per
//!   `next_group` call, which should not grow with the cache.
//!
//! `cargo bench -p moq-lite --bench fanout -- --warm-up-time 1 --measurement-time 2`
//!
//! Before measuring, it checks that every consumer gets the producer's own payload `Bytes` (same
//! pointer: no per-consumer copy) and prints the heap allocations per frame and per delivery.

mod support;

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use futures::FutureExt;
use moq_lite::{Track, TrackConsumer, TrackInfo, TrackProducer};

#[global_allocator]
static ALLOC: support::Counting = support::Counting;

const FRAMES: usize = 30;
const FRAME_SIZE: usize = 12_500;
const CONSUMERS: [usize; 3] = [1, 100, 1000];

fn payloads() -> Vec<Bytes> {
    (0..FRAMES)
        .map(|i| Bytes::from(vec![i as u8; FRAME_SIZE]))
        .collect()
}

fn track_with_consumers(n: usize) -> (TrackProducer, Vec<TrackConsumer>) {
    let track = TrackProducer::new(Track::new("video"), TrackInfo::default());
    let consumers = (0..n).map(|_| track.consume()).collect();
    (track, consumers)
}

/// Write one group of `payloads` (shared: each frame is a clone of the `Bytes`, not of the data).
fn publish(track: &TrackProducer, payloads: &[Bytes]) {
    let mut group = track.append_group().unwrap();
    for (i, payload) in payloads.iter().enumerate() {
        group.write_frame(i as u64 * 33, payload.clone()).unwrap();
    }
    group.finish();
}

/// Read the group through `consumer` (every future must be ready); the payload bytes read.
/// Debug builds (`cargo test --benches`) check each chunk is the producer's own buffer.
fn drain(consumer: &mut TrackConsumer, payloads: &[Bytes]) -> usize {
    let ready = "the group is complete, so every read is ready";
    let mut group = consumer
        .next_group()
        .now_or_never()
        .expect(ready)
        .unwrap()
        .unwrap();
    let (mut frames, mut bytes) = (0, 0);
    while let Some(mut frame) = group.next_frame().now_or_never().expect(ready).unwrap() {
        while let Some(chunk) = frame.read_chunk().now_or_never().expect(ready).unwrap() {
            debug_assert_eq!(chunk.as_ptr(), payloads[frames].as_ptr(), "payload copied");
            bytes += chunk.len();
        }
        frames += 1;
    }
    debug_assert_eq!(frames, payloads.len());
    bytes
}

/// Every consumer receives the producer's `Bytes` (same pointer): no per-consumer copy.
fn check_shared_and_print_allocations() {
    let payloads = payloads();
    let (track, mut consumers) = track_with_consumers(100);
    let (publish_allocs, _) = support::allocations(|| publish(&track, &payloads));
    for consumer in &mut consumers {
        let mut group = consumer
            .next_group()
            .now_or_never()
            .unwrap()
            .unwrap()
            .unwrap();
        let mut count = 0;
        while let Some(mut frame) = group.next_frame().now_or_never().unwrap().unwrap() {
            let payload = frame.read_all().now_or_never().unwrap().unwrap();
            assert_eq!(payload.as_ptr(), payloads[count].as_ptr(), "payload copied");
            count += 1;
        }
        assert_eq!(count, FRAMES);
    }

    let (_track, mut consumers) = {
        let (track, consumers) = track_with_consumers(100);
        publish(&track, &payloads);
        (track, consumers)
    };
    let (drain_allocs, _) = support::allocations(|| {
        for consumer in &mut consumers {
            drain(consumer, &payloads);
        }
    });
    eprintln!(
        "fanout allocations: writing a frame {:.1}, one frame delivery (read by one consumer) {:.2}",
        publish_allocs as f64 / FRAMES as f64,
        drain_allocs as f64 / (FRAMES * 100) as f64,
    );
}

/// The producer's side alone (no consumer): one group of 30 frames written, per frame.
fn write(c: &mut Criterion) {
    check_shared_and_print_allocations();
    let payloads = payloads();
    let mut g = c.benchmark_group("fanout/write");
    g.throughput(Throughput::Elements(FRAMES as u64));
    g.bench_function("frames", |b| {
        b.iter_batched_ref(
            || track_with_consumers(0).0,
            |track| publish(track, &payloads),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// One burst of frames delivered to each of `n` consumers.
fn deliveries(n: usize) -> Throughput {
    let deliveries = (FRAMES * n) as u64;
    Throughput::ElementsAndBytes {
        elements: deliveries,
        bytes: deliveries * FRAME_SIZE as u64,
    }
}

fn drained(c: &mut Criterion) {
    let payloads = payloads();
    let mut g = c.benchmark_group("fanout/drained");
    for n in CONSUMERS {
        g.throughput(deliveries(n));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_batched_ref(
                || track_with_consumers(n),
                |(track, consumers)| {
                    publish(track, &payloads);
                    for consumer in consumers.iter_mut() {
                        black_box(drain(consumer, &payloads));
                    }
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

/// `iters` runs of: spawn `n` consumer tasks parked on the track, then (timed) write the frames
/// one at a time, each time waiting until every consumer has read it.
fn live_run(n: usize, iters: u64, payloads: &[Bytes]) -> Duration {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let (track, consumers) = track_with_consumers(n);
            let read = Arc::new(AtomicUsize::new(0));
            let tasks: Vec<_> = consumers
                .into_iter()
                .map(|mut consumer| {
                    let read = read.clone();
                    let expected: Vec<usize> =
                        payloads.iter().map(|p| p.as_ptr() as usize).collect();
                    tokio::spawn(async move {
                        let mut group = consumer.next_group().await.unwrap().unwrap();
                        let mut frames = 0;
                        while let Some(mut frame) = group.next_frame().await.unwrap() {
                            while let Some(chunk) = frame.read_chunk().await.unwrap() {
                                debug_assert_eq!(chunk.as_ptr() as usize, expected[frames]);
                                black_box(chunk);
                            }
                            frames += 1;
                            read.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            // Let every consumer park on the empty track.
            tokio::task::yield_now().await;

            let start = Instant::now();
            let mut group = track.append_group().unwrap();
            for (i, payload) in payloads.iter().enumerate() {
                group.write_frame(i as u64 * 33, payload.clone()).unwrap();
                while read.load(Ordering::Relaxed) < n * (i + 1) {
                    tokio::task::yield_now().await;
                }
            }
            total += start.elapsed();

            group.finish();
            for task in tasks {
                task.await.unwrap();
            }
        }
        total
    })
}

fn live(c: &mut Criterion) {
    let payloads = payloads();
    let mut g = c.benchmark_group("fanout/live");
    for n in CONSUMERS {
        g.throughput(deliveries(n));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| live_run(n, iters, &payloads))
        });
    }
    g.finish();
}

/// A consumer's `next_group` against a full cache of one-frame groups.
fn next_group(c: &mut Criterion) {
    const TAKERS: usize = 100;
    let payload = Bytes::from_static(&[0u8; 100]);
    // A track holding `cached` one-frame groups, and TAKERS consumers that took the newest.
    let setup = |cached: usize| {
        let info = TrackInfo {
            max_latency: Duration::from_secs(3600),
            ..TrackInfo::default()
        };
        let track = TrackProducer::new(Track::new("audio"), info);
        for _ in 0..cached {
            let mut group = track.append_group().unwrap();
            group.write_frame(0, payload.clone()).unwrap();
            group.finish();
        }
        let mut consumers: Vec<TrackConsumer> = (0..TAKERS).map(|_| track.consume()).collect();
        for consumer in consumers.iter_mut() {
            consumer.set_max_latency(Duration::from_secs(3600));
            black_box(consumer.next_group().now_or_never().unwrap().unwrap());
        }
        assert_eq!(track.cached_groups(), cached);
        (track, consumers)
    };
    let mut g = c.benchmark_group("fanout/next_group");
    for cached in [10usize, 250, 1000] {
        g.throughput(Throughput::Elements(TAKERS as u64));
        g.bench_function(BenchmarkId::from_parameter(cached), |b| {
            b.iter_batched_ref(
                || setup(cached),
                |(track, consumers)| {
                    let mut group = track.append_group().unwrap();
                    group.write_frame(0, payload.clone()).unwrap();
                    group.finish();
                    for consumer in consumers.iter_mut() {
                        let taken = consumer.next_group().now_or_never();
                        black_box(taken.expect("the group is there").unwrap().unwrap());
                    }
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, write, drained, live, next_group);
criterion_main!(benches);
