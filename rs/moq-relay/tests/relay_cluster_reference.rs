//! Our relay in one cluster with two reference relays (`moq-relay` 0.17.10, installed by
//! scripts/install-peers.sh; spec §13.1): a triangle where every relay has two links, broadcasts
//! published on a reference relay and on ours play from all three, and nothing loops; at
//! moq-lite-06 (what 0.17.10 relays speak to each other, and to ours by default) and at
//! moq-lite-05 (everything pinned to it). Also a reference relay dialing ours.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use moq_lite::{OriginProducer, Track};

/// A session with the reference relay on `port` (WebTransport, its self-signed certificate
/// not checked).
async fn reference_session(port: u16, client: moq_lite::Client) -> moq_lite::Session {
    let native = moq_native::QuicClient::new(moq_native::QuicClientConfig {
        disable_verify: true,
        ..Default::default()
    })
    .unwrap();
    let url = url::Url::parse(&format!("https://127.0.0.1:{port}/")).unwrap();
    let connection = tokio::time::timeout(TIMEOUT, native.connect(url))
        .await
        .expect("connect to the reference relay in time")
        .expect("connect to the reference relay");
    tokio::time::timeout(
        TIMEOUT,
        client
            .with_setup_path(connection.setup_path)
            .connect(connection.session),
    )
    .await
    .expect("session with the reference relay in time")
    .expect("session with the reference relay")
}

/// Frame 0 of group 0 of `name`'s video track, as a viewer of `origin` (a subscriber session's
/// origin) receives it.
async fn first_frame(viewer: &OriginProducer, name: &str) -> bytes::Bytes {
    let mut video = wait_broadcast(viewer, name)
        .await
        .subscribe_track(&Track::new("video"));
    let frames = read_group(next_group(&mut video).await)
        .await
        .unwrap_or_else(|err| panic!("{name}: {err}"));
    frames[0].clone()
}

/// The broadcasts a reference relay lists on `GET /announced`.
async fn reference_announced(port: u16) -> BTreeSet<String> {
    let (status, body) = http_get(port, "/announced").await.expect("GET /announced");
    assert_eq!(status, 200, "{body}");
    body.lines().map(str::to_string).collect()
}

/// What must not change once the cluster has converged: our relay's announcement gauge, its
/// known broadcasts and the routes held over each link, and each reference relay's broadcasts.
#[derive(Debug, PartialEq)]
struct Snapshot {
    announcements: f64,
    broadcasts: serde_json::Value,
    link_routes: Vec<(String, u64, u64)>,
    r1: BTreeSet<String>,
    r2: BTreeSet<String>,
}

async fn snapshot(ours: &Relay, r1: u16, r2: u16) -> (Snapshot, serde_json::Value) {
    let (status, body) = http_get(ours.internal, "/cluster").await.unwrap();
    assert_eq!(status, 200, "{body}");
    let view: serde_json::Value = serde_json::from_str(&body).unwrap();
    let link_routes = view["links"]
        .as_object()
        .expect("links by peer")
        .iter()
        .map(|(peer, link)| {
            (
                peer.clone(),
                link["routes"].as_u64().unwrap_or(u64::MAX),
                link["sessions"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect();
    let announcements = ours
        .wait_metrics("metrics", |_| true)
        .await
        .value("moq_relay_announcements");
    let snapshot = Snapshot {
        announcements,
        broadcasts: view["broadcasts"].clone(),
        link_routes,
        r1: reference_announced(r1).await,
        r2: reference_announced(r2).await,
    };
    (snapshot, view)
}

#[tokio::test]
async fn a_triangle_of_two_reference_relays_and_ours_delivers_everywhere_without_loops() {
    triangle("moq-lite-06").await;
}

#[tokio::test]
async fn a_triangle_pinned_to_lite05_delivers_everywhere_without_loops() {
    triangle("moq-lite-05").await;
}

/// R1; R2 → R1; O → R1, R2, every relay accepting only `version` (and the references dialing
/// only it), so every link and session speaks it.
async fn triangle(version: &str) {
    let mut run = test_support::Run::new(&format!("cluster-reference-triangle-{version}"));
    let pin = ["--listen-version", version, "--connect-version", version];
    // R1; R2 → R1; O → R1, R2: each relay has two links.
    let r1 = run.start_reference_relay("r1", &[&["--cluster-id", "81"][..], &pin].concat());
    let r1_url = format!("https://127.0.0.1:{r1}/");
    let r2 = run.start_reference_relay(
        "r2",
        &[
            &[
                "--cluster-id",
                "82",
                "--cluster-connect",
                &r1_url,
                "--connect-tls-insecure",
            ][..],
            &pin,
        ]
        .concat(),
    );
    let r2_url = format!("https://127.0.0.1:{r2}/");
    let ours = Relay::start(RelayArgs::new(&[
        "--auth-public",
        "",
        "--cluster-id",
        "83",
        "--server-protocol",
        version,
        "--connect-tls-insecure",
        "--cluster-connect",
        &r1_url,
        "--cluster-connect",
        &r2_url,
    ]))
    .await;

    // Published on R1 (a reference relay) and on O (ours).
    let (r1_origin, r1_broadcast) = origin_with("r1-cam");
    let r1_track = patient_video_track(&r1_broadcast);
    r1_track
        .write_frame(0, payload("r1-cam", 0, 0, 1000))
        .unwrap();
    let r1_publisher =
        reference_session(r1, moq_lite::Client::new().publish(r1_origin.consume())).await;
    // Our client and the reference relay negotiated `version` by ALPN / WT protocol.
    assert_eq!(r1_publisher.version().to_string(), version);
    let (o_origin, o_broadcast) = origin_with("o-cam");
    let o_track = patient_video_track(&o_broadcast);
    o_track
        .write_frame(0, payload("o-cam", 0, 0, 1000))
        .unwrap();
    let _o_publisher = ours.publisher(Via::Quic, "/", &o_origin).await;

    // Each broadcast plays from every relay.
    let mut viewers = Vec::new();
    for (relay, port) in [("R1", Some(r1)), ("R2", Some(r2)), ("O", None)] {
        let (session, viewer) = match port {
            Some(port) => {
                let viewer = OriginProducer::new();
                let client = moq_lite::Client::new().subscribe(viewer.clone());
                (reference_session(port, client).await, viewer)
            }
            None => ours.subscriber(Via::Quic, "/").await,
        };
        for name in ["r1-cam", "o-cam"] {
            assert_eq!(
                first_frame(&viewer, name).await,
                payload(name, 0, 0, 1000),
                "{name} from {relay}"
            );
            eprintln!("{name} plays from {relay}");
        }
        viewers.push((session, viewer));
    }

    // O's links to R1 and R2 are both up, at `version`.
    let (before, view) = snapshot(&ours, r1, r2).await;
    let links = view["links"].as_object().expect("links by peer");
    assert_eq!(links.len(), 2, "{view}");
    for link in links.values() {
        assert_eq!(link["state"], "up", "{view}");
        // docs/moq-lite.md: 0.17.10 speaks lite-06 with a lite-06 peer, lite-05 when pinned.
        assert_eq!(link["version"], version, "{view}");
    }
    assert_eq!(
        view["broadcasts"],
        serde_json::json!(["o-cam", "r1-cam"]),
        "{view}"
    );
    let both: BTreeSet<String> = ["o-cam".to_string(), "r1-cam".to_string()].into();
    assert_eq!(before.r1, both, "R1's /announced");
    assert_eq!(before.r2, both, "R2's /announced");

    // Loop-free: a cycle would keep announcements going round R1 → R2 → O → R1. Measured over a
    // quiet 3 s window after convergence (the window is the measurement, not a wait for an event):
    // O's viewer hears no announcement in it, and O's announcement gauge, broadcasts and
    // per-link routes (and link session counts: no redial) and both references' broadcasts
    // are the same at its end as at its start.
    let (_, o_viewer) = &viewers[2];
    let mut events = o_viewer.consume();
    let mut initial = Vec::new();
    while let Some(event) = events.try_announced() {
        initial.push((event.path.to_string(), event.hops));
    }
    eprintln!("O's viewer, announcements at convergence (path, hops): {initial:?}");
    let heard = tokio::time::timeout(Duration::from_secs(3), events.announced()).await;
    assert!(
        heard.is_err(),
        "O's viewer heard an announcement after convergence: {:?}",
        heard.map(|e| (e.path.to_string(), e.broadcast.is_some(), e.hops))
    );
    let (after, view) = snapshot(&ours, r1, r2).await;
    eprintln!("O's view after the window: {view}");
    eprintln!("before the window: {before:?}\nafter the window:  {after:?}");
    assert_eq!(before, after, "the cluster changed after convergence");
    assert!(
        before.announcements >= 2.0,
        "O counted the announcements of both links: {before:?}"
    );

    assert!(!ours.log().contains("panicked"), "{}", ours.log());
    for name in ["r1", "r2"] {
        assert!(!run.log(name).contains("panicked"), "{}", run.log(name));
    }
}

/// A reference relay dialing ours (`--cluster-connect`): the link negotiates moq-lite-06 with our
/// server, and broadcasts flow both ways (published on the reference plays from ours, and the
/// other way round). Our relay is the server here, so it learns the reference's hop and its
/// routes' cost from the reference's SETUP and announcements.
#[tokio::test]
async fn a_reference_relay_dialing_ours_links_at_lite06_both_ways() {
    let mut run = test_support::Run::new("cluster-reference-dials-ours");
    let ours = Relay::start(RelayArgs::new(&["--auth-public", "", "--cluster-id", "93"])).await;
    let ours_url = format!("https://127.0.0.1:{}/", ours.port);
    let r = run.start_reference_relay(
        "r",
        &[
            "--cluster-id",
            "91",
            "--cluster-connect",
            &ours_url,
            "--connect-tls-insecure",
            "--connect-version",
            "moq-lite-06",
        ],
    );

    // Published on the reference relay, played from ours.
    let (r_origin, r_broadcast) = origin_with("r-cam");
    let r_track = patient_video_track(&r_broadcast);
    r_track
        .write_frame(0, payload("r-cam", 0, 0, 1000))
        .unwrap();
    let r_publisher =
        reference_session(r, moq_lite::Client::new().publish(r_origin.consume())).await;
    assert_eq!(r_publisher.version(), moq_lite::Version::Lite06);
    let (_o_session, o_viewer) = ours.subscriber(Via::Quic, "/").await;
    assert_eq!(
        first_frame(&o_viewer, "r-cam").await,
        payload("r-cam", 0, 0, 1000)
    );

    // Published on ours, played from the reference relay.
    let (o_origin, o_broadcast) = origin_with("o-cam");
    let o_track = patient_video_track(&o_broadcast);
    o_track
        .write_frame(0, payload("o-cam", 0, 0, 1000))
        .unwrap();
    let _o_publisher = ours.publisher(Via::Quic, "/", &o_origin).await;
    let r_viewer = OriginProducer::new();
    let r_session = reference_session(r, moq_lite::Client::new().subscribe(r_viewer.clone())).await;
    assert_eq!(r_session.version(), moq_lite::Version::Lite06);
    assert_eq!(
        first_frame(&r_viewer, "o-cam").await,
        payload("o-cam", 0, 0, 1000)
    );

    // Seen from our side, the route to r-cam came over that link with the reference's hop (91)
    // at the end of its chain.
    let (status, body) = http_get(ours.internal, "/cluster").await.unwrap();
    assert_eq!(status, 200, "{body}");
    let view: serde_json::Value = serde_json::from_str(&body).unwrap();
    let hops = view["routes"]["r-cam"]["hops"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(hops.last().and_then(|h| h.as_u64()), Some(91), "{view}");
    // The reference's only client connection is its cluster link to us; it logs the version.
    assert!(
        run.log("r").contains("connected version=moq-lite-06"),
        "the reference's link to ours negotiated lite-06:\n{}",
        run.log("r")
    );
    assert!(!ours.log().contains("panicked"), "{}", ours.log());
    assert!(!run.log("r").contains("panicked"), "{}", run.log("r"));
}
