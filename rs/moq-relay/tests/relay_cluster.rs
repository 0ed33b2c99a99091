//! Relays linked with `--cluster-connect` (spec §13.1), real relay binaries on loopback: a
//! broadcast published on one relay plays from the relays linked to it, one and two hops away,
//! without loops, and a link comes back after its peer restarts.

mod common;

use common::*;
use moq_lite::{OriginProducer, Session, Track};

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
/// access, on a free port, dialing `connect` if given.
fn reference_relay(run: &mut test_support::Run, id: u64, connect: Option<&str>) -> u16 {
    let id = id.to_string();
    let mut args = vec!["--cluster-id", &id];
    if let Some(url) = connect {
        args.extend(["--cluster-connect", url, "--connect-tls-insecure"]);
    }
    run.start_reference_relay(&format!("reference-{id}"), &args)
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

/// A publisher writing a group of one 100-byte frame tagged `tag` every 100 ms into `cam` on
/// `relay`, until the returned task is aborted (which also ends its session).
async fn publish_cam(relay: &Relay, tag: &'static str) -> tokio::task::JoinHandle<()> {
    let (origin, broadcast) = origin_with("cam");
    let track = patient_video_track(&broadcast);
    let session = relay.publisher(Via::Quic, "/", &origin).await;
    tokio::spawn(async move {
        let _keep = (origin, broadcast, session);
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
        for g in 0u64.. {
            tick.tick().await;
            let mut group = track.append_group().unwrap();
            group.write_frame(0, payload(tag, g, 0, 100)).unwrap();
            group.finish();
        }
    })
}

/// One viewer subscription to `cam`'s video on `relay` (the session is returned to keep it).
async fn view_cam(relay: &Relay) -> (Session, OriginProducer, moq_lite::TrackConsumer) {
    let (session, viewer) = relay.subscriber(Via::Quic, "/").await;
    let video = wait_broadcast(&viewer, "cam")
        .await
        .subscribe_track(&Track::new("video"));
    (session, viewer, video)
}

/// Which of `middles` carries the track (its index), once exactly one does.
async fn carrier(middles: &[&Relay]) -> usize {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let carriers = carrying(middles).await;
        if carriers.len() == 1 {
            return carriers[0];
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "one middle relay carries the track: {carriers:?}"
        );
        // Polling metrics: the relay has no event to wait on for this.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Read the viewer's groups while `more` says so (given the sequence and the first frame),
/// checking each sequence comes once and in increasing order; returns the sequences seen and the
/// longest wait between two groups.
async fn watch_groups(
    video: &mut moq_lite::TrackConsumer,
    mut more: impl FnMut(u64, &[u8]) -> bool,
) -> (Vec<u64>, std::time::Duration) {
    let mut seen: Vec<u64> = Vec::new();
    let mut longest = std::time::Duration::ZERO;
    let mut at = std::time::Instant::now();
    loop {
        let group = tokio::time::timeout(TIMEOUT, video.next_group())
            .await
            .expect("a group in time")
            .expect("the subscription is not failed")
            .expect("the subscription is not ended");
        let sequence = group.info().sequence;
        longest = longest.max(at.elapsed());
        at = std::time::Instant::now();
        if let Some(&last) = seen.last() {
            assert!(sequence > last, "group {sequence} after {last}: {seen:?}");
        }
        seen.push(sequence);
        let frames = read_group(group).await.unwrap_or_default();
        let first = frames.first().cloned().unwrap_or_default();
        if !more(sequence, &first) {
            return (seen, longest);
        }
    }
}

#[tokio::test]
async fn a_diamond_survives_the_death_of_the_middle_relay_carrying_it_and_its_return() {
    // A; B → A; C → A; D → B, C. A publisher on A, one viewer subscription on D. The middle relay
    // that carries the track is SIGKILLed: silent on UDP, so D's link to it ends at the QUIC idle
    // timeout of the link's dialer (3 s; keep-alives every 1 s). The viewer keeps its one
    // subscription: groups pause for about that long, then come through the other middle relay.
    let a = relay_linked_to(31, &[]).await;
    let mut b = relay_linked_to(32, &[&a]).await;
    let mut c = relay_linked_to(33, &[&a]).await;
    let d = relay_linked_to(34, &[&b, &c]).await;
    let writer = publish_cam(&a, "cam").await;
    let (_session, _viewer, mut video) = view_cam(&d).await;
    let mut count = 0;
    watch_groups(&mut video, |_, _| {
        count += 1;
        count < 3
    })
    .await;

    let dead = carrier(&[&b, &c]).await;
    let (dead, alive, dead_id) = match dead {
        0 => (&mut b, &c, 32),
        _ => (&mut c, &b, 33),
    };
    let dead_port = dead.port;
    let killed = std::time::Instant::now();
    dead.kill();
    let mut resumed = None;
    let (seen, longest) = watch_groups(&mut video, |_, _| {
        if killed.elapsed() > std::time::Duration::from_millis(500) && resumed.is_none() {
            resumed = Some(killed.elapsed());
        }
        resumed.is_none_or(|r| killed.elapsed() < r + std::time::Duration::from_secs(1))
    })
    .await;
    eprintln!(
        "D's viewer: longest pause {longest:?}; groups again {resumed:?} after the kill; {seen:?}"
    );
    // The idle timeout (3 s) plus at most 2 s to move the subscription.
    assert!(
        longest < std::time::Duration::from_secs(5),
        "paused {longest:?}\n{}",
        d.log()
    );
    assert_eq!(
        carrying(&[alive]).await,
        [0],
        "the surviving middle relay carries the track now"
    );

    // The killed relay comes back on its old port: D's redial finds it, and it serves again.
    let listen = format!("127.0.0.1:{dead_port}");
    let id = dead_id.to_string();
    let a_url = a.url(Via::Quic, "/").to_string();
    let mut restarted = Relay::start(RelayArgs::exactly(&[
        "--listen",
        &listen,
        "--tls-generate",
        "localhost",
        "--web-http-listen",
        "127.0.0.1:{web}",
        "--internal-listen",
        "127.0.0.1:{internal}",
        "--auth-public",
        "",
        "--cluster-id",
        &id,
        "--connect-tls-insecure",
        "--cluster-connect",
        &a_url,
    ]))
    .await;
    restarted.port = dead_port; // bound by the literal --listen, not a `{port}` placeholder
    let rejoined = std::time::Instant::now();
    d.wait_metrics("both of D's links up again", |m| {
        m.get("moq_relay_cluster_links", &[("state", "up")]) == Some(2.0)
    })
    .await;
    eprintln!(
        "D linked to the restarted relay {:?} after it started",
        rejoined.elapsed()
    );
    let (_s, _v, mut there) = view_cam(&restarted).await;
    next_group(&mut there).await;
    // D's viewer never noticed.
    let mut more = 3;
    watch_groups(&mut video, |_, _| {
        more -= 1;
        more > 0
    })
    .await;
    writer.abort();
}

#[tokio::test]
async fn sigterm_drains_a_carrying_middle_relay_without_a_gap() {
    // The diamond again; the carrying middle relay gets SIGTERM with a 20 s drain allowance. It
    // sends GOAWAY on its links, D withdraws the routes through it and moves the subscription to
    // the other middle relay while the draining one still delivers, then closes the link; the
    // relay exits once its sessions are gone, long before the allowance runs out.
    let a = relay_linked_to(51, &[]).await;
    let drain = ["--shutdown-timeout", "20s"];
    let mut b = relay_linked_with(52, &[&a], &drain).await;
    let mut c = relay_linked_with(53, &[&a], &drain).await;
    let d = relay_linked_to(54, &[&b, &c]).await;
    let writer = publish_cam(&a, "cam").await;
    let (_session, _viewer, mut video) = view_cam(&d).await;
    let mut count = 0;
    watch_groups(&mut video, |_, _| {
        count += 1;
        count < 3
    })
    .await;
    let draining = match carrier(&[&b, &c]).await {
        0 => &mut b,
        _ => &mut c,
    };
    let started = std::time::Instant::now();
    signal(draining.pid(), "TERM");
    let mut after = 0;
    let (seen, longest) = watch_groups(&mut video, |_, _| {
        after += 1;
        after < 40
    })
    .await;
    let status = draining
        .wait_exit(TIMEOUT)
        .await
        .expect("the drained relay exits");
    let exited = started.elapsed();
    eprintln!("drained in {exited:?}; longest pause {longest:?}; {seen:?}");
    assert!(status.success(), "{status:?}");
    assert!(
        exited < std::time::Duration::from_secs(10),
        "it left when its peers had moved, not at the 20 s deadline: {exited:?}"
    );
    for pair in seen.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "contiguous groups: {seen:?}");
    }
    writer.abort();
}

#[tokio::test]
async fn viewers_everywhere_follow_a_publisher_that_moves_from_a_to_d() {
    // The redundant mesh (A; B → A; C → A, B; D → C) with a viewer on every relay. The publisher
    // leaves A and comes back on D, counting its groups from 0 again: every viewer keeps its
    // subscription and gets the moved publisher's frames, in one increasing sequence.
    let a = relay_linked_to(61, &[]).await;
    let b = relay_linked_to(62, &[&a]).await;
    let c = relay_linked_to(63, &[&a, &b]).await;
    let d = relay_linked_to(64, &[&c]).await;
    let first = publish_cam(&a, "first").await;
    let mut viewers = Vec::new();
    for (name, relay) in [("A", &a), ("B", &b), ("C", &c), ("D", &d)] {
        viewers.push((name, view_cam(relay).await));
    }
    for (_, (_, _, video)) in viewers.iter_mut() {
        let mut count = 0;
        watch_groups(video, |_, _| {
            count += 1;
            count < 3
        })
        .await;
    }
    first.abort();
    let moved = publish_cam(&d, "moved").await;
    for (name, (_, _, video)) in viewers.iter_mut() {
        let mut from_moved = 0;
        let (seen, longest) = watch_groups(video, |_, frame| {
            if frame.starts_with(b"moved:") {
                from_moved += 1;
            }
            from_moved < 5
        })
        .await;
        eprintln!("viewer on {name}: longest pause {longest:?}; {seen:?}");
    }
    moved.abort();
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

/// lite-06 route cost: a relay with two routes to one broadcast takes the cheaper, even when it
/// is the longer. D reaches A's `cam` through B (2 relays, but D prices that link at
/// `?cost=10`: 1 + 10 = 11) and through C → E (3 relays, `?cost=1`: 1 + 1 + 1 = 3).
#[tokio::test]
async fn the_cheapest_route_wins_over_the_shortest() {
    let a = relay_linked_to(61, &[]).await;
    let b = relay_linked_to(62, &[&a]).await;
    let c = relay_linked_to(63, &[&a]).await;
    let e = relay_linked_to(65, &[&c]).await;
    let expensive = format!("{}?cost=10", b.url(Via::Quic, "/"));
    let cheap = format!("{}?cost=1", e.url(Via::Quic, "/"));
    let d = Relay::start(RelayArgs::new(&[
        "--auth-public",
        "",
        "--cluster-id",
        "64",
        "--connect-tls-insecure",
        "--cluster-connect",
        &expensive,
        "--cluster-connect",
        &cheap,
    ]))
    .await;

    let (origin, broadcast) = origin_with("cam");
    let track = patient_video_track(&broadcast);
    track.write_frame(0, payload("cam", 0, 0, 1000)).unwrap();
    let _publisher = a.publisher(Via::Quic, "/", &origin).await;
    plays_from(&d, "cam").await;

    // Both routes known; the one in use (listed first) is the cheap, longer one through E.
    let internal: std::net::SocketAddr = format!("127.0.0.1:{}", d.internal).parse().unwrap();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let view = loop {
        let response = test_support::http::get(internal, "/cluster").await.unwrap();
        let view: serde_json::Value = serde_json::from_str(&response.body).unwrap();
        if view["routes"]["cam"]["routes"]
            .as_array()
            .is_some_and(|r| r.len() == 2)
        {
            break view;
        }
        assert!(tokio::time::Instant::now() < deadline, "{view}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    for link in view["links"].as_object().expect("links").values() {
        assert_eq!(link["version"], "moq-lite-06", "{view}");
    }
    let last = |chain: &serde_json::Value| chain.as_array().and_then(|c| c.last()).cloned();
    let routes = &view["routes"]["cam"]["routes"];
    assert_eq!(last(&routes[0]), Some(65.into()), "through E: {view}");
    assert_eq!(last(&routes[1]), Some(62.into()), "through B: {view}");
    assert!(
        routes[0].as_array().unwrap().len() > routes[1].as_array().unwrap().len(),
        "the cheap route is the longer one: {view}"
    );
}
