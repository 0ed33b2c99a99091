//! Relays linked with `--cluster-connect` (spec §13.1), real relay binaries on loopback: a
//! broadcast published on one relay plays from the relays linked to it, one and two hops away,
//! without loops, and a link comes back after its peer restarts.

mod common;

use common::*;
use moq_lite::Track;

/// Start a relay linked to `peers` (by raw QUIC, certificate not checked: loopback test relays
/// have self-signed certificates) with cluster id `id`.
async fn relay_linked_to(id: u64, peers: &[&Relay]) -> Relay {
    let id = id.to_string();
    let mut args = vec![
        "--auth-public",
        "",
        "--cluster-id",
        &id,
        "--connect-tls-insecure",
    ];
    let urls: Vec<String> = peers
        .iter()
        .map(|peer| peer.url(Via::Quic, "/").to_string())
        .collect();
    for url in &urls {
        args.extend(["--cluster-connect", url]);
    }
    Relay::start(RelayArgs::new(&args)).await
}

/// A frame published on `origin` reaches a viewer of `relay` (group 0, frame 0 of `cam`).
async fn plays_from(relay: &Relay, name: &str) {
    let (_session, viewer) = relay.subscriber(Via::Quic, "/").await;
    let mut track = wait_broadcast(&viewer, name)
        .await
        .subscribe_track(&Track::new("video"));
    let frames = read_group(next_group(&mut track).await)
        .await
        .expect("a whole group");
    assert_eq!(
        frames[0],
        payload(name, 0, 0, 1000),
        "the frame published on A"
    );
}

/// The relay's announcement counter.
async fn announcements(relay: &Relay) -> f64 {
    relay
        .wait_metrics("metrics", |_| true)
        .await
        .value("moq_relay_announcements")
}

#[tokio::test]
async fn a_broadcast_on_a_plays_from_every_relay_of_a_chain() {
    // A ← B ← C: B dials A, C dials B.
    let a = relay_linked_to(1, &[]).await;
    let b = relay_linked_to(2, &[&a]).await;
    let c = relay_linked_to(3, &[&b]).await;

    let (origin, broadcast) = origin_with("cam");
    let track = patient_video_track(&broadcast);
    track.write_frame(0, payload("cam", 0, 0, 1000)).unwrap();
    let _publisher = a.publisher(Via::Quic, "/", &origin).await;

    plays_from(&b, "cam").await;
    plays_from(&c, "cam").await;

    // B's view of the cluster: its link to A up, A's broadcast known; one link up in its metrics.
    let internal: std::net::SocketAddr = format!("127.0.0.1:{}", b.internal).parse().unwrap();
    let response = test_support::http::get(internal, "/cluster").await.unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    let view: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(view["origin_id"], 2);
    let links = view["links"].as_object().expect("links by peer");
    assert_eq!(links.len(), 1, "{view}");
    let link = links.values().next().unwrap();
    assert_eq!(link["state"], "up", "{view}");
    assert_eq!(link["sessions"], 1, "{view}");
    assert!(
        link["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("moq-lite")),
        "{view}"
    );
    assert_eq!(view["broadcasts"], serde_json::json!(["cam"]), "{view}");
    let metrics = b.wait_metrics("metrics", |_| true).await;
    assert_eq!(
        metrics.get("moq_relay_cluster_links", &[("state", "up")]),
        Some(1.0)
    );
    assert_eq!(
        metrics.get("moq_relay_cluster_links", &[("state", "down")]),
        Some(0.0)
    );

    for relay in [&a, &b, &c] {
        assert!(!relay.log().contains("panicked"), "{}", relay.log());
    }
}

#[tokio::test]
async fn a_triangle_delivers_without_loops() {
    // A; B → A; C → A and B: two routes from A to C, and a cycle for announcements to loop in.
    let a = relay_linked_to(11, &[]).await;
    let b = relay_linked_to(12, &[&a]).await;
    let c = relay_linked_to(13, &[&a, &b]).await;

    let (origin, broadcast) = origin_with("cam");
    let track = patient_video_track(&broadcast);
    track.write_frame(0, payload("cam", 0, 0, 1000)).unwrap();
    let _publisher = a.publisher(Via::Quic, "/", &origin).await;

    plays_from(&c, "cam").await;
    plays_from(&b, "cam").await;
    // No loop: a cycle would keep announcements going round. Counted over a quiet window after
    // convergence (the window is the measurement, not a wait for an event).
    let before = [
        announcements(&a).await,
        announcements(&b).await,
        announcements(&c).await,
    ];
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let after = [
        announcements(&a).await,
        announcements(&b).await,
        announcements(&c).await,
    ];
    assert!(
        before.iter().all(|n| *n > 0.0),
        "every relay counted announcements: {before:?}"
    );
    assert_eq!(before, after, "announcements still changing: a loop");
    eprintln!("announcements per relay (A, B, C): {after:?}");
    for relay in [&a, &b, &c] {
        assert!(!relay.log().contains("panicked"), "{}", relay.log());
    }
}

/// The reference `moq-relay` 0.17.10 (scripts/install-peers.sh), cluster id `id`, anonymous
/// access, on a free port (it cannot report one): started again if another process took it.
fn reference_relay(run: &mut test_support::Run, id: u64, connect: Option<&str>) -> u16 {
    let dir = std::env::var_os("MOQ_PEERS_DIR")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                .join(".cache/moq-interop")
        });
    let bin = dir.join("relay-0.17.10/bin/moq-relay");
    assert!(
        bin.is_file(),
        "{} is missing: run scripts/install-peers.sh",
        bin.display()
    );
    for attempt in 0..5 {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let id = id.to_string();
        let mut args = vec![
            "--listen",
            &addr,
            "--listen-tls-generate",
            "localhost",
            "--auth-public",
            "**",
            "--cluster-id",
            &id,
        ];
        if let Some(url) = connect {
            args.extend(["--cluster-connect", url, "--connect-tls-insecure"]);
        }
        args.extend(["--web-http-listen", &addr]);
        let name = format!("reference-{id}-{attempt}");
        run.spawn(&name, std::process::Command::new(&bin).args(&args));
        let pid = run.child(&name).id();
        // Polled: the reference cannot tell when it has bound its port.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if test_support::ports::listens(pid, port) {
                return port;
            }
            if run.exited(&name).is_some() {
                break; // the port was taken: another attempt on another port
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    panic!(
        "the reference relay did not start in 5 attempts\n{}",
        run.logs()
    );
}

/// A session with the reference relay on `port` (WebTransport, its self-signed certificate
/// not checked).
async fn reference_session(port: u16, client: moq_lite::Client) -> moq_lite::Session {
    let native = moq_native::QuicClient::new(moq_native::QuicClientConfig {
        disable_verify: true,
        ..Default::default()
    })
    .unwrap();
    let url = url::Url::parse(&format!("https://127.0.0.1:{port}/")).unwrap();
    let connection = native
        .connect(url)
        .await
        .expect("connect to the reference relay");
    client
        .with_setup_path(connection.setup_path)
        .connect(connection.session)
        .await
        .expect("session with the reference relay")
}

#[tokio::test]
async fn mixed_with_the_reference_relay_both_ways() {
    let mut run = test_support::Run::new("cluster-mixed");
    // Ours dials theirs: published on ours, viewed on theirs.
    let theirs = reference_relay(&mut run, 21, None);
    let theirs_url = format!("https://127.0.0.1:{theirs}/");
    let ours = Relay::start(RelayArgs::new(&[
        "--auth-public",
        "",
        "--cluster-id",
        "22",
        "--connect-tls-insecure",
        "--cluster-connect",
        &theirs_url,
    ]))
    .await;
    let (origin, broadcast) = origin_with("ours-cam");
    let track = patient_video_track(&broadcast);
    track
        .write_frame(0, payload("ours-cam", 0, 0, 1000))
        .unwrap();
    let _publisher = ours.publisher(Via::Quic, "/", &origin).await;
    let viewer = moq_lite::OriginProducer::new();
    let _session =
        reference_session(theirs, moq_lite::Client::new().subscribe(viewer.clone())).await;
    let mut video = wait_broadcast(&viewer, "ours-cam")
        .await
        .subscribe_track(&Track::new("video"));
    let frames = read_group(next_group(&mut video).await)
        .await
        .expect("a group");
    assert_eq!(frames[0], payload("ours-cam", 0, 0, 1000));

    // Theirs dials ours: published on theirs, viewed on ours.
    let ours_url = ours.url(Via::WebTransport, "/").to_string();
    let dialer = reference_relay(&mut run, 23, Some(&ours_url));
    let (origin, broadcast) = origin_with("their-cam");
    let track = patient_video_track(&broadcast);
    track
        .write_frame(0, payload("their-cam", 0, 0, 1000))
        .unwrap();
    let _their_publisher =
        reference_session(dialer, moq_lite::Client::new().publish(origin.consume())).await;
    plays_from(&ours, "their-cam").await;
    assert!(!ours.log().contains("panicked"), "{}", ours.log());
}

/// Relays whose upstream subscription count (`moq_relay_subscriptions_upstream`) is above 0.
async fn carrying(relays: &[&Relay]) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, relay) in relays.iter().enumerate() {
        let metrics = relay.wait_metrics("metrics", |_| true).await;
        if metrics.value("moq_relay_subscriptions_upstream") > 0.0 {
            out.push(i);
        }
    }
    out
}

#[tokio::test]
async fn a_diamond_survives_the_death_of_the_middle_relay_carrying_it() {
    // A; B → A; C → A; D → B, C. A viewer on D, a publisher on A; then the one of B and C that
    // carries the track is killed (SIGKILL: silent, found by the link's idle timeout).
    let a = relay_linked_to(31, &[]).await;
    let b = relay_linked_to(32, &[&a]).await;
    let c = relay_linked_to(33, &[&a]).await;
    let d = relay_linked_to(34, &[&b, &c]).await;

    let (origin, broadcast) = origin_with("cam");
    let track = patient_video_track(&broadcast);
    let _publisher = a.publisher(Via::Quic, "/", &origin).await;
    // A group every 100 ms, one frame each, for as long as the test runs.
    let writer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
        for g in 0u64.. {
            tick.tick().await;
            let mut group = track.append_group().unwrap();
            group.write_frame(0, payload("cam", g, 0, 100)).unwrap();
            group.finish();
        }
    });

    let (_session, viewer) = d.subscriber(Via::Quic, "/").await;
    let mut video = wait_broadcast(&viewer, "cam")
        .await
        .subscribe_track(&Track::new("video"));
    let first = next_group(&mut video).await.info().sequence;

    let middles = [&b, &c];
    let carriers = carrying(&middles).await;
    // Usually one; both for a moment when D's route changed while the viewer subscribed.
    assert!(!carriers.is_empty(), "a middle relay carries the track");
    let (dead, alive) = match carriers[0] {
        0 => (b, c),
        _ => (c, b),
    };
    let killed = std::time::Instant::now();
    drop(dead); // SIGKILL, reaped

    // The viewer's subscription fails with the route (moving live subscriptions to the next route
    // is not built yet: issue 20); subscribed again, it gets frames through the other middle relay.
    let deadline = std::time::Duration::from_secs(15);
    let resumed = tokio::time::timeout(deadline, async {
        // Groups still come until the dead link's idle timeout ends the subscription.
        while let Ok(Some(_)) = video.next_group().await {}
        loop {
            let mut again = wait_broadcast(&viewer, "cam")
                .await
                .subscribe_track(&Track::new("video"));
            if let Ok(Some(group)) = again.next_group().await {
                return group.info().sequence;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no group on D within {deadline:?} of the kill\n{}", d.log()));
    let after = killed.elapsed();
    let carriers = carrying(&[&alive]).await;
    assert_eq!(
        carriers,
        [0],
        "the surviving middle relay carries the track now"
    );
    let metrics = d
        .wait_metrics("one link up, the other not", |m| {
            m.get("moq_relay_cluster_links", &[("state", "up")]) == Some(1.0)
        })
        .await;
    let not_up = ["connecting", "down"]
        .iter()
        .filter_map(|state| metrics.get("moq_relay_cluster_links", &[("state", state)]))
        .sum::<f64>();
    assert_eq!(not_up, 1.0, "the link to the killed relay is redialing");
    assert!(
        resumed > first,
        "a group newer than {first} after the kill, got {resumed}"
    );
    eprintln!("D resumed at group {resumed} {after:?} after the middle relay was killed");
    writer.abort();
}

#[tokio::test]
async fn the_redundant_mesh_delivers_to_every_relay_for_every_version() {
    // The reference's own topology: A; B → A; C → A, B; D → C. Publisher on A.
    let a = relay_linked_to(41, &[]).await;
    let b = relay_linked_to(42, &[&a]).await;
    let c = relay_linked_to(43, &[&a, &b]).await;
    let d = relay_linked_to(44, &[&c]).await;

    let (origin, broadcast) = origin_with("cam");
    let track = patient_video_track(&broadcast);
    track.write_frame(0, payload("cam", 0, 0, 1000)).unwrap();
    let _publisher = a.publisher(Via::Quic, "/", &origin).await;

    for (name, relay) in [("A", &a), ("B", &b), ("C", &c), ("D", &d)] {
        for (protocol, version) in [
            ("moq-lite-05", "moq-lite-05"),
            ("moq-lite-04", "moq-lite-04"),
            ("moq-lite-03", "moq-lite-03"),
            ("moql", "moq-lite-02"),
        ] {
            let viewer = moq_lite::OriginProducer::new();
            let session = relay
                .try_connect(
                    &relay.client_with(&[protocol]),
                    Via::Quic,
                    "/",
                    moq_lite::Client::new().subscribe(viewer.clone()),
                )
                .await
                .unwrap_or_else(|err| panic!("{protocol} viewer on {name}: {err:#}"));
            assert_eq!(
                session.version().to_string(),
                version,
                "{protocol} on {name}"
            );
            let mut video = wait_broadcast(&viewer, "cam")
                .await
                .subscribe_track(&Track::new("video"));
            let frames = read_group(next_group(&mut video).await)
                .await
                .unwrap_or_else(|err| panic!("{protocol} viewer on {name}: {err}"));
            assert_eq!(
                frames[0],
                payload("cam", 0, 0, 1000),
                "{protocol} viewer on {name}"
            );
            session.close(moq_lite::Error::Cancel);
        }
    }
}

#[tokio::test]
async fn fifty_viewers_on_two_edges_make_one_upstream_subscription_per_link() {
    // A; B → A; C → A. 25 viewers of one track on each of B and C.
    let a = relay_linked_to(51, &[]).await;
    let b = relay_linked_to(52, &[&a]).await;
    let c = relay_linked_to(53, &[&a]).await;
    let (origin, broadcast) = origin_with("cam");
    let track = patient_video_track(&broadcast);
    track.write_frame(0, payload("cam", 0, 0, 1000)).unwrap();
    let _publisher = a.publisher(Via::Quic, "/", &origin).await;

    let mut viewers = Vec::new();
    for i in 0..50 {
        let edge = if i % 2 == 0 { &b } else { &c };
        let (session, viewer) = edge.subscriber(Via::Quic, "/").await;
        let mut video = wait_broadcast(&viewer, "cam")
            .await
            .subscribe_track(&Track::new("video"));
        let frames = read_group(next_group(&mut video).await).await.unwrap();
        assert_eq!(frames[0], payload("cam", 0, 0, 1000));
        viewers.push((session, video));
    }
    for (name, edge) in [("B", &b), ("C", &c)] {
        let metrics = edge.wait_metrics("metrics", |_| true).await;
        assert_eq!(
            metrics.value("moq_relay_subscriptions_upstream"),
            1.0,
            "{name}: one upstream subscription for 25 viewers"
        );
    }
    // A serves the track once per link, not once per viewer.
    let metrics = a.wait_metrics("metrics", |_| true).await;
    assert_eq!(metrics.value("moq_relay_subscriptions_served"), 2.0);
}

#[tokio::test]
async fn republishing_three_times_stays_routable() {
    // A ← B ← C; the broadcast on A ends and comes back three times; C plays each one.
    let a = relay_linked_to(61, &[]).await;
    let b = relay_linked_to(62, &[&a]).await;
    let c = relay_linked_to(63, &[&b]).await;
    let (_session, viewer) = c.subscriber(Via::Quic, "/").await;
    let mut announced = viewer.consume();
    for round in 0..3u64 {
        let (origin, broadcast) = origin_with("cam");
        let track = patient_video_track(&broadcast);
        track
            .write_frame(0, payload("cam", round, 0, 1000))
            .unwrap();
        let publisher = a.publisher(Via::Quic, "/", &origin).await;
        // This round's broadcast, not the last one's still being withdrawn.
        let frames = loop {
            let next = tokio::time::timeout(TIMEOUT, announced.announced())
                .await
                .unwrap_or_else(|_| panic!("round {round}: not announced on C\n{}", c.log()));
            let Some(broadcast) = next.broadcast else {
                continue;
            };
            let mut video = broadcast.subscribe_track(&Track::new("video"));
            match video.next_group().await {
                Ok(Some(group)) => match read_group(group).await {
                    Ok(frames) if frames[0] == payload("cam", round, 0, 1000) => break frames,
                    _ => continue,
                },
                _ => continue,
            }
        };
        assert_eq!(frames.len(), 1, "round {round}");
        publisher.close(moq_lite::Error::Cancel);
        drop((origin, broadcast, track));
    }
}

#[tokio::test]
async fn a_withdraw_in_a_triangle_retracts_once() {
    // A; B → A; C → A, B: C hears of A's broadcast by two routes, and of its end once.
    let a = relay_linked_to(71, &[]).await;
    let b = relay_linked_to(72, &[&a]).await;
    let c = relay_linked_to(73, &[&a, &b]).await;
    let (_session, viewer) = c.subscriber(Via::Quic, "/").await;
    let mut events = viewer.consume();

    let (origin, broadcast) = origin_with("cam");
    let track = patient_video_track(&broadcast);
    track.write_frame(0, payload("cam", 0, 0, 1000)).unwrap();
    let publisher = a.publisher(Via::Quic, "/", &origin).await;
    plays_from(&c, "cam").await;
    plays_from(&b, "cam").await;

    publisher.close(moq_lite::Error::Cancel);
    drop((origin, broadcast, track));
    // Every event the viewer on C sees until the broadcast is gone for good, then a quiet
    // second (the window is the measurement: a flapping route would announce again in it).
    let mut seen = Vec::new();
    loop {
        let event = tokio::time::timeout(TIMEOUT, events.announced())
            .await
            .expect("the withdraw reaches C");
        let gone = event.broadcast.is_none();
        seen.push(if gone { "ended" } else { "active" });
        if gone {
            break;
        }
    }
    let quiet = tokio::time::timeout(std::time::Duration::from_secs(1), events.announced()).await;
    assert!(quiet.is_err(), "C heard more after the end: {seen:?}");
    assert_eq!(
        seen.iter().filter(|e| **e == "ended").count(),
        1,
        "{seen:?}"
    );
}
