//! `/metrics` is OpenMetrics text that a strict parser accepts: each family once, with HELP and
//! TYPE, label values escaped, and every series the relay's tests, moq-bench and the docs read.

mod common;

use common::*;
use moq_lite::{Client, OriginProducer, Track};
use openmetrics_parser::OpenMetricsType;

/// Every family the relay exports: (name in `# TYPE`, counter?). A counter's samples add `_total`.
const FAMILIES: &[(&str, bool)] = &[
    ("moq_relay_sessions", false),
    ("moq_relay_subscriptions_served", false),
    ("moq_relay_subscriptions_upstream", false),
    ("moq_relay_announcements", false),
    ("moq_relay_bytes_out", true),
    ("moq_relay_frames_out", true),
    ("moq_relay_groups_out", true),
    ("moq_relay_bytes_in", true),
    ("moq_relay_frames_in", true),
    ("moq_relay_groups_in", true),
    ("moq_relay_groups_dropped", true),
    ("moq_relay_announce_messages_in", true),
    ("moq_relay_viewers", false),
    ("moq_relay_viewers_unlisted", false),
    ("moq_relay_viewed_broadcasts", false),
    ("moq_relay_connections", false),
    ("moq_relay_cluster_links", false),
    ("moq_relay_worker_sessions", false),
    ("moq_relay_transport_sessions", false),
    ("moq_relay_transport_sessions_accepted", true),
    ("moq_relay_quic_udp_datagrams_sent", true),
    ("moq_relay_quic_udp_sends", true),
    ("moq_relay_quic_udp_bytes_sent", true),
    ("moq_relay_quic_udp_datagrams_received", true),
    ("moq_relay_quic_udp_bytes_received", true),
    ("moq_relay_quic_packets_sent", true),
    ("moq_relay_quic_packets_lost", true),
    ("moq_relay_quic_bytes_lost", true),
    ("moq_relay_quic_congestion_events", true),
    ("moq_relay_quic_acks_received", true),
    ("moq_relay_quic_acks_sent", true),
    ("moq_relay_quic_stream_frames_sent", true),
    ("moq_relay_quic_credit_frames_received", true),
    ("moq_relay_session_rtt_seconds", false),
    ("moq_relay_session_queued_bytes", false),
    ("moq_relay_session_bytes_out", true),
];

/// The sample names the relay exported before it used prometheus-client, which its tests,
/// moq-bench (src/relay.rs), hang-cli's tests and docs/relay.md read.
const SAMPLES: &[&str] = &[
    "moq_relay_sessions",
    "moq_relay_subscriptions_served",
    "moq_relay_subscriptions_upstream",
    "moq_relay_announcements",
    "moq_relay_bytes_out_total",
    "moq_relay_frames_out_total",
    "moq_relay_groups_out_total",
    "moq_relay_bytes_in_total",
    "moq_relay_frames_in_total",
    "moq_relay_groups_in_total",
    "moq_relay_groups_dropped_total",
    "moq_relay_viewers",
    "moq_relay_connections",
    "moq_relay_worker_sessions",
    "moq_relay_transport_sessions",
    "moq_relay_transport_sessions_accepted_total",
    "moq_relay_quic_udp_datagrams_sent_total",
    "moq_relay_quic_udp_sends_total",
    "moq_relay_quic_udp_bytes_sent_total",
    "moq_relay_quic_udp_datagrams_received_total",
    "moq_relay_quic_udp_bytes_received_total",
    "moq_relay_quic_packets_sent_total",
    "moq_relay_quic_packets_lost_total",
    "moq_relay_quic_bytes_lost_total",
    "moq_relay_quic_congestion_events_total",
    "moq_relay_quic_acks_received_total",
    "moq_relay_quic_acks_sent_total",
    "moq_relay_quic_stream_frames_sent_total",
    "moq_relay_quic_credit_frames_received_total",
    "moq_relay_session_rtt_seconds",
    "moq_relay_session_queued_bytes",
    "moq_relay_session_bytes_out_total",
];

#[tokio::test]
async fn metrics_are_openmetrics_with_each_family_once() {
    let relay = Relay::open().await;
    let (origin, broadcast) = origin_with("live/cam");
    let track = patient_video_track(&broadcast);
    let _publisher = relay.publisher(Via::WebTransport, "/", &origin).await;
    let (_viewer, viewer_origin) = relay.subscriber(Via::Quic, "/").await;
    let mut video = wait_broadcast(&viewer_origin, "live/cam")
        .await
        .subscribe_track(&Track::new("video"));
    // A session whose root needs escaping in a label value: `q"u\ote`.
    let _odd = relay
        .try_connect_setup_path(
            "/q%22u%5Cote",
            Client::new().subscribe(OriginProducer::new()),
        )
        .await
        .expect("a session rooted at q\"u\\ote");
    // The client's connect returns once its SETUP is sent: wait for the relay to have all three.
    relay
        .wait_metrics("the viewer and all three sessions", |m| {
            m.get("moq_relay_viewers", &[("broadcast", "live/cam")]) == Some(1.0)
                && m.sessions().len() == 3
        })
        .await;
    let mut group = track.append_group().unwrap();
    group.write_frame(0, payload("m", 0, 0, 100)).unwrap();
    group.finish();
    assert_eq!(
        read_group(next_group(&mut video).await)
            .await
            .unwrap()
            .len(),
        1
    );

    let (status, head, text) = http_get_with_head(relay.internal, "/metrics")
        .await
        .unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(
        head.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    let exposition = openmetrics_parser::openmetrics::parse_openmetrics(&text)
        .unwrap_or_else(|err| panic!("not OpenMetrics text: {err:?}\n{text}"));

    for (name, counter) in FAMILIES {
        let family = exposition
            .families
            .get(*name)
            .unwrap_or_else(|| panic!("no family {name}\n{text}"));
        assert!(!family.help.is_empty(), "{name} has no HELP");
        let want = match counter {
            true => OpenMetricsType::Counter,
            false => OpenMetricsType::Gauge,
        };
        assert_eq!(family.family_type, want, "{name}");
        for kind in ["HELP", "TYPE"] {
            let line = format!("# {kind} {name} ");
            let count = text.lines().filter(|l| l.starts_with(&line)).count();
            assert_eq!(count, 1, "{line:?} {count} times\n{text}");
        }
    }
    let listed: Vec<&str> = FAMILIES.iter().map(|(name, _)| *name).collect();
    for name in exposition.families.keys() {
        assert!(listed.contains(&name.as_str()), "{name} is not in FAMILIES");
    }

    let metrics = relay.metrics().await;
    for name in SAMPLES {
        assert!(
            metrics.all(name).next().is_some(),
            "no {name} sample\n{}",
            metrics.text
        );
    }
    assert!(metrics.value("moq_relay_frames_out_total") >= 1.0);
    assert_eq!(metrics.value("moq_relay_viewed_broadcasts"), 1.0);
    assert_eq!(metrics.value("moq_relay_viewers_unlisted"), 0.0);
    assert_eq!(metrics.sessions().len(), 3, "{}", metrics.text);
    assert!(
        text.contains(r#"root="q\"u\\ote""#),
        "the odd root, escaped\n{text}"
    );
}
