//! The subscriber-side requests of a session against our own server: FETCH, PROBE and GOAWAY.

mod common;

use bytes::Bytes;
use common::*;
use moq_lite::{BroadcastProducer, Client, Error, Track, TrackInfo};

// In memory on paused time: what is tested is the session's requests, not a transport.
#[tokio::test(start_paused = true)]
async fn fetch_probe_and_goaway_from_a_client() {
    let relay = relay(&[]);
    let broadcast = BroadcastProducer::new();
    let track = broadcast.create_track(Track::new("t"), TrackInfo::default());
    relay
        .origin
        .publish_broadcast(&path("live"), broadcast.consume())
        .unwrap();
    for n in 0..3u64 {
        track
            .write_frame(10 * n, Bytes::from(format!("group {n}")))
            .unwrap();
    }

    let session = relay.connect(Via::Memory, &[], Client::new()).await;

    // FETCH one cached group, with its timestamp.
    let mut group = session.fetch(&path("live"), "t", 0, 1).await.unwrap();
    let (frame, payload) = tokio::time::timeout(TIMEOUT, group.read_frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((frame.timestamp, payload), (10, Bytes::from("group 1")));
    assert!(group.read_frame().await.unwrap().is_none());
    // A group the server does not hold ends with not-found.
    let mut missing = session.fetch(&path("live"), "t", 0, 42).await.unwrap();
    assert_eq!(
        tokio::time::timeout(TIMEOUT, missing.read_frame())
            .await
            .unwrap()
            .err(),
        Some(Error::NotFound)
    );

    // PROBE: the server reports its estimate.
    let mut probe = session.probe().await.unwrap();
    let report = tokio::time::timeout(TIMEOUT, probe.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(report.bitrate > 0 && report.rtt_ms > 0, "{report:?}");

    // GOAWAY: the server acknowledges by finishing the stream.
    tokio::time::timeout(TIMEOUT, session.goaway(""))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn requests_not_in_the_version_are_refused_locally() {
    let relay = relay(&[]);
    let session = relay.connect(Via::Memory, &["moql"], Client::new()).await;
    assert_eq!(session.version(), moq_lite::Version::Lite02);
    assert!(matches!(
        session.fetch(&path("x"), "t", 0, 0).await,
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        session.goaway("").await,
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(session.probe().await, Err(Error::Unsupported(_))));
}
