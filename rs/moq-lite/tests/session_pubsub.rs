//! Publish → relay → subscribe for every version: over real QUIC on loopback, both transports,
//! and over the in-memory pair on paused time.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use moq_lite::{Client, OriginProducer, Track, Version};

/// A publisher client announces `clock`, a subscriber client discovers it through the relay's
/// announcements and reads frames written after it subscribed.
async fn publish_subscribe(via: Via, protocol: &str, want: Version) {
    let relay = relay(&[]);
    let (pub_origin, _broadcast, track) = broadcast("clock", "seconds");
    let publisher = relay
        .connect(
            via,
            &[protocol],
            Client::new().publish(pub_origin.consume()),
        )
        .await;
    assert_eq!(publisher.version(), want);

    let sub_origin = OriginProducer::new();
    let subscriber = relay
        .connect(
            via,
            &[protocol],
            Client::new().subscribe(sub_origin.clone()),
        )
        .await;
    assert_eq!(subscriber.version(), want);

    // Discovery through announcements: relay → subscriber.
    let remote = tokio::time::timeout(
        TIMEOUT,
        sub_origin.consume().wait_for_broadcast(&path("clock")),
    )
    .await
    .expect("announcement timed out")
    .unwrap();
    let mut consumer = remote.subscribe_track(&Track::new("seconds").with_priority(10));

    // Keep writing until the subscriber sees data (the subscription needs a round trip to start).
    let writer = {
        let track = track.clone();
        tokio::spawn(async move {
            loop {
                let mut group = track.append_group().unwrap();
                for i in 0..3u64 {
                    group
                        .write_frame(
                            group.info().sequence * 10 + i,
                            Bytes::from(format!("frame {i}")),
                        )
                        .unwrap();
                }
                group.finish();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut group = tokio::time::timeout(TIMEOUT, consumer.next_group())
        .await
        .expect("no group")
        .unwrap()
        .unwrap();
    let mut frames = Vec::new();
    while let Some((frame, payload)) = group.read_frame().await.unwrap() {
        frames.push((frame.timestamp, payload));
    }
    writer.abort();
    assert_eq!(frames.len(), 3, "a whole group, from its first frame");
    for (i, (_, payload)) in frames.iter().enumerate() {
        assert_eq!(payload, &Bytes::from(format!("frame {i}")));
    }
    if want >= Version::Lite05 {
        // lite-05 carries timestamps end to end.
        let seq = group.info().sequence;
        assert_eq!(
            frames.iter().map(|f| f.0).collect::<Vec<_>>(),
            vec![seq * 10, seq * 10 + 1, seq * 10 + 2]
        );
    }
    drop((publisher, subscriber));
}

#[tokio::test]
async fn webtransport_lite05() {
    publish_subscribe(Via::WebTransport, "moq-lite-05", Version::Lite05).await;
}

#[tokio::test]
async fn webtransport_lite04() {
    publish_subscribe(Via::WebTransport, "moq-lite-04", Version::Lite04).await;
}

#[tokio::test]
async fn webtransport_lite03() {
    publish_subscribe(Via::WebTransport, "moq-lite-03", Version::Lite03).await;
}

#[tokio::test]
async fn webtransport_lite02_compat_setup() {
    publish_subscribe(Via::WebTransport, "moql", Version::Lite02).await;
}

#[tokio::test]
async fn quic_lite05() {
    publish_subscribe(Via::Quic, "moq-lite-05", Version::Lite05).await;
}

#[tokio::test]
async fn quic_lite04() {
    publish_subscribe(Via::Quic, "moq-lite-04", Version::Lite04).await;
}

#[tokio::test]
async fn quic_lite03() {
    publish_subscribe(Via::Quic, "moq-lite-03", Version::Lite03).await;
}

#[tokio::test]
async fn quic_lite02_compat_setup() {
    publish_subscribe(Via::Quic, "moql", Version::Lite02).await;
}

#[tokio::test(start_paused = true)]
async fn memory_lite06() {
    publish_subscribe(Via::Memory, "moq-lite-06", Version::Lite06).await;
}

#[tokio::test(start_paused = true)]
async fn memory_lite05() {
    publish_subscribe(Via::Memory, "moq-lite-05", Version::Lite05).await;
}

#[tokio::test(start_paused = true)]
async fn memory_lite04() {
    publish_subscribe(Via::Memory, "moq-lite-04", Version::Lite04).await;
}

#[tokio::test(start_paused = true)]
async fn memory_lite03() {
    publish_subscribe(Via::Memory, "moq-lite-03", Version::Lite03).await;
}

#[tokio::test(start_paused = true)]
async fn memory_lite02_compat_setup() {
    publish_subscribe(Via::Memory, "moql", Version::Lite02).await;
}
