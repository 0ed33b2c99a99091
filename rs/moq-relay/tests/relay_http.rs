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

/// `--web-root`: the HTTP listener serves a web app's files for paths the endpoints don't claim,
/// with the right content types, `/` and extension-less pages mapped to `.html`, and nothing
/// outside the root.
#[tokio::test]
async fn web_root_serves_static_files_and_never_leaves_the_root() {
    let relay = Relay::start(
        RelayArgs::new(&["--auth-public", "", "--web-root", "{dir}/site"])
            .file("site/index.html", "<h1>index</h1>")
            .file("site/watch.html", "<h1>watch</h1>")
            .file("site/app.js", "export {};")
            .file("secret.txt", "do not serve"),
    )
    .await;
    assert_eq!(
        relay.http_get("/").await.unwrap(),
        (200, "<h1>index</h1>".to_string())
    );
    assert_eq!(
        relay.http_get("/watch").await.unwrap(),
        (200, "<h1>watch</h1>".to_string())
    );
    assert_eq!(
        relay.http_get("/app.js").await.unwrap(),
        (200, "export {};".to_string())
    );
    let (status, headers) = relay.http_head("/app.js").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        headers.contains("content-type: text/javascript"),
        "{headers}"
    );
    assert_eq!(relay.http_get("/missing.js").await.unwrap().0, 404);
    assert_eq!(relay.http_get("/../secret.txt").await.unwrap().0, 404);
    assert_eq!(relay.http_get("/%2e%2e/secret.txt").await.unwrap().0, 404);
    // The endpoints still win over the files.
    assert_eq!(
        relay.http_get("/health").await.unwrap(),
        (200, "ok\n".to_string())
    );
}
