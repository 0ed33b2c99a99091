//! Codec micro-benchmarks: the messages on the hot path (GROUP header, FRAME header + payload,
//! SUBSCRIBE, ANNOUNCE) and varints, encoded into a reused buffer and decoded from bytes.
//!
//! `cargo bench -p moq-lite --bench codec -- --warm-up-time 1 --measurement-time 2`
//!
//! Before measuring, it checks that decoding a FRAME hands out its payload without copying (the
//! payload `Bytes` points into the received buffer) and prints the heap allocations per operation.

mod support;

use std::hint::black_box;

use bytes::{Buf, Bytes};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use moq_lite::coding::{
    get_varint, put_varint, Announce, AnnounceStatus, Decode, Encode, FrameHeader, GroupHeader,
    Subscribe, Version,
};
use moq_lite::Path;

#[global_allocator]
static ALLOC: support::Counting = support::Counting;

/// Payload sizes: a small message / audio frame, and one 30 fps frame of a 3 Mbps stream.
const PAYLOADS: [usize; 2] = [100, 12_500];
/// lite-05 (timestamp delta in the frame header) and lite-02 (length only).
const VERSIONS: [Version; 2] = [Version::Lite05, Version::Lite02];

fn subscribe() -> Subscribe {
    Subscribe {
        id: 42,
        broadcast: Path::new("live/room-42/camera").unwrap(),
        track: "video/hd".into(),
        priority: 128,
        ordered: false,
        max_latency_ms: 5_000,
        start_group: Some(1_234),
        end_group: None,
        start_frame: 0,
        end_frame: None,
    }
}

fn announce(version: Version) -> Announce {
    Announce {
        status: AnnounceStatus::Active,
        suffix: Path::new("room-42/camera").unwrap(),
        hops: match version >= Version::Lite04 {
            true => vec![0x1234_5678, 0x9abc_def0],
            false => Vec::new(),
        },
    }
}

fn frame_header(version: Version, size: usize) -> FrameHeader {
    FrameHeader {
        // One 30 fps frame later, in milliseconds; not on the wire before lite-05.
        timestamp_delta: if version >= Version::Lite05 { 33 } else { 0 },
        size: size as u64,
    }
}

/// A FRAME as received: header then payload, in one buffer.
fn frame_wire(version: Version, size: usize) -> Bytes {
    let mut wire = frame_header(version, size).encode_to_vec(version);
    wire.extend((0..size).map(|i| i as u8));
    Bytes::from(wire)
}

/// Decode one FRAME (header, then the payload as a slice of `wire`: no copy).
fn decode_frame(wire: &Bytes, version: Version) -> (FrameHeader, Bytes) {
    let mut buf = wire.clone();
    let header = FrameHeader::decode(&mut buf, version).unwrap();
    let payload = buf.copy_to_bytes(header.size as usize);
    (header, payload)
}

/// Fails the bench run (and `cargo test --benches`) if the FRAME payload was copied.
fn check_zero_copy() {
    for version in VERSIONS {
        for size in PAYLOADS {
            let wire = frame_wire(version, size);
            let (header, payload) = decode_frame(&wire, version);
            let offset = wire.len() - size;
            assert_eq!(header, frame_header(version, size));
            assert_eq!(
                payload.as_ptr(),
                wire[offset..].as_ptr(),
                "FRAME payload was copied"
            );
            let (allocs, _) = support::allocations(|| decode_frame(&wire, version));
            assert_eq!(allocs, 0, "decoding a FRAME allocated");
        }
    }
}

/// Heap allocations of one encode (into a warm, reused buffer) and one decode of each message.
fn print_allocations() {
    let mut buf = Vec::with_capacity(256);
    let mut line = |name: &str, encode: &dyn Fn(&mut Vec<u8>), decode: &dyn Fn(&[u8])| {
        buf.clear();
        encode(&mut buf);
        let wire = buf.clone();
        buf.clear();
        let (enc, _) = support::allocations(|| encode(&mut buf));
        let (dec, _) = support::allocations(|| decode(&wire));
        eprintln!(
            "codec allocations per op: {name:<24} encode {enc}, decode {dec} ({} bytes)",
            wire.len()
        );
    };
    let group = GroupHeader {
        subscribe_id: 3,
        sequence: 1_234,
        frame_start: 0,
    };
    line(
        "GROUP header",
        &|b| group.encode(b, Version::Lite05),
        &|w| {
            black_box(GroupHeader::decode(&mut &w[..], Version::Lite05).unwrap());
        },
    );
    for version in VERSIONS {
        let frame = frame_header(version, 12_500);
        line(
            &format!("FRAME header {version}"),
            &|b| frame.encode(b, version),
            &|w| {
                black_box(FrameHeader::decode(&mut &w[..], version).unwrap());
            },
        );
        let sub = subscribe();
        line(
            &format!("SUBSCRIBE {version}"),
            &|b| sub.encode(b, version),
            &|w| {
                black_box(Subscribe::decode(&mut &w[..], version).unwrap());
            },
        );
        let ann = announce(version);
        line(
            &format!("ANNOUNCE {version}"),
            &|b| ann.encode(b, version),
            &|w| {
                black_box(Announce::decode(&mut &w[..], version).unwrap());
            },
        );
    }
}

fn varint(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec/varint");
    g.throughput(Throughput::Elements(1));
    for (len, value) in [(1, 37u64), (2, 15_293), (4, 494_878_333), (8, 1 << 40)] {
        let mut buf = Vec::with_capacity(8);
        g.bench_function(BenchmarkId::new("encode", format!("{len}B")), |b| {
            b.iter(|| {
                buf.clear();
                put_varint(&mut buf, black_box(value));
                black_box(&buf);
            })
        });
        let wire = buf.clone();
        g.bench_function(BenchmarkId::new("decode", format!("{len}B")), |b| {
            b.iter(|| get_varint(&mut black_box(&wire[..])).unwrap())
        });
    }
    g.finish();
}

fn group_header(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec/group_header");
    g.throughput(Throughput::Elements(1));
    let header = GroupHeader {
        subscribe_id: 3,
        sequence: 1_234,
        frame_start: 0,
    };
    let mut buf = Vec::with_capacity(64);
    g.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&header).encode(&mut buf, Version::Lite05);
            black_box(&buf);
        })
    });
    let wire = header.encode_to_vec(Version::Lite05);
    g.bench_function("decode", |b| {
        b.iter(|| GroupHeader::decode(&mut black_box(&wire[..]), Version::Lite05).unwrap())
    });
    g.finish();
}

fn frame(c: &mut Criterion) {
    check_zero_copy();
    let mut g = c.benchmark_group("codec/frame");
    for version in VERSIONS {
        for size in PAYLOADS {
            let wire = frame_wire(version, size);
            let payload = wire.slice(wire.len() - size..);
            let id = format!("{version}/{size}B");
            g.throughput(Throughput::Bytes(wire.len() as u64));

            // What the publisher does per frame: header into its reused buffer, payload handed
            // over as a `Bytes` (a reference count, not a copy).
            let mut buf = Vec::with_capacity(64);
            g.bench_function(BenchmarkId::new("encode", &id), |b| {
                b.iter(|| {
                    buf.clear();
                    frame_header(version, size).encode(&mut buf, version);
                    black_box((&buf, black_box(&payload).clone()));
                })
            });

            // Zero-copy: the payload is a slice of the received buffer.
            g.bench_function(BenchmarkId::new("decode", &id), |b| {
                b.iter(|| {
                    let (header, payload) = decode_frame(black_box(&wire), version);
                    debug_assert_eq!(payload.as_ptr(), wire[wire.len() - size..].as_ptr());
                    black_box((header, payload))
                })
            });

            // For comparison only: the same decode if the payload were copied out.
            g.bench_function(BenchmarkId::new("decode_copying", &id), |b| {
                b.iter(|| {
                    let mut buf = &black_box(&wire)[..];
                    let header = FrameHeader::decode(&mut buf, version).unwrap();
                    black_box((header, buf[..header.size as usize].to_vec()))
                })
            });
        }
    }
    g.finish();
}

fn control(c: &mut Criterion) {
    print_allocations();
    let mut g = c.benchmark_group("codec/control");
    g.throughput(Throughput::Elements(1));
    let mut buf = Vec::with_capacity(256);
    for version in VERSIONS {
        let sub = subscribe();
        g.bench_function(BenchmarkId::new("subscribe/encode", version), |b| {
            b.iter(|| {
                buf.clear();
                black_box(&sub).encode(&mut buf, version);
                black_box(&buf);
            })
        });
        let wire = sub.encode_to_vec(version);
        g.bench_function(BenchmarkId::new("subscribe/decode", version), |b| {
            b.iter(|| Subscribe::decode(&mut black_box(&wire[..]), version).unwrap())
        });

        let ann = announce(version);
        g.bench_function(BenchmarkId::new("announce/encode", version), |b| {
            b.iter(|| {
                buf.clear();
                black_box(&ann).encode(&mut buf, version);
                black_box(&buf);
            })
        });
        let wire = ann.encode_to_vec(version);
        g.bench_function(BenchmarkId::new("announce/decode", version), |b| {
            b.iter(|| Announce::decode(&mut black_box(&wire[..]), version).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, varint, group_header, frame, control);
criterion_main!(benches);
