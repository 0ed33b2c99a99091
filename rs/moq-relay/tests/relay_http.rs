//! The public HTTP endpoints of the real relay: `/announced` and `/fetch`.

mod common;

use bytes::Bytes;
use common::*;
use moq_lite::{BroadcastProducer, OriginProducer, Track, TrackInfo};

#[tokio::test]
async fn announced_lists_and_fetch_returns_group_payloads() {
    let relay = Relay::open().await;
    let origin = OriginProducer::new();
    let broadcast = BroadcastProducer::new();
    let track = broadcast.create_track(Track::new("t"), TrackInfo::default());
    origin
        .publish_broadcast(&path("cam"), broadcast.consume())
        .unwrap();
    let _publisher = relay.publisher(Via::Quic, "/live", &origin).await;
    for n in 0..3u64 {
        let mut group = track.append_group().unwrap();
        group
            .write_frame(n, Bytes::from(format!("g{n}a,")))
            .unwrap();
        group.write_frame(n, Bytes::from(format!("g{n}b"))).unwrap();
        group.finish();
    }

    // /announced: the broadcast's full path, and relative to a prefix; a sibling prefix lists nothing.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let (status, body) = relay.http_get("/announced").await.unwrap();
        if status == 200 && body.lines().any(|l| l == "live/cam") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/announced never listed live/cam: {body:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        relay.http_get("/announced/live").await.unwrap(),
        (200, "cam\n".to_string())
    );
    assert_eq!(
        relay.http_get("/announced/liv").await.unwrap(),
        (200, String::new()),
        "segment-aware"
    );

    // /fetch: the latest group's frames concatenated; a given group; unknown ones 404.
    assert_eq!(
        relay.http_get("/fetch/live/cam/t").await.unwrap(),
        (200, "g2a,g2b".to_string())
    );
    assert_eq!(
        relay.http_get("/fetch/live/cam/t?group=1").await.unwrap(),
        (200, "g1a,g1b".to_string())
    );
    assert_eq!(relay.http_get("/fetch/live/nope/t").await.unwrap().0, 404);
    assert_eq!(
        relay.http_get("/fetch/live/cam/t?group=x").await.unwrap().0,
        400
    );
    assert_eq!(
        relay.http_get("/health").await.unwrap(),
        (200, "ok\n".to_string())
    );
}
