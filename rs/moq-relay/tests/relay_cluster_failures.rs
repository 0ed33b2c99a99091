//! Relay clusters under the topologies and failures of issue 20, real relay binaries on loopback:
//!
//! - a star (B, C, D each linked to the hub A) delivers both ways, with one upstream subscription
//!   per track per link however many viewers each leaf has;
//! - in a triangle and in the redundant mesh, the ANNOUNCE messages counted on every link stop
//!   once the cluster has converged after a republish (no flapping), over a 30 s window;
//! - in a diamond inside a network namespace of the test's own, nftables silently drops the UDP
//!   of the middle relay carrying a viewer's track: D's link to it goes down at the idle timeout,
//!   the routes through it leave D's `/cluster`, the viewer's one subscription moves to the other
//!   middle relay, and the link comes back when the rule goes.
//!
//! The namespace test needs root, iproute2 and nftables (scripts/test.sh installs them).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use moq_lite::{OriginProducer, Session, Track};

/// QUIC idle timeout of a cluster link (its dialer's, moq_native::CLIENT_IDLE_TIMEOUT_MS).
const IDLE_TIMEOUT: Duration = Duration::from_millis(moq_native::CLIENT_IDLE_TIMEOUT_MS);

/// The longest a cluster link waits before redialing (the relay's `cluster::MAX_BACKOFF`; the
/// relay is a binary, so it is restated here).
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// A publisher writing a group of one 100-byte frame tagged `tag` every 100 ms into the
/// broadcast `name` on `relay`, until the returned task is aborted (which also ends its session).
async fn publish(relay: &Relay, name: &str, tag: &'static str) -> tokio::task::JoinHandle<()> {
    let (origin, broadcast) = origin_with(name);
    let track = patient_video_track(&broadcast);
    let session = relay.publisher(Via::Quic, "/", &origin).await;
    tokio::spawn(async move {
        let _keep = (origin, broadcast, session);
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        for g in 0u64.. {
            tick.tick().await;
            let mut group = track.append_group().unwrap();
            group.write_frame(0, payload(tag, g, 0, 100)).unwrap();
            group.finish();
        }
    })
}

/// A viewer session on `relay` subscribed to `name`'s video once a broadcast at `name` delivers
/// a group whose first frame is tagged `tag` (an older broadcast still being withdrawn is
/// skipped).
async fn view(
    relay: &Relay,
    name: &str,
    tag: &str,
) -> (Session, OriginProducer, moq_lite::TrackConsumer) {
    let (session, viewer) = relay.subscriber(Via::Quic, "/").await;
    let mut announced = viewer.consume();
    let prefix = format!("{tag}:");
    loop {
        let next = tokio::time::timeout(TIMEOUT, announced.announced())
            .await
            .unwrap_or_else(|_| panic!("{name} ({tag}) not announced\n{}", relay.log_tail(20)));
        let Some(broadcast) = next.broadcast else {
            continue;
        };
        if next.path.to_string() != name {
            continue;
        }
        let mut video = broadcast.subscribe_track(&Track::new("video"));
        let Ok(Ok(Some(group))) = tokio::time::timeout(TIMEOUT, video.next_group()).await else {
            continue;
        };
        match read_group(group).await {
            Ok(frames) if frames[0].starts_with(prefix.as_bytes()) => {
                return (session, viewer, video)
            }
            _ => continue,
        }
    }
}

/// Read the viewer's groups while `more` says so (given the sequence and the first frame),
/// checking each sequence comes once and in increasing order; returns the sequences seen and the
/// longest wait between two groups.
async fn watch_groups(
    video: &mut moq_lite::TrackConsumer,
    mut more: impl FnMut(u64, &[u8]) -> bool,
) -> (Vec<u64>, Duration) {
    let mut seen: Vec<u64> = Vec::new();
    let mut longest = Duration::ZERO;
    let mut at = Instant::now();
    loop {
        let group = tokio::time::timeout(TIMEOUT, video.next_group())
            .await
            .expect("a group in time")
            .expect("the subscription is not failed")
            .expect("the subscription is not ended");
        let sequence = group.info().sequence;
        longest = longest.max(at.elapsed());
        at = Instant::now();
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

/// `GET /cluster` on the relay's internal listener.
async fn cluster(relay: &Relay) -> serde_json::Value {
    let internal: std::net::SocketAddr = format!("127.0.0.1:{}", relay.internal).parse().unwrap();
    let response = test_support::http::get(internal, "/cluster")
        .await
        .expect("GET /cluster");
    assert_eq!(response.status, 200, "{}", response.body);
    serde_json::from_str(&response.body).expect("/cluster is JSON")
}

/// The hop chains of every route a `/cluster` view holds for `name`.
fn routes(view: &serde_json::Value, name: &str) -> Vec<Vec<u64>> {
    serde_json::from_value(view["routes"][name]["routes"].clone()).unwrap_or_default()
}

/// Relays whose upstream subscription count (`moq_relay_subscriptions_upstream`) is above 0.
async fn carrying(relays: &[&Relay]) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, relay) in relays.iter().enumerate() {
        let metrics = relay.metrics().await;
        if metrics.value("moq_relay_subscriptions_upstream") > 0.0 {
            out.push(i);
        }
    }
    out
}

/// Which of `middles` carries the track (its index), once exactly one does.
async fn carrier(middles: &[&Relay]) -> usize {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let carriers = carrying(middles).await;
        if carriers.len() == 1 {
            return carriers[0];
        }
        assert!(
            Instant::now() < deadline,
            "one middle relay carries the track: {carriers:?}"
        );
        // Polling metrics: the relay has no event to wait on for this.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_star_delivers_both_ways_with_one_upstream_subscription_per_track_per_link() {
    // Hub A; B, C and D each dial A. Two viewers per relay of each broadcast it does not publish.
    let a = relay_linked_to(101, &[]).await;
    let b = relay_linked_to(102, &[&a]).await;
    let c = relay_linked_to(103, &[&a]).await;
    let d = relay_linked_to(104, &[&a]).await;

    // Published on a leaf (B): viewers on the hub and on the other leaves, C and D two hops away.
    let on_b = publish(&b, "b-cam", "b-cam").await;
    let mut viewers = Vec::new();
    for (name, relay) in [("A", &a), ("C", &c), ("D", &d)] {
        for _ in 0..2 {
            let started = Instant::now();
            viewers.push(view(relay, "b-cam", "b-cam").await);
            eprintln!("b-cam plays on {name} after {:?}", started.elapsed());
        }
    }
    // Published on the hub: viewers on every leaf.
    let on_a = publish(&a, "a-cam", "a-cam").await;
    for (name, relay) in [("B", &b), ("C", &c), ("D", &d)] {
        for _ in 0..2 {
            let started = Instant::now();
            viewers.push(view(relay, "a-cam", "a-cam").await);
            eprintln!("a-cam plays on {name} after {:?}", started.elapsed());
        }
    }

    // One upstream subscription per track per link: each leaf holds one per track it views over
    // its one link (B: a-cam; C and D: a-cam and b-cam). `moq_relay_subscriptions_upstream`
    // also counts the one a relay holds on a local publisher (B's on b-cam's).
    for (name, relay, link, total) in [
        ("B", &b, 1.0, 2.0),
        ("C", &c, 2.0, 2.0),
        ("D", &d, 2.0, 2.0),
    ] {
        let metrics = relay
            .wait_metrics(
                &format!("{name}: {link} upstream subscriptions on its link"),
                |m| {
                    m.value("moq_relay_subscriptions_upstream") == total
                        && m.all("moq_relay_cluster_link_upstream_subscriptions")
                            .map(|(_, v)| v)
                            .eq([link])
                },
            )
            .await;
        eprintln!(
            "{name}: upstream subscriptions on its link {:?}, in all {}",
            metrics
                .all("moq_relay_cluster_link_upstream_subscriptions")
                .map(|(_, v)| v)
                .collect::<Vec<_>>(),
            metrics.value("moq_relay_subscriptions_upstream"),
        );
    }
    // The hub holds one upstream subscription over B's link (b-cam, for its own two viewers and
    // both other leaves) and one on its local publisher (a-cam). It serves b-cam to its two
    // viewers and once per other leaf's link (C, D), and a-cam once per leaf link.
    let metrics = a
        .wait_metrics("A: one upstream per track, one served per link", |m| {
            m.value("moq_relay_subscriptions_upstream") == 2.0
                && m.get("moq_relay_viewers", &[("broadcast", "b-cam")]) == Some(4.0)
                && m.get("moq_relay_viewers", &[("broadcast", "a-cam")]) == Some(3.0)
        })
        .await;
    eprintln!(
        "A: upstream {}, served b-cam {:?}, a-cam {:?}",
        metrics.value("moq_relay_subscriptions_upstream"),
        metrics.get("moq_relay_viewers", &[("broadcast", "b-cam")]),
        metrics.get("moq_relay_viewers", &[("broadcast", "a-cam")]),
    );
    // B serves b-cam once: to A, for everyone.
    let metrics = b
        .wait_metrics("B serves b-cam once", |m| {
            m.get("moq_relay_viewers", &[("broadcast", "b-cam")]) == Some(1.0)
        })
        .await;
    eprintln!(
        "B: served b-cam {:?}, a-cam {:?}",
        metrics.get("moq_relay_viewers", &[("broadcast", "b-cam")]),
        metrics.get("moq_relay_viewers", &[("broadcast", "a-cam")]),
    );

    // Every viewer still receives, in order.
    for (_, _, video) in &mut viewers {
        let mut count = 0;
        watch_groups(video, |_, _| {
            count += 1;
            count < 2
        })
        .await;
    }
    on_a.abort();
    on_b.abort();
    for relay in [&a, &b, &c, &d] {
        assert!(!relay.log().contains("panicked"), "{}", relay.log());
    }
}

/// ANNOUNCE messages counted on every relay: `(relay, link or "total", count)`, the links from
/// `GET /cluster` (checked against `/metrics`) and the relay-wide total from `/metrics`.
async fn announce_counts(relays: &[(&str, &Relay)]) -> Vec<(String, String, u64)> {
    let mut out = Vec::new();
    for (name, relay) in relays {
        let view = cluster(relay).await;
        let metrics = relay.metrics().await;
        for (link, status) in view["links"].as_object().expect("links") {
            let count = status["announce_messages"].as_u64().expect("a count");
            let labels = [
                ("peer", status["peer"].as_str().unwrap_or_default()),
                ("address", status["address"].as_str().unwrap_or_default()),
            ];
            assert_eq!(
                metrics.get("moq_relay_cluster_link_announce_messages_total", &labels),
                Some(count as f64),
                "{name} {link}: /metrics agrees with /cluster\n{}",
                metrics.text
            );
            out.push((name.to_string(), link.clone(), count));
        }
        let total = metrics.value("moq_relay_announce_messages_in_total") as u64;
        out.push((name.to_string(), "total".to_string(), total));
    }
    out
}

/// Wait until every relay holds `expected` routes to `name` in `GET /cluster` (a bounded poll:
/// the routes settle after the last announcement, and nothing signals that).
async fn wait_routes(relays: &[(&str, &Relay, usize)], name: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut counts = Vec::new();
        for (relay_name, relay, _) in relays {
            counts.push((*relay_name, routes(&cluster(relay).await, name)));
        }
        if counts
            .iter()
            .zip(relays)
            .all(|((_, chains), (_, _, want))| chains.len() == *want)
        {
            eprintln!("routes to {name}: {counts:?}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "routes to {name} never settled: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The measurement window of the no-flapping tests: counts taken at its start and end must match.
const QUIET: Duration = Duration::from_secs(30);

/// Publish `cam` on the first relay, view it everywhere, republish it, wait for the cluster to
/// converge (every relay plays the new broadcast and holds the `routes` expected of its place in
/// the topology), then count ANNOUNCE messages per link over [`QUIET`].
async fn announces_stay_still(topology: &str, relays: &[(&str, &Relay, usize)]) {
    let a = relays[0].1;
    let first = publish(a, "cam", "first").await;
    for (_, relay, _) in relays {
        drop(view(relay, "cam", "first").await);
    }
    first.abort();
    let again = publish(a, "cam", "again").await;
    let mut viewers = Vec::new();
    for (_, relay, _) in relays {
        viewers.push(view(relay, "cam", "again").await);
    }
    wait_routes(relays, "cam").await;

    let named: Vec<(&str, &Relay)> = relays.iter().map(|(n, r, _)| (*n, *r)).collect();
    let before = announce_counts(&named).await;
    // The window is the measurement: a flapping route re-announces within it, and nothing else
    // would say that it did not.
    tokio::time::sleep(QUIET).await;
    let after = announce_counts(&named).await;
    eprintln!("{topology}: ANNOUNCE messages received, unchanged over {QUIET:?}: {after:?}");
    assert_eq!(
        before, after,
        "{topology}: ANNOUNCE counts changed (flapping)"
    );
    for (relay, link, count) in &after {
        assert!(
            *count > 0,
            "{topology}: {relay} {link} received no ANNOUNCE"
        );
    }
    // The routes held still too, and every viewer still plays.
    for (name, relay, want) in relays {
        let chains = routes(&cluster(relay).await, "cam");
        assert_eq!(chains.len(), *want, "{topology} {name}: {chains:?}");
    }
    for (_, _, video) in &mut viewers {
        next_group(video).await;
    }
    again.abort();
    for (_, relay, _) in relays {
        assert!(!relay.log().contains("panicked"), "{}", relay.log());
    }
}

#[tokio::test]
async fn announce_counts_per_link_stay_still_after_convergence_in_a_triangle_and_the_mesh() {
    // Both topologies at once: the 30 s windows overlap.
    //
    // Triangle: A; B → A; C → A, B. Routes to A's broadcast: A its own; B from A and from C
    // (C's route via A, offered to B); C from A and from B.
    let triangle = async {
        let a = relay_linked_to(111, &[]).await;
        let b = relay_linked_to(112, &[&a]).await;
        let c = relay_linked_to(113, &[&a, &b]).await;
        announces_stay_still("triangle", &[("A", &a, 1), ("B", &b, 2), ("C", &c, 2)]).await;
    };
    // Mesh: A; B → A; C → A, B; D → C. As the triangle, and D from C only (C's routes all lead
    // back through nobody but A and B; D offers C nothing: its only route is through C).
    let mesh = async {
        let a = relay_linked_to(121, &[]).await;
        let b = relay_linked_to(122, &[&a]).await;
        let c = relay_linked_to(123, &[&a, &b]).await;
        let d = relay_linked_to(124, &[&c]).await;
        announces_stay_still(
            "mesh",
            &[("A", &a, 1), ("B", &b, 2), ("C", &c, 2), ("D", &d, 1)],
        )
        .await;
    };
    tokio::join!(triangle, mesh);
}

/// A network namespace with `lo` up; everything still inside is killed and the namespace deleted
/// on drop (every exit path: panics unwind through it).
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Self {
        let name = format!("moq-cluster-fail-{}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Self { name };
        run(Command::new("ip").args(["netns", "exec", &ns.name, "ip", "link", "set", "lo", "up"]));
        ns
    }
}

/// Join the namespace `name` from the calling thread only: sockets it opens and processes it
/// starts from then on live there.
fn enter_netns(name: &str) {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(format!("/var/run/netns/{name}")).expect("netns");
    // SAFETY: setns on a valid namespace fd affects only the calling thread.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Anything still inside (a relay that outlived its handle) would keep it alive.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Run a set-up command; its stdout. Panics with its stderr when it fails.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|err| panic!("{cmd:?}: {err} (install iproute2 and nftables)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {} (network namespaces and nftables need root)",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// nftables in the calling thread's namespace: drop all UDP to and from `port` (the output hook
/// sees loopback traffic), counting what it dropped.
fn block_udp_port(port: u16) {
    let port = port.to_string();
    run(Command::new("nft").args(["add", "table", "inet", "cut"]));
    run(Command::new("nft").args([
        "add",
        "chain",
        "inet",
        "cut",
        "out",
        "{ type filter hook output priority 0; }",
    ]));
    for dir in ["dport", "sport"] {
        run(Command::new("nft").args([
            "add", "rule", "inet", "cut", "out", "udp", dir, &port, "counter", "drop",
        ]));
    }
}

/// Packets the rules of [`block_udp_port`] have dropped so far.
fn dropped_packets() -> u64 {
    let listing = run(Command::new("nft").args(["list", "table", "inet", "cut"]));
    let words: Vec<&str> = listing.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| w[0] == "packets")
        .filter_map(|w| w[1].parse::<u64>().ok())
        .sum()
}

/// D's link to the relay listening on `port`, from D's `/cluster`.
fn link_to(view: &serde_json::Value, port: u16) -> serde_json::Value {
    let suffix = format!(":{port}");
    view["links"]
        .as_object()
        .expect("links")
        .values()
        .find(|l| l["address"].as_str().is_some_and(|a| a.ends_with(&suffix)))
        .cloned()
        .unwrap_or_else(|| panic!("no link to port {port}: {view}"))
}

#[test]
fn a_diamond_routes_around_a_silently_dropped_link_and_takes_it_back() {
    // Fail, never skip, without the tools.
    if Command::new("nft").arg("--version").output().is_err() {
        panic!("nft is missing: apt-get install nftables (scripts/test.sh installs it)");
    }
    let ns = Netns::new();
    let worker = {
        let name = ns.name.clone();
        std::thread::spawn(move || {
            enter_netns(&name);
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(diamond_in_namespace())
        })
    };
    let result = worker.join();
    drop(ns);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// The body of [`a_diamond_routes_around_a_silently_dropped_link_and_takes_it_back`], on a
/// thread inside the namespace: every relay, the publisher, the viewer and nft run there.
async fn diamond_in_namespace() {
    // A; B → A; C → A; D → B, C. A publisher on A, one viewer subscription on D.
    let a = relay_linked_to(131, &[]).await;
    let b = relay_linked_to(132, &[&a]).await;
    let c = relay_linked_to(133, &[&a]).await;
    let d = relay_linked_to(134, &[&b, &c]).await;
    let writer = publish(&a, "cam", "cam").await;
    let (_session, _viewer, mut video) = view(&d, "cam", "cam").await;
    let mut count = 0;
    watch_groups(&mut video, |_, _| {
        count += 1;
        count < 3
    })
    .await;
    let (cut, other, cut_id) = match carrier(&[&b, &c]).await {
        0 => (&b, &c, 132u64),
        _ => (&c, &b, 133u64),
    };
    let through = |chains: &[Vec<u64>]| chains.iter().filter(|h| h.contains(&cut_id)).count();
    let view = cluster(&d).await;
    assert_eq!(link_to(&view, cut.port)["state"], "up", "{view}");
    assert_eq!(
        through(&routes(&view, "cam")),
        1,
        "a route via {cut_id}: {view}"
    );

    // Silently drop D's traffic with the carrying middle relay: its listening port, both ways.
    // Its own link to A leaves from another (ephemeral) port and stays up. D's link ends at its
    // idle timeout (3 s), counted from the first ack-eliciting packet D sends after the last one
    // it received (RFC 9000 §10.1): a keep-alive up to 1 s later. Hence the bound of 3 s + 1.5 s.
    block_udp_port(cut.port);
    let blocked = Instant::now();
    // D's /cluster, polled (nothing signals the link's state) while the viewer reads.
    let poll = tokio::spawn({
        let internal = d.internal;
        let port = cut.port;
        async move {
            let addr: std::net::SocketAddr = format!("127.0.0.1:{internal}").parse().unwrap();
            let mut down = None;
            loop {
                let response = test_support::http::get(addr, "/cluster").await.unwrap();
                let view: serde_json::Value = serde_json::from_str(&response.body).unwrap();
                let state = link_to(&view, port)["state"].clone();
                if state != "up" && down.is_none() {
                    down = Some(blocked.elapsed());
                }
                let via = routes(&view, "cam")
                    .iter()
                    .filter(|h| h.contains(&cut_id))
                    .count();
                if let (Some(down), 0) = (down, via) {
                    return (down, blocked.elapsed(), view);
                }
                assert!(
                    blocked.elapsed() < TIMEOUT,
                    "D still routes through {cut_id}: {view}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    // The viewer's one subscription, read past the idle timeout and 3 s of delivery after it.
    let (seen, longest) = watch_groups(&mut video, |_, _| {
        blocked.elapsed() < IDLE_TIMEOUT + Duration::from_secs(3)
    })
    .await;
    let (down, gone, view) = poll.await.expect("the /cluster poll");
    let dropped = dropped_packets();
    eprintln!(
        "link to {cut_id} left `up` {down:?} after the block, its routes gone from D's /cluster \
         after {gone:?}; the viewer's longest pause {longest:?}; {dropped} packets dropped; \
         groups {seen:?}"
    );
    assert!(dropped > 0, "the rule dropped nothing");
    // The idle timer restarts with each keep-alive D sends after its last packet received, so the
    // link ends between the idle timeout and one keep-alive interval (1 s) later; 1 s of slack.
    assert!(
        gone <= IDLE_TIMEOUT + Duration::from_secs(2),
        "routes via {cut_id} left D after {gone:?}: {view}\n{}",
        d.log_tail(20)
    );
    assert!(
        longest < IDLE_TIMEOUT + Duration::from_secs(2),
        "the viewer paused {longest:?}\n{}",
        d.log_tail(20)
    );
    assert_eq!(
        through(&routes(&view, "cam")),
        0,
        "no route via {cut_id}: {view}"
    );
    assert!(
        !routes(&view, "cam").is_empty(),
        "D keeps the route via the other middle relay: {view}"
    );
    assert_eq!(
        carrying(&[other]).await,
        [0],
        "the other middle relay carries the track now"
    );

    // The rule goes: D's redial (backoff at most 10 s, then a handshake) brings the link back.
    run(Command::new("nft").args(["delete", "table", "inet", "cut"]));
    let restored = Instant::now();
    let bound = MAX_BACKOFF + IDLE_TIMEOUT + Duration::from_secs(1);
    let view = loop {
        let view = cluster(&d).await;
        if link_to(&view, cut.port)["state"] == "up" && through(&routes(&view, "cam")) == 1 {
            break view;
        }
        assert!(
            restored.elapsed() < bound,
            "D's link to {cut_id} not back up in {bound:?}: {view}\n{}",
            d.log_tail(20)
        );
        // Polling /cluster: nothing signals the link's state.
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let back = restored.elapsed();
    eprintln!(
        "link to {cut_id} up again, with its route, {back:?} after the rule went ({} sessions)",
        link_to(&view, cut.port)["sessions"]
    );
    // The viewer never noticed: more groups, still in order.
    let mut more = 5;
    watch_groups(&mut video, |_, _| {
        more -= 1;
        more > 0
    })
    .await;
    writer.abort();
    for relay in [&a, &b, &c, &d] {
        assert!(!relay.log().contains("panicked"), "{}", relay.log());
    }
}
