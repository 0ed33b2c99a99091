//! Cluster discovery and visibility, real relay binaries on loopback: a `--cluster-connect` host
//! name is dialed at each of its addresses, a relay never keeps a link to itself, and `GET
//! /cluster` and `/metrics` show each link's state, round-trip time, bytes and routes.

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::*;
use moq_lite::Track;

/// How long a link may take to come up (set-up and the first dial's backoff included).
const LINK_TIMEOUT: Duration = Duration::from_secs(20);

/// `GET /cluster` on the relay's internal listener, parsed.
async fn cluster(relay: &Relay) -> serde_json::Value {
    let internal: SocketAddr = format!("127.0.0.1:{}", relay.internal).parse().unwrap();
    let response = test_support::http::get(internal, "/cluster").await.unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    serde_json::from_str(&response.body).unwrap()
}

/// Poll `/cluster` until `check` holds; panics with the last view after [`LINK_TIMEOUT`].
async fn wait_cluster(
    relay: &Relay,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + LINK_TIMEOUT;
    loop {
        let view = cluster(relay).await;
        if check(&view) {
            return view;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {view:#}\n{}",
            relay.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The links of a `/cluster` view.
fn links(view: &serde_json::Value) -> Vec<&serde_json::Value> {
    view["links"]
        .as_object()
        .map(|links| links.values().collect())
        .unwrap_or_default()
}

/// A frame published on a relay's `name` broadcast reaches a viewer of `relay`.
async fn plays_from(relay: &Relay, name: &str) {
    let (_session, viewer) = relay.subscriber(Via::Quic, "/").await;
    let mut track = wait_broadcast(&viewer, name)
        .await
        .subscribe_track(&Track::new("video"));
    let frames = read_group(next_group(&mut track).await)
        .await
        .expect("a whole group");
    assert_eq!(frames[0], payload(name, 0, 0, 1000));
}

/// A relay with cluster id `id` listening on exactly `listen` (`{port}` for a free port on its
/// own), its other listeners on free loopback ports.
async fn relay_listening_on(listen: &str, id: u64) -> Relay {
    let id = id.to_string();
    Relay::start(RelayArgs::exactly(&[
        "--listen",
        listen,
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
    ]))
    .await
}

/// A name that resolves to two addresses, 127.0.0.1 and 127.0.0.2 (from an /etc/hosts of the
/// linking relay's own, bind-mounted in a mount namespace only that relay sees: nothing on the
/// machine changes), gets a link to a relay on each, and the links follow the answers as they
/// change (`--cluster-resolve-interval 1s`): an address that goes loses its link, one that comes
/// back gets it again.
#[tokio::test]
async fn a_name_with_two_addresses_gets_a_link_to_each_and_follows_the_answers() {
    let one = relay_listening_on("127.0.0.1:{port}", 111).await;
    let port = one.port;
    let mut two = relay_listening_on(&format!("127.0.0.2:{port}"), 112).await;
    two.host = IpAddr::from([127, 0, 0, 2]);
    two.port = port; // bound by the literal --listen, not a `{port}` placeholder
    let scratch = test_support::Scratch::new("dns");
    let hosts = scratch.path("hosts");
    let both = "127.0.0.1 peers.moq.test\n127.0.0.2 peers.moq.test\n";
    std::fs::write(&hosts, both).unwrap();
    let script = format!(
        "mount --bind '{}' /etc/hosts && exec \"$0\" \"$@\"",
        hosts.display()
    );
    let url = format!("https://peers.moq.test:{port}/");
    let linker = Relay::start(
        RelayArgs::new(&[
            "--auth-public",
            "",
            "--cluster-id",
            "110",
            "--connect-tls-insecure",
            "--cluster-connect",
            &url,
            "--cluster-resolve-interval",
            "1s",
        ])
        .wrapped(&[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ]),
    )
    .await;
    let addr = |host: &str| format!("{host}:{port}");
    let up = |view: &serde_json::Value| -> BTreeSet<String> {
        links(view)
            .iter()
            .filter(|l| l["state"] == "up")
            .filter_map(|l| l["address"].as_str().map(str::to_string))
            .collect()
    };
    let listed = |view: &serde_json::Value| -> BTreeSet<String> {
        links(view)
            .iter()
            .filter_map(|l| l["address"].as_str().map(str::to_string))
            .collect()
    };
    let both_up = BTreeSet::from([addr("127.0.0.1"), addr("127.0.0.2")]);
    wait_cluster(&linker, "a link up to each address", |v| up(v) == both_up).await;

    // What each address's relay publishes plays from the linking relay.
    let mut publishers = Vec::new();
    for (name, relay) in [("one-cam", &one), ("two-cam", &two)] {
        let (origin, broadcast) = origin_with(name);
        let track = patient_video_track(&broadcast);
        track.write_frame(0, payload(name, 0, 0, 1000)).unwrap();
        publishers.push((
            relay.publisher(Via::Quic, "/", &origin).await,
            broadcast,
            track,
        ));
        plays_from(&linker, name).await;
    }

    // The answer loses 127.0.0.2: its link is dropped at the next resolution.
    let changed = std::time::Instant::now();
    std::fs::write(&hosts, "127.0.0.1 peers.moq.test\n").unwrap();
    let only_one = BTreeSet::from([addr("127.0.0.1")]);
    wait_cluster(&linker, "only 127.0.0.1 linked", |v| listed(v) == only_one).await;
    eprintln!(
        "127.0.0.2's link dropped {:?} after it left the answer",
        changed.elapsed()
    );
    wait_cluster(&linker, "two-cam's route gone", |v| {
        v["routes"].get("two-cam").is_none()
    })
    .await;

    // It comes back: linked again, and its broadcast plays again.
    let changed = std::time::Instant::now();
    std::fs::write(&hosts, both).unwrap();
    wait_cluster(&linker, "both linked again", |v| up(v) == both_up).await;
    eprintln!(
        "127.0.0.2 linked again {:?} after it came back",
        changed.elapsed()
    );
    plays_from(&linker, "two-cam").await;
    for relay in [&one, &two, &linker] {
        assert!(!relay.log().contains("panicked"), "{}", relay.log());
    }
}

/// `localhost` names one relay per address it resolves to (127.0.0.1, and ::1 where the system
/// says so), all on one port: the relay told to connect to `https://localhost:PORT/` links to
/// each of them and plays what each one publishes. (On a system where `localhost` is 127.0.0.1
/// only, that is one relay and one link, still found through the name.)
#[tokio::test]
async fn every_address_of_a_peer_name_gets_a_link() {
    let first = relay_listening_on("127.0.0.1:{port}", 101).await;
    let port = first.port;
    let resolved: BTreeSet<IpAddr> = tokio::net::lookup_host(("localhost", port))
        .await
        .expect("localhost resolves")
        .map(|a| a.ip().to_canonical())
        .collect();
    assert!(
        resolved.contains(&IpAddr::from([127, 0, 0, 1])),
        "localhost: {resolved:?}"
    );
    eprintln!("localhost resolves to {resolved:?}");
    let mut peers = vec![(SocketAddr::new([127, 0, 0, 1].into(), port), first)];
    for (n, ip) in resolved.iter().filter(|ip| !ip.is_ipv4()).enumerate() {
        let addr = SocketAddr::new(*ip, port);
        let mut relay = relay_listening_on(&addr.to_string(), 102 + n as u64).await;
        relay.host = *ip;
        relay.port = port;
        peers.push((addr, relay));
    }

    let url = format!("https://localhost:{port}/");
    let viewer = Relay::start(RelayArgs::new(&[
        "--auth-public",
        "",
        "--cluster-id",
        "100",
        "--connect-tls-insecure",
        "--cluster-connect",
        &url,
    ]))
    .await;

    let want: BTreeSet<String> = peers.iter().map(|(a, _)| a.to_string()).collect();
    let view = wait_cluster(&viewer, "a link up to every address", |view| {
        let up: BTreeSet<String> = links(view)
            .iter()
            .filter(|l| l["state"] == "up")
            .filter_map(|l| l["address"].as_str().map(str::to_string))
            .collect();
        up == want
    })
    .await;
    assert_eq!(links(&view).len(), peers.len(), "{view:#}");
    for link in links(&view) {
        assert_eq!(link["peer"], url.as_str(), "{view:#}");
    }
    let metrics = viewer.metrics().await;
    assert_eq!(
        metrics.get("moq_relay_cluster_links", &[("state", "up")]),
        Some(peers.len() as f64),
        "{}",
        metrics.text
    );
    for (addr, _) in &peers {
        let labels = [("peer", url.as_str()), ("address", &addr.to_string())];
        assert_eq!(
            metrics.get("moq_relay_cluster_link_up", &labels),
            Some(1.0),
            "{}",
            metrics.text
        );
    }

    // What each address's relay publishes plays from the viewer's relay.
    let mut publishers = Vec::new();
    for (n, (_, relay)) in peers.iter().enumerate() {
        let name = format!("cam{n}");
        let (origin, broadcast) = origin_with(&name);
        let track = patient_video_track(&broadcast);
        track.write_frame(0, payload(&name, 0, 0, 1000)).unwrap();
        publishers.push((
            relay.publisher(Via::Quic, "/", &origin).await,
            broadcast,
            track,
        ));
        plays_from(&viewer, &name).await;
    }
    for relay in peers.iter().map(|(_, r)| r).chain([&viewer]) {
        assert!(!relay.log().contains("panicked"), "{}", relay.log());
    }
}

/// A relay whose peer name resolves to itself (a pod of a headless Service) does not link to
/// itself: its own address is skipped at resolution, and a literal address of its own is
/// refused at SETUP (same origin id) and not redialed.
#[tokio::test]
async fn a_relay_never_links_to_itself() {
    let by_name = Relay::start(RelayArgs::exactly(&[
        "--listen",
        "127.0.0.1:{port}",
        "--tls-generate",
        "localhost",
        "--web-http-listen",
        "127.0.0.1:{web}",
        "--internal-listen",
        "127.0.0.1:{internal}",
        "--auth-public",
        "",
        "--connect-tls-insecure",
        "--cluster-resolve-interval",
        "100ms",
        "--cluster-connect",
        "https://localhost:{port}/",
    ]))
    .await;
    // The reason logged once; several resolutions later, still no link.
    let nothing = "no address of the cluster peer to link to";
    by_name.wait_log(nothing, 0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let view = cluster(&by_name).await;
    assert!(links(&view).is_empty(), "{view:#}");
    assert_eq!(by_name.log_count(nothing), 1, "{}", by_name.log());

    let literal = Relay::start(RelayArgs::exactly(&[
        "--listen",
        "127.0.0.1:{port}",
        "--tls-generate",
        "localhost",
        "--web-http-listen",
        "127.0.0.1:{web}",
        "--internal-listen",
        "127.0.0.1:{internal}",
        "--auth-public",
        "",
        "--connect-tls-insecure",
        "--cluster-connect",
        "moql://127.0.0.1:{port}/",
    ]))
    .await;
    let view = wait_cluster(&literal, "the link marked self", |view| {
        links(view).first().is_some_and(|l| l["state"] == "self")
    })
    .await;
    assert_eq!(links(&view).len(), 1, "{view:#}");
    let literal_addr = format!("127.0.0.1:{}", literal.port);
    assert_eq!(
        links(&view)[0]["address"],
        literal_addr.as_str(),
        "{view:#}"
    );
    let metrics = literal.metrics().await;
    assert_eq!(
        metrics.get("moq_relay_cluster_links", &[("state", "self")]),
        Some(1.0),
        "{}",
        metrics.text
    );
    assert_eq!(
        metrics.get("moq_relay_cluster_link_up", &[("address", &literal_addr)]),
        Some(0.0),
        "{}",
        metrics.text
    );
    // Not redialed: one refusal in the log, still one a second later.
    let refusals = "refusing a cluster link from this relay to itself";
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(literal.log_count(refusals), 1, "{}", literal.log());
}

/// B links to A; with a broadcast published on A and played from B, B's `/cluster` shows the
/// link up with a round-trip time, bytes both ways, one route and one upstream subscription, and
/// the broadcast's route with A's id as its hop chain; `/metrics` has the same per-link series.
#[tokio::test]
async fn cluster_view_shows_each_links_rtt_bytes_and_routes() {
    let a = Relay::start(RelayArgs::new(&["--auth-public", "", "--cluster-id", "21"])).await;
    let a_url = a.url(Via::Quic, "/").to_string();
    let b = Relay::start(RelayArgs::new(&[
        "--auth-public",
        "",
        "--cluster-id",
        "22",
        "--connect-tls-insecure",
        "--cluster-connect",
        &a_url,
    ]))
    .await;

    let (origin, broadcast) = origin_with("cam");
    let track = patient_video_track(&broadcast);
    track.write_frame(0, payload("cam", 0, 0, 1000)).unwrap();
    let _publisher = a.publisher(Via::Quic, "/", &origin).await;

    // A viewer on B keeps one subscription of B's on A.
    let (_session, viewer) = b.subscriber(Via::Quic, "/").await;
    let mut video = wait_broadcast(&viewer, "cam")
        .await
        .subscribe_track(&Track::new("video"));
    let frames = read_group(next_group(&mut video).await).await.unwrap();
    assert_eq!(frames[0], payload("cam", 0, 0, 1000));

    let view = wait_cluster(&b, "the link's counters", |view| {
        links(view).first().is_some_and(|l| {
            l["state"] == "up" && l["routes"] == 1 && l["upstream_subscriptions"] == 1
        })
    })
    .await;
    assert_eq!(view["id"], 22, "{view:#}");
    assert_eq!(view["node"], serde_json::Value::Null, "{view:#}");
    let link = links(&view)[0];
    assert_eq!(link["peer"], a_url.as_str(), "{view:#}");
    assert_eq!(
        link["address"],
        format!("127.0.0.1:{}", a.port).as_str(),
        "{view:#}"
    );
    assert!(
        link["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("moq-lite")),
        "{view:#}"
    );
    assert!(
        link["rtt_ms"].as_f64().is_some_and(|rtt| rtt > 0.0),
        "{view:#}"
    );
    // The frame (1000 bytes) came over the link.
    assert!(
        link["bytes_in"].as_u64().is_some_and(|n| n > 1000),
        "{view:#}"
    );
    assert!(
        link["bytes_out"].as_u64().is_some_and(|n| n > 0),
        "{view:#}"
    );
    assert_eq!(link["last_error"], serde_json::Value::Null, "{view:#}");
    assert!(
        link["since"].as_str().is_some_and(|s| s.ends_with('Z')),
        "{view:#}"
    );
    assert_eq!(
        view["routes"],
        serde_json::json!({ "cam": { "hops": [21], "routes": [[21]] } }),
        "{view:#}"
    );

    let labels = [("peer", a_url.as_str())];
    let metrics = b
        .wait_metrics("per-link series", |m| {
            m.get("moq_relay_cluster_link_routes", &labels) == Some(1.0)
        })
        .await;
    let get = |name: &str| {
        metrics
            .get(name, &labels)
            .unwrap_or_else(|| panic!("no {name} in\n{}", metrics.text))
    };
    assert_eq!(get("moq_relay_cluster_link_up"), 1.0);
    assert!(get("moq_relay_cluster_link_rtt_seconds") > 0.0);
    assert_eq!(get("moq_relay_cluster_link_upstream_subscriptions"), 1.0);
    assert!(get("moq_relay_cluster_link_received_bytes_total") > 1000.0);
    assert!(get("moq_relay_cluster_link_sent_bytes_total") > 0.0);
    // The exposition stays valid OpenMetrics with the new families.
    openmetrics_parser::openmetrics::parse_openmetrics(&metrics.text)
        .unwrap_or_else(|err| panic!("{err:?}\n{}", metrics.text));

    // A, which dials nobody, lists no link but knows the broadcast as local (no hops).
    let view = cluster(&a).await;
    assert!(links(&view).is_empty(), "{view:#}");
    assert_eq!(
        view["routes"],
        serde_json::json!({ "cam": { "hops": [], "routes": [[]] } }),
        "{view:#}"
    );
    for relay in [&a, &b] {
        assert!(!relay.log().contains("panicked"), "{}", relay.log());
    }
}
