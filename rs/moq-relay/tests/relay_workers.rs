//! `--server-workers`: several QUIC endpoints on one port (SO_REUSEPORT), each on its own thread
//! and runtime. Sessions on different workers must see each other's broadcasts exactly as on one.

mod common;

use std::time::Duration;

use common::*;
use moq_lite::Track;

const GROUPS: u64 = 10;
const FRAMES: usize = 3;
/// Most viewers connected while waiting for both workers to have one (each from its own UDP
/// socket, so Linux hashes each to a worker independently: all 40 on one worker is a 2^-39 event).
const MAX_VIEWERS: usize = 40;

/// The relay's "listening for QUIC" line gives `workers` workers.
fn says_workers(relay: &Relay, workers: usize) -> bool {
    relay.log().lines().any(|line| {
        line.contains("listening for QUIC") && line.contains(&format!(" workers={workers}"))
    })
}

/// Live sessions per worker, from `/metrics`.
fn per_worker(metrics: &Metrics, workers: usize) -> Vec<f64> {
    (0..workers)
        .map(|w| {
            metrics
                .get("moq_relay_worker_sessions", &[("worker", &w.to_string())])
                .unwrap_or_else(|| panic!("no session gauge for worker {w}\n{}", metrics.text))
        })
        .collect()
}

/// A publisher and viewers spread over two workers: viewers on the other worker than the
/// publisher's get every frame, through one upstream subscription; SIGTERM drains every worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_on_another_worker_get_the_publishers_frames_and_shutdown_drains_both() {
    let mut relay = Relay::start(RelayArgs::new(&[
        "--auth-public",
        "",
        "--server-workers",
        "2",
        // These viewers do not leave on GOAWAY: close them after a second, not the default 5.
        "--shutdown-timeout",
        "1s",
    ]))
    .await;
    assert!(
        says_workers(&relay, 2),
        "the relay says how many workers serve the port\n{}",
        relay.log_tail(20)
    );

    let (origin, broadcast) = origin_with("cam");
    let track = patient_video_track(&broadcast);
    let _publisher = relay.publisher(Via::Quic, "/live", &origin).await;
    let metrics = relay
        .wait_metrics("the publisher's session", |m| {
            m.all("moq_relay_worker_sessions")
                .map(|(_, v)| v)
                .sum::<f64>()
                == 1.0
        })
        .await;
    let publisher_worker = per_worker(&metrics, 2)
        .iter()
        .position(|&n| n == 1.0)
        .expect("the publisher is on one worker");

    // Viewers, each from its own socket, until one is on the other worker (and at least four).
    let mut viewers = Vec::new();
    let mut counts = Vec::new();
    while viewers.len() < MAX_VIEWERS {
        let via = if viewers.len() % 2 == 0 {
            Via::WebTransport
        } else {
            Via::Quic
        };
        let (session, mirror) = relay.subscriber(via, "/live").await;
        let mut consumer = wait_broadcast(&mirror, "cam")
            .await
            .subscribe_track(&Track::new("video"));
        consumer.set_max_latency(Duration::from_secs(60));
        consumer.set_late_groups(true);
        viewers.push((session, mirror, consumer));
        let want = viewers.len() + 1;
        let metrics = relay
            .wait_metrics("every session counted on a worker", |m| {
                m.all("moq_relay_worker_sessions")
                    .map(|(_, v)| v)
                    .sum::<f64>()
                    == want as f64
            })
            .await;
        counts = per_worker(&metrics, 2);
        if counts[1 - publisher_worker] >= 1.0 && viewers.len() >= 4 {
            break;
        }
    }
    assert!(
        counts[1 - publisher_worker] >= 1.0,
        "{} viewers, none on the worker without the publisher: {counts:?}",
        viewers.len()
    );
    let metrics = relay
        .wait_metrics("every viewer subscribed", |m| {
            m.get("moq_relay_viewers", &[("broadcast", "live/cam")]) == Some(viewers.len() as f64)
        })
        .await;
    assert_eq!(
        metrics.value("moq_relay_subscriptions_upstream"),
        1.0,
        "one upstream subscription for viewers on both workers\n{}",
        metrics.text
    );

    for g in 0..GROUPS {
        let mut group = track.append_group().unwrap();
        for f in 0..FRAMES {
            group
                .write_frame(g * 1000 + f as u64, payload("workers", g, f, 300))
                .unwrap();
        }
        group.finish();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (i, (_, _, consumer)) in viewers.iter_mut().enumerate() {
        let mut seen = Vec::new();
        while seen.len() < GROUPS as usize {
            let group = tokio::time::timeout(TIMEOUT, consumer.next_group())
                .await
                .unwrap_or_else(|_| panic!("viewer {i}: no group in time after {seen:?}"))
                .unwrap_or_else(|e| panic!("viewer {i}: track failed: {e}"))
                .unwrap_or_else(|| panic!("viewer {i}: track ended after {seen:?}"));
            let sequence = group.info().sequence;
            let frames = read_group(group).await.unwrap();
            let want: Vec<_> = (0..FRAMES)
                .map(|f| payload("workers", sequence, f, 300))
                .collect();
            assert_eq!(frames, want, "viewer {i}: group {sequence}");
            seen.push(sequence);
        }
        seen.sort();
        assert_eq!(seen, (0..GROUPS).collect::<Vec<_>>(), "viewer {i}");
    }

    // SIGTERM: GOAWAY to the sessions of both workers, then a clean exit.
    signal(relay.pid(), "TERM");
    // It needs ~1 s (the drain above, then the closes); 15 s leaves room for a loaded CI machine
    // while still failing a relay that never exits.
    let status = relay
        .wait_exit(Duration::from_secs(15))
        .await
        .unwrap_or_else(|| {
            panic!(
                "relay still running 15 s after SIGTERM\n{}",
                relay.log_tail(30)
            )
        });
    assert!(status.success(), "{status}\n{}", relay.log_tail(30));
    for (i, (session, _, _)) in viewers.iter().enumerate() {
        tokio::time::timeout(Duration::from_secs(5), session.closed())
            .await
            .unwrap_or_else(|_| panic!("viewer {i}'s session still open after the relay exited"));
    }
}

/// `--server-workers 0` means one per CPU; the gauge lists every worker, idle ones at 0.
#[tokio::test]
async fn zero_workers_means_one_per_cpu() {
    let relay = Relay::start(RelayArgs::new(&[
        "--auth-public",
        "",
        "--server-workers",
        "0",
    ]))
    .await;
    let cpus = std::thread::available_parallelism().unwrap().get();
    let metrics = relay.metrics().await;
    let gauges: Vec<_> = metrics.all("moq_relay_worker_sessions").collect();
    assert_eq!(gauges.len(), cpus, "{}", metrics.text);
    assert!(gauges.iter().all(|(_, v)| *v == 0.0), "{}", metrics.text);
    assert!(says_workers(&relay, cpus), "{}", relay.log_tail(10));
    // And it serves.
    let (_session, _origin) = relay.subscriber(Via::WebTransport, "/").await;
}
