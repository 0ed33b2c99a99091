//! What misbehaving peers cost the real relay binary: a stalled viewer (a frozen network path, and
//! a frozen process) must not slow the healthy viewers of the same track nor grow the relay without
//! bound; a peer sending garbage gets the spec's error codes and nobody else notices.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use moq_lite::{Client, Error, OriginProducer, Track, TrackInfo};

/// Frame payload size.
const FRAME: usize = 30_000;
/// Frames per group, one every [`FRAME_INTERVAL`].
const FRAMES: usize = 10;
const FRAME_INTERVAL: Duration = Duration::from_millis(10);
/// The track's max latency: the relay resets a viewer's group streams older than this.
const MAX_LATENCY: Duration = Duration::from_secs(1);
/// How long to keep watching after the relay first resets a stalled viewer's group.
const AFTER_BLOCKED: Duration = Duration::from_secs(2);

/// Set in a re-executed copy of this test binary: subscribe there, then get frozen with SIGSTOP.
const CHILD_ENV: &str = "MOQ_RELAY_TEST_STALLED_CHILD";

/// The child process: subscribe to `cam/video` at the URL, say READY after the first group, and
/// keep reading (until SIGSTOP freezes it and SIGKILL ends it).
async fn child_main(url: &str, fingerprint: &str) {
    let native = moq_native::QuicClient::new(moq_native::QuicClientConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        fingerprints: vec![fingerprint.to_string()],
        ..Default::default()
    })
    .unwrap();
    eprintln!("child: connecting to {url}");
    let connection = native.connect(url.parse().unwrap()).await.unwrap();
    eprintln!("child: connected");
    let origin = OriginProducer::new();
    let _session = Client::new()
        .subscribe(origin.clone())
        .with_setup_path(connection.setup_path)
        .connect(connection.session)
        .await
        .unwrap();
    let mut track = wait_broadcast(&origin, "cam")
        .await
        .subscribe_track(&Track::new("video"));
    eprintln!("child: subscribed");
    read_group(next_group(&mut track).await).await.unwrap();
    // libtest may have written "test NAME ... " on this line already.
    println!("\nREADY");
    eprintln!("child: ready");
    while let Ok(Some(group)) = track.next_group().await {
        let _ = read_group(group).await;
    }
}

/// A child process that is resumed, killed and reaped on drop.
struct Frozen(Child);

impl Drop for Frozen {
    fn drop(&mut self) {
        // Not `signal`: no panic here if the process is already gone.
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.id().to_string()])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Wait until the relay lists a session not in `before`, and return its ID. (Sessions are listed
/// once the relay has set them up, shortly after the client's connect returns.)
async fn new_session(relay: &Relay, before: &[String]) -> String {
    let metrics = relay
        .wait_metrics("a new session", |m| {
            m.sessions().iter().any(|s| !before.contains(s))
        })
        .await;
    metrics
        .sessions()
        .into_iter()
        .find(|s| !before.contains(s))
        .unwrap()
}

/// Three kinds of readers of a 24 Mbit/s track (30 kB frames every 10 ms, a group of 300 kB per
/// 100 ms, 1 s max latency): two healthy ones, one whose network path freezes (in-process, behind
/// a UDP proxy that drops everything) and one whose process is frozen with SIGSTOP (a copy of this
/// test binary, see [`child_main`]).
///
/// While they are frozen the relay first fills QUIC's send buffer for each (quinn's default send
/// window: 10 MB, 3.3 s of this track; at 8 Mbit/s it would take 10 s, which is why the rate is
/// this high). Then its writes block, and from then on nothing may pile up beyond what the track
/// produces within its max latency: group streams older than that are reset (and counted in
/// `groups_dropped`) whenever a new group starts. So the bytes held for one stalled viewer and not
/// yet handed to QUIC stay below 3 MB/s × (1 s + one 100 ms group) = 3.3 MB; the test allows 5 MB
/// for scheduling slack, and watches until 2 s after the first reset, by when a relay without the
/// bound would hold over 9 MB. Meanwhile the healthy viewers get every frame of every group. (The
/// relay's idle timeout is raised so that it does not end the frozen sessions during the test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_viewers_cost_bounded_memory_and_do_not_slow_healthy_ones() {
    if let Ok(url) = std::env::var(CHILD_ENV) {
        let fingerprint = std::env::var(format!("{CHILD_ENV}_FINGERPRINT")).unwrap();
        return child_main(&url, &fingerprint).await;
    }
    let relay = Relay::start(RelayArgs::new(&[
        "--auth-public",
        "",
        "--quic-idle-timeout",
        "60000",
    ]))
    .await;
    let (origin, broadcast) = origin_with("cam");
    let info = TrackInfo {
        max_latency: MAX_LATENCY,
        ..Default::default()
    };
    let track = broadcast.create_track(Track::new("video"), info);
    let _publisher = relay.publisher(Via::WebTransport, "/", &origin).await;

    // Everything that costs CPU (TLS set-up, a process start) happens before the first group, so
    // the healthy viewers' deliveries are not competing with it.
    // Stalled reader 1: a copy of this test binary, subscribing over WebTransport.
    let scratch = Scratch::new("stalled-child");
    let before = relay
        .wait_metrics("the publisher's session", |m| m.sessions().len() == 1)
        .await
        .sessions();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "stalled_viewers_cost_bounded_memory_and_do_not_slow_healthy_ones",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, relay.url(Via::WebTransport, "/").to_string())
        .env(format!("{CHILD_ENV}_FINGERPRINT"), &relay.fingerprint)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(scratch.path("child.log")).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Frozen(child);
    let ready = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line == "READY")
    });
    let frozen_process = new_session(&relay, &before).await;

    // Stalled reader 2: this process, behind a proxy that will drop every packet.
    let before = relay.metrics().await.sessions();
    let freezer = Freezer::start(relay.port).await;
    let stalled_origin = OriginProducer::new();
    let native = relay.client();
    let connection = native.connect(freezer.url(Via::Quic, "/")).await.unwrap();
    let _stalled = Client::new()
        .subscribe(stalled_origin.clone())
        .with_setup_path(connection.setup_path)
        .connect(connection.session)
        .await
        .unwrap();
    let mut stalled_track = wait_broadcast(&stalled_origin, "cam")
        .await
        .subscribe_track(&Track::new("video"));
    let proxied = new_session(&relay, &before).await;

    // Healthy readers.
    let mut healthy = Vec::new();
    for via in Via::BOTH {
        let (session, seen) = relay.subscriber(via, "/").await;
        let mut consumer = wait_broadcast(&seen, "cam")
            .await
            .subscribe_track(&Track::new("video"));
        consumer.set_max_latency(Duration::from_secs(30));
        healthy.push((session, consumer));
    }
    relay
        .wait_metrics("four viewers", |m| {
            m.get("moq_relay_viewers", &[("broadcast", "cam")]) == Some(4.0)
        })
        .await;
    let readers: Vec<_> = healthy
        .into_iter()
        .map(|(session, mut consumer)| {
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let next = tokio::time::timeout(TIMEOUT, consumer.next_group())
                        .await
                        .expect("a healthy viewer waited 10 s for a group");
                    let Some(group) = next.expect("track failed") else {
                        break;
                    };
                    let sequence = group.info().sequence;
                    let frames = read_group(group).await.unwrap_or_else(|e| {
                        panic!("group {sequence} failed for a healthy viewer: {e}")
                    });
                    got.push((sequence, frames));
                }
                drop(session);
                got
            })
        })
        .collect();

    // The publisher: a frame every 10 ms until told to stop, then the track finishes.
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let writer = {
        let track = track.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FRAME_INTERVAL);
            let mut groups = 0u64;
            loop {
                let mut group = track.append_group().unwrap();
                let g = group.info().sequence;
                for f in 0..FRAMES {
                    tick.tick().await;
                    group
                        .write_frame(g * 1000 + f as u64, payload("stall", g, f, FRAME))
                        .unwrap();
                }
                group.finish();
                groups += 1;
                if stop_rx.try_recv().is_ok() {
                    track.finish();
                    return groups;
                }
            }
        })
    };

    // Both stalled readers are receiving before they freeze.
    read_group(next_group(&mut stalled_track).await)
        .await
        .unwrap();
    let ready = tokio::time::timeout(TIMEOUT, ready)
        .await
        .map(|r| r.unwrap());
    assert!(
        ready == Ok(true),
        "the child never got a group:\n{}",
        tail(&scratch.path("child.log"), 30)
    );

    // Freeze both.
    signal(child.0.id(), "STOP");
    freezer.freeze();
    let dropped_at_freeze = relay
        .metrics()
        .await
        .value("moq_relay_groups_dropped_total");
    // Sample until the relay has been resetting the stalled viewers' groups for AFTER_BLOCKED: first
    // it fills their QUIC send buffers, and only once writes block does anything queue up.
    let start = Instant::now();
    let mut peak = [0f64; 2];
    let mut dropped = dropped_at_freeze;
    let mut blocked: Option<Instant> = None;
    while blocked.is_none_or(|at| at.elapsed() < AFTER_BLOCKED) {
        let metrics = relay.metrics().await;
        for (i, session) in [&proxied, &frozen_process].into_iter().enumerate() {
            let queued = metrics
                .get("moq_relay_session_queued_bytes", &[("session", session)])
                .unwrap_or_else(|| panic!("stalled session {session} is gone:\n{}", metrics.text));
            peak[i] = peak[i].max(queued);
        }
        dropped = metrics.value("moq_relay_groups_dropped_total");
        if blocked.is_none() && dropped > dropped_at_freeze {
            blocked = Some(Instant::now());
        }
        assert!(
            blocked.is_some() || start.elapsed() < TIMEOUT,
            "no group of a stalled viewer was reset {TIMEOUT:?} after it stalled:\n{}",
            metrics.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let blocked_after = blocked.map(|at| at - start);
    let _ = stop_tx.send(());
    let written = tokio::time::timeout(TIMEOUT, writer)
        .await
        .unwrap()
        .unwrap();

    // Every healthy reader got every group, complete and in order.
    for (i, reader) in readers.into_iter().enumerate() {
        let got = tokio::time::timeout(TIMEOUT, reader)
            .await
            .unwrap_or_else(|_| panic!("healthy viewer {i} stalled"))
            .unwrap();
        let sequences: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
        let missed: Vec<u64> = (0..written).filter(|g| !sequences.contains(g)).collect();
        assert!(
            missed.is_empty() && sequences.len() == written as usize,
            "healthy viewer {i} missed groups {missed:?} of {written} (got {sequences:?})\n{}",
            relay.log_tail(10)
        );
        for (g, frames) in got {
            assert_eq!(frames.len(), FRAMES, "healthy viewer {i}, group {g}");
            for (f, frame) in frames.iter().enumerate() {
                assert!(
                    frame == &payload("stall", g, f, FRAME),
                    "healthy viewer {i}, group {g}, frame {f}: wrong payload"
                );
            }
        }
    }
    let produced = written as f64 * (FRAMES * FRAME) as f64;
    eprintln!(
        "stalled viewers: first reset {blocked_after:?} after the freeze; peak queued {peak:?} bytes; \
         groups dropped {dropped_at_freeze} → {dropped}; {produced} bytes produced"
    );
    for (who, peak) in ["frozen path", "frozen process"].iter().zip(peak) {
        assert!(
            peak < 5_000_000.0,
            "{who}: the relay held {peak} bytes for a stalled viewer"
        );
    }
    assert!(
        dropped >= dropped_at_freeze + 4.0,
        "the relay reset only {} groups of the stalled viewers",
        dropped - dropped_at_freeze
    );
    drop(child);
}

/// A raw lite-05 peer sending garbage gets the spec's codes: an unknown stream type is reset with 10,
/// an undecodable, truncated or oversized SUBSCRIBE with 5, and its session keeps working; a second
/// SETUP closes its session with 15. Other clients never notice.
#[tokio::test]
async fn garbage_gets_error_codes_and_the_relay_keeps_serving() {
    let relay = Relay::open().await;
    let (origin, broadcast) = origin_with("live");
    let track = broadcast.create_track(Track::new("t"), TrackInfo::default());
    track.write_frame(0, payload("live", 0, 0, 10)).unwrap();
    let _publisher = relay.publisher(Via::WebTransport, "/", &origin).await;
    relay
        .wait_metrics("the broadcast", |m| {
            m.value("moq_relay_announcements") == 1.0
        })
        .await;

    let bad = raw_peer(&relay, None).await;
    // An unknown bidi stream type → 10 (unexpected stream).
    assert_eq!(
        reset_code(&bad, &[0x3f]).await,
        Error::UnexpectedStream(0).code()
    );
    // An unknown uni stream type is refused with STOP_SENDING 10.
    let mut uni = bad.open_uni().await.unwrap();
    uni.write_all(&[0x3f, 0x00]).await.unwrap();
    let stopped = tokio::time::timeout(TIMEOUT, uni.stopped())
        .await
        .expect("the unknown uni stream was not stopped")
        .unwrap();
    assert_eq!(stopped, Some(10));
    // A SUBSCRIBE whose length says 3 bytes of nonsense → 5 (decode).
    assert_eq!(reset_code(&bad, &[0x02, 0x03, 0x00, 0x40, 0xff]).await, 5);
    // A length prefix far beyond the 256 KiB message limit, refused as soon as it is read → 5.
    assert_eq!(reset_code(&bad, &[0x02, 0xbf, 0xff, 0xff, 0xff]).await, 5);
    // A valid SUBSCRIBE cut short by FIN → 5.
    let whole = subscribe_bytes(7, "live", "t");
    let (mut send, mut recv) = bad.open_bi().await.unwrap();
    send.write_all(&whole[..whole.len() - 3]).await.unwrap();
    send.finish().unwrap();
    assert_eq!(reset_of(&mut recv).await, 5);
    // A SUBSCRIBE for nothing → 13; then a good one on the same session is served.
    assert_eq!(
        reset_code(&bad, &subscribe_bytes(8, "nothing", "t")).await,
        Error::NotFound.code()
    );
    let (mut send, recv) = bad.open_bi().await.unwrap();
    send.write_all(&subscribe_bytes(9, "live", "t"))
        .await
        .unwrap();
    let response: moq_lite::coding::SubscribeResponse = Wire::new(recv).next().await;
    assert!(
        matches!(
            response,
            moq_lite::coding::SubscribeResponse::Start { group: 0 }
        ),
        "{response:?}"
    );
    assert!(
        bad.close_reason().is_none(),
        "garbage streams do not end the session"
    );

    // A second SETUP stream → the session is closed with 15 (protocol violation).
    let mut again = bad.open_uni().await.unwrap();
    again.write_all(&[0x01, 0x01, 0x00]).await.unwrap();
    again.finish().unwrap();
    let err = tokio::time::timeout(TIMEOUT, bad.closed())
        .await
        .expect("the session survived a second SETUP");
    assert!(
        err.to_string().contains("15"),
        "expected code 15, got {err}"
    );

    // The relay is healthy and serves a normal viewer, whose session is the only other one left.
    let (status, body) = http_get(relay.internal, "/health").await.unwrap();
    assert_eq!((status, body.trim()), (200, "ok"));
    for via in Via::BOTH {
        let (_viewer, seen) = relay.subscriber(via, "/").await;
        let mut consumer = wait_broadcast(&seen, "live")
            .await
            .subscribe_track(&Track::new("t"));
        assert_eq!(
            read_group(next_group(&mut consumer).await).await.unwrap(),
            vec![payload("live", 0, 0, 10)],
            "{via:?}"
        );
    }
    relay
        .wait_metrics("the bad session gone", |m| {
            m.value("moq_relay_sessions") == 1.0
        })
        .await;
}
