//! `/metrics`: the relay's counters and gauges, read at each scrape and encoded by
//! `prometheus-client` in the OpenMetrics text format (which Prometheus scrapes as it does its
//! own).
//!
//! Every family is written once, with HELP and TYPE, its samples together. Label values are
//! escaped by prometheus-client (since 0.25.2; a test below holds it to that). No label takes
//! values a client chooses without bound: the per-session families (`session`,
//! `root`) have one series per live session, at most `--max-sessions`, and
//! `moq_relay_viewers{broadcast}` lists only the [`VIEWER_SERIES`] broadcasts with the most
//! viewers (`moq_relay_viewers_unlisted` counts the rest).

use std::sync::Arc;

use moq_lite::Metric;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeMetric,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::relay::{QuicTotals, Relay};

/// The most broadcasts given a `moq_relay_viewers{broadcast}` series: those with the most viewers
/// (then by name). Broadcast names are the clients' to choose, so one series each would let a
/// publisher grow the scrape, and every time-series database behind it, without limit.
pub const VIEWER_SERIES: usize = 100;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The relay's metrics registry: one collector that reads the relay at each scrape.
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// Metrics of `relay`.
    pub fn new(relay: Arc<Relay>) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(RelayCollector(relay)));
        Self { registry }
    }

    /// The exposition text, ending with `# EOF`.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Reads the relay's state when scraped.
struct RelayCollector(Arc<Relay>);

impl std::fmt::Debug for RelayCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayCollector").finish_non_exhaustive()
    }
}

impl Collector for RelayCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let relay = &self.0;
        for metric in Metric::ALL {
            // Counters get their `_total` suffix from the encoder.
            let name = format!("moq_relay_{}", metric.name());
            let value = relay.stats.get(metric);
            match metric.is_gauge() {
                true => gauge(&mut encoder, &name, help(metric), saturate(value))?,
                false => counter(&mut encoder, &name, help(metric), value)?,
            }
        }
        viewers(&mut encoder, relay)?;
        gauge(
            &mut encoder,
            "moq_relay_connections",
            "connections holding a --max-sessions slot: in their set-up (QUIC handshake, \
             CONNECT, SETUP) or in session",
            saturate(relay.connection_count() as u64),
        )?;

        links(&mut encoder, relay)?;

        let live = relay.live();
        let mut per_worker = vec![0u64; relay.workers.max(1)];
        for (_, session) in &live {
            if let Some(count) = per_worker.get_mut(session.worker) {
                *count += 1;
            }
        }
        let mut family = encoder.encode_descriptor(
            "moq_relay_transport_sessions",
            "live sessions by what carries them: quic (raw QUIC), webtransport, websocket \
             (QMux on the HTTP listener), tcp (QMux on --tcp-listen)",
            None,
            MetricType::Gauge,
        )?;
        for kind in moq_io::Kind::ALL {
            if kind == moq_io::Kind::Memory {
                continue;
            }
            let count = live
                .iter()
                .filter(|(_, s)| s.session.transport_kind() == kind)
                .count();
            let labels = [("transport", kind.as_str())];
            ConstGauge::new(saturate(count as u64)).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "moq_relay_transport_sessions_accepted",
            "sessions accepted since start, by transport (see moq_relay_transport_sessions)",
            None,
            MetricType::Counter,
        )?;
        for kind in moq_io::Kind::ALL {
            if kind == moq_io::Kind::Memory {
                continue;
            }
            let labels = [("transport", kind.as_str())];
            ConstCounter::new(relay.accepted(kind)).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "moq_relay_worker_sessions",
            "live sessions on each server worker (--server-workers)",
            None,
            MetricType::Gauge,
        )?;
        for (worker, count) in per_worker.iter().enumerate() {
            let labels = [("worker", worker as u64)];
            ConstGauge::new(saturate(*count)).encode(family.encode_family(&labels)?)?;
        }

        quic(&mut encoder, &relay.quic_totals())?;

        // Per session: bounded by --max-sessions. `root` is the session's URL path, escaped.
        let mut family = encoder.encode_descriptor(
            "moq_relay_session_rtt_seconds",
            "the session's smoothed round-trip time (QUIC's, or QMux's QX_PING estimate; 0 when unknown)",
            None,
            MetricType::Gauge,
        )?;
        for (id, session) in &live {
            let labels = session_labels(*id, session.root.as_str());
            let rtt = session.session.transport_stats().rtt.unwrap_or_default();
            let rtt = rtt.as_secs_f64();
            ConstGauge::new(rtt).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "moq_relay_session_queued_bytes",
            "bytes held for one viewer and not yet handed to QUIC",
            None,
            MetricType::Gauge,
        )?;
        for (id, session) in &live {
            let labels = session_labels(*id, session.root.as_str());
            let queued = saturate(session.session.queued_bytes());
            ConstGauge::new(queued).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "moq_relay_session_bytes_out",
            "payload bytes sent to one session",
            None,
            MetricType::Counter,
        )?;
        for (id, session) in &live {
            let labels = session_labels(*id, session.root.as_str());
            let sent = session.session.stats().get(Metric::BytesOut);
            ConstCounter::new(sent).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// `moq_relay_viewers{broadcast}` for the [`VIEWER_SERIES`] most viewed broadcasts, and the
/// viewers of the others in one unlabelled gauge.
fn viewers(encoder: &mut DescriptorEncoder, relay: &Relay) -> std::fmt::Result {
    let viewers = Viewers::new(relay.stats.viewers());
    let help = format!(
        "viewers (subscriptions served) per broadcast, for the {VIEWER_SERIES} broadcasts with \
         the most"
    );
    let mut family =
        encoder.encode_descriptor("moq_relay_viewers", &help, None, MetricType::Gauge)?;
    for (broadcast, count) in &viewers.listed {
        let labels = [("broadcast", broadcast.as_str())];
        ConstGauge::new(saturate(*count)).encode(family.encode_family(&labels)?)?;
    }
    let help = format!(
        "viewers of the broadcasts past the {VIEWER_SERIES} with a moq_relay_viewers series"
    );
    gauge(
        encoder,
        "moq_relay_viewers_unlisted",
        &help,
        saturate(viewers.unlisted),
    )?;
    gauge(
        encoder,
        "moq_relay_viewed_broadcasts",
        "broadcasts with at least one viewer",
        saturate(viewers.broadcasts as u64),
    )
}

/// Viewers per broadcast, cut to the [`VIEWER_SERIES`] most viewed.
#[derive(Debug, PartialEq)]
struct Viewers {
    /// The most viewed broadcasts and their viewers, most first (then by name).
    listed: Vec<(String, u64)>,
    /// Viewers of the other broadcasts.
    unlisted: u64,
    /// Broadcasts with viewers, listed or not.
    broadcasts: usize,
}

impl Viewers {
    fn new(all: impl IntoIterator<Item = (String, u64)>) -> Self {
        let mut listed: Vec<(String, u64)> = all.into_iter().collect();
        let broadcasts = listed.len();
        listed.sort_by(|(a, x), (b, y)| y.cmp(x).then_with(|| a.cmp(b)));
        let rest = listed.split_off(listed.len().min(VIEWER_SERIES));
        Self {
            listed,
            unlisted: rest.iter().map(|(_, n)| n).sum(),
            broadcasts,
        }
    }
}

/// The QUIC counters summed over every accepted session since start.
fn quic(encoder: &mut DescriptorEncoder, quic: &QuicTotals) -> std::fmt::Result {
    for (name, help, value) in [
        (
            "udp_datagrams_sent",
            "UDP datagrams sent",
            quic.udp_datagrams_sent,
        ),
        (
            "udp_sends",
            "UDP send calls (one GSO call carries several datagrams)",
            quic.udp_sends,
        ),
        (
            "udp_bytes_sent",
            "UDP payload bytes sent",
            quic.udp_bytes_sent,
        ),
        (
            "udp_datagrams_received",
            "UDP datagrams received",
            quic.udp_datagrams_received,
        ),
        (
            "udp_bytes_received",
            "UDP payload bytes received",
            quic.udp_bytes_received,
        ),
        ("packets_sent", "QUIC packets sent", quic.packets_sent),
        (
            "packets_lost",
            "QUIC packets declared lost",
            quic.packets_lost,
        ),
        (
            "bytes_lost",
            "bytes in QUIC packets declared lost",
            quic.bytes_lost,
        ),
        (
            "congestion_events",
            "congestion window reductions",
            quic.congestion_events,
        ),
        ("acks_received", "ACK frames received", quic.acks_received),
        ("acks_sent", "ACK frames sent", quic.acks_sent),
        (
            "stream_frames_sent",
            "STREAM frames sent",
            quic.stream_frames_sent,
        ),
        (
            "credit_frames_received",
            "flow-control credit frames received (MAX_DATA, MAX_STREAM_DATA, MAX_STREAMS)",
            quic.credit_frames_received,
        ),
    ] {
        let name = format!("moq_relay_quic_{name}");
        let help = format!("{help}, all accepted sessions since start");
        counter(encoder, &name, &help, value)?;
    }
    Ok(())
}

/// The HELP text of a session metric.
fn help(metric: Metric) -> &'static str {
    match metric {
        Metric::Sessions => "sessions running",
        Metric::SubscriptionsServed => "subscriptions served to viewers",
        Metric::SubscriptionsUpstream => {
            "subscriptions the relay holds on publishers (one per track, however many viewers)"
        }
        Metric::Announcements => "broadcasts announced to the relay and live",
        Metric::BytesOut => "payload bytes sent in group streams",
        Metric::FramesOut => "frames sent",
        Metric::GroupsOut => "group streams opened towards viewers",
        Metric::BytesIn => "payload bytes received in group streams",
        Metric::FramesIn => "frames received",
        Metric::GroupsIn => "group streams received",
        Metric::GroupsDropped => "group streams reset because a viewer fell too far behind",
        Metric::AnnounceMessagesIn => {
            "ANNOUNCE messages received from peers (publishers and cluster links)"
        }
    }
}

/// The cluster links: how many are in each state, then one series per link. The links are the
/// operator's --cluster-connect list, one per address of a host name (at most
/// [`crate::cluster::MAX_ADDRESSES`] per name), so the `peer` and `address` labels stay few.
fn links(encoder: &mut DescriptorEncoder, relay: &Relay) -> std::fmt::Result {
    let links = relay.link_views();
    let mut family = encoder.encode_descriptor(
        "moq_relay_cluster_links",
        "cluster links (--cluster-connect) by state: connecting, up, down (waiting to redial), \
         self (the peer is this relay)",
        None,
        MetricType::Gauge,
    )?;
    for state in ["connecting", "up", "down", "self"] {
        let count = links.values().filter(|l| l.state == state).count() as u64;
        let labels = [("state", state)];
        ConstGauge::new(saturate(count)).encode(family.encode_family(&labels)?)?;
    }
    // A relay without links writes no per-link family: an empty family is legal OpenMetrics,
    // but strict parsers (the tests' openmetrics-parser) mistake the next one for its samples.
    if links.is_empty() {
        return Ok(());
    }
    let labels = |link: &crate::relay::LinkView| {
        [
            ("peer", link.peer.clone()),
            ("address", link.address.clone().unwrap_or_default()),
        ]
    };
    let mut family = encoder.encode_descriptor(
        "moq_relay_cluster_link_up",
        "1 while the cluster link has a session, else 0",
        None,
        MetricType::Gauge,
    )?;
    for link in links.values() {
        let up = i64::from(link.state == "up");
        ConstGauge::new(up).encode(family.encode_family(&labels(link))?)?;
    }
    // Only links that are up have a round-trip time (and the family is left out without one).
    if links.values().any(|link| link.rtt_ms.is_some()) {
        let mut family = encoder.encode_descriptor(
            "moq_relay_cluster_link_rtt_seconds",
            "the cluster link's QUIC smoothed round-trip time (links that are up)",
            None,
            MetricType::Gauge,
        )?;
        for link in links.values() {
            if let Some(rtt) = link.rtt_ms {
                ConstGauge::new(rtt / 1e3).encode(family.encode_family(&labels(link))?)?;
            }
        }
    }
    let mut family = encoder.encode_descriptor(
        "moq_relay_cluster_link_routes",
        "broadcasts the peer announces to this relay over the link",
        None,
        MetricType::Gauge,
    )?;
    for link in links.values() {
        ConstGauge::new(saturate(link.routes)).encode(family.encode_family(&labels(link))?)?;
    }
    let mut family = encoder.encode_descriptor(
        "moq_relay_cluster_link_upstream_subscriptions",
        "subscriptions this relay holds on the peer over the link (one per track)",
        None,
        MetricType::Gauge,
    )?;
    for link in links.values() {
        let value = saturate(link.upstream_subscriptions);
        ConstGauge::new(value).encode(family.encode_family(&labels(link))?)?;
    }
    let mut family = encoder.encode_descriptor(
        "moq_relay_cluster_link_announce_messages",
        "ANNOUNCE messages received over the cluster link (all its sessions); steady once the \
         cluster has converged, growing while a route flaps",
        None,
        MetricType::Counter,
    )?;
    for link in links.values() {
        let value = link.announce_messages;
        ConstCounter::new(value).encode(family.encode_family(&labels(link))?)?;
    }
    let mut family = encoder.encode_descriptor(
        "moq_relay_cluster_link_received_bytes",
        "UDP payload bytes received over the cluster link (all its sessions)",
        None,
        MetricType::Counter,
    )?;
    for link in links.values() {
        ConstCounter::new(link.bytes_in).encode(family.encode_family(&labels(link))?)?;
    }
    let mut family = encoder.encode_descriptor(
        "moq_relay_cluster_link_sent_bytes",
        "UDP payload bytes sent over the cluster link (all its sessions)",
        None,
        MetricType::Counter,
    )?;
    for link in links.values() {
        ConstCounter::new(link.bytes_out).encode(family.encode_family(&labels(link))?)?;
    }
    Ok(())
}

/// One unlabelled counter family.
fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: impl EncodeCounterValue,
) -> std::fmt::Result {
    let counter = ConstCounter::new(value);
    counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)
}

/// One unlabelled gauge family.
fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: impl EncodeGaugeValue,
) -> std::fmt::Result {
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

/// A gauge value: prometheus-client refuses a `u64` past `i64::MAX` (failing the whole scrape).
fn saturate(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The labels of a per-session series: `session` (its ID) and `root` (its URL path).
type SessionLabels<'a> = ([(&'static str, u64); 1], [(&'static str, &'a str); 1]);

/// The labels of the session `id` rooted at `root`.
fn session_labels(id: u64, root: &str) -> SessionLabels<'_> {
    ([("session", id)], [("root", root)])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A collector with label values that need escaping.
    #[derive(Debug)]
    struct Hostile;

    impl Collector for Hostile {
        fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
            let mut family =
                encoder.encode_descriptor("test_viewers", "test", None, MetricType::Gauge)?;
            for (n, name) in ["a\"b", "back\\slash", "line\nfeed", "plain"]
                .iter()
                .enumerate()
            {
                let labels = [("broadcast", *name)];
                ConstGauge::new(n as i64).encode(family.encode_family(&labels)?)?;
            }
            Ok(())
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Hostile));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(r#"test_viewers{broadcast="a\"b"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"test_viewers{broadcast="back\\slash"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"test_viewers{broadcast="line\nfeed"} 2"#),
            "{text}"
        );
        let parsed = openmetrics_parser::openmetrics::parse_openmetrics(&text)
            .unwrap_or_else(|err| panic!("{err:?}\n{text}"));
        assert_eq!(parsed.families["test_viewers"].iter_samples().count(), 4);
    }

    #[test]
    fn viewers_are_cut_to_the_most_viewed() {
        // Broadcast n has n viewers: 1..=150.
        let all = (1..=150u64).map(|n| (format!("b{n:03}"), n));
        let viewers = Viewers::new(all);
        assert_eq!(viewers.listed.len(), VIEWER_SERIES);
        assert_eq!(viewers.listed[0], ("b150".to_string(), 150));
        assert_eq!(viewers.listed[VIEWER_SERIES - 1], ("b051".to_string(), 51));
        assert_eq!(viewers.unlisted, (1..=50).sum::<u64>());
        assert_eq!(viewers.broadcasts, 150);
        // Ties by name; fewer than the cap are all listed.
        let few = Viewers::new([
            ("b".to_string(), 2),
            ("a".to_string(), 2),
            ("c".to_string(), 3),
        ]);
        let names: Vec<&str> = few.listed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["c", "a", "b"]);
        assert_eq!((few.unlisted, few.broadcasts), (0, 3));
    }
}
