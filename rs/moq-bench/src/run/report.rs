//! What a run prints: a line per second, and the summary (JSON and a table).

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::shared::{quantile, Shared, Totals};
use super::Load;
use crate::preset::Preset;
use crate::relay;

/// Microseconds since the Unix epoch, now (the send time frames carry).
pub(super) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// An optional figure with one decimal, `-` when absent.
pub(super) fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

/// The per-second reports.
pub(super) struct Report {
    probe: Option<relay::Probe>,
    churn: bool,
    /// Put before each line (see [`Load::label`]).
    tag: String,
    last: Instant,
    last_totals: Totals,
    last_cpu: Option<f64>,
    pub(super) rss_max: Option<f64>,
}

impl Report {
    pub(super) fn new(probe: Option<relay::Probe>, churn: bool, tag: String) -> Self {
        let last_cpu = probe
            .as_ref()
            .and_then(|p| p.sample().ok())
            .map(|s| s.cpu_seconds);
        Self {
            probe,
            churn,
            tag,
            last: Instant::now(),
            last_totals: Totals::default(),
            last_cpu,
            rss_max: None,
        }
    }

    /// Print this second's line on stderr and return it as JSON.
    pub(super) fn second(&mut self, shared: &Shared, start: Instant) -> Value {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        let t = shared.totals();
        let last = self.last_totals;
        let mbps = (t.bytes - last.bytes) as f64 * 8.0 / 1e6 / dt;
        let latency = shared.interval.snapshot(true);
        let (mut cpu_pct, mut rss_mb) = (None, None);
        if let Some(s) = self.probe.as_ref().and_then(|p| p.sample().ok()) {
            cpu_pct = self.last_cpu.map(|c| (s.cpu_seconds - c) / dt * 100.0);
            self.last_cpu = Some(s.cpu_seconds);
            rss_mb = Some(s.rss_mb);
            self.rss_max = Some(self.rss_max.map_or(s.rss_mb, |m| m.max(s.rss_mb)));
        }
        let relay = match (cpu_pct, rss_mb) {
            (Some(cpu), Some(rss)) => format!(" | relay cpu {cpu:.0}% rss {rss:.1} MB"),
            _ => String::new(),
        };
        let what = if self.churn { "announces" } else { "frames" };
        let elapsed = now.duration_since(start).as_secs_f64();
        eprintln!(
            "{}t={elapsed:>4.1}s {mbps:>8.1} Mbps | {what} +{} (missing {}) groups +{} (missing {}) | latency p50 {} p90 {} p99 {} max {} ms{relay}",
            self.tag,
            t.frames - last.frames,
            t.lost_frames,
            t.groups - last.groups,
            t.lost_groups,
            fmt_opt(latency.quantile_ms(0.5)),
            fmt_opt(latency.quantile_ms(0.9)),
            fmt_opt(latency.quantile_ms(0.99)),
            fmt_opt(latency.max_ms()),
        );
        self.last = now;
        self.last_totals = t;
        json!({
            "type": "tick",
            "elapsed_s": elapsed,
            "delivered_mbps": mbps,
            "frames_received": t.frames - last.frames,
            "groups_received": t.groups - last.groups,
            "frames_missing": t.lost_frames,
            "groups_missing": t.lost_groups,
            "frames_received_total": t.frames,
            "groups_received_total": t.groups,
            "latency_p50_ms": latency.quantile_ms(0.5),
            "latency_p90_ms": latency.quantile_ms(0.9),
            "latency_p99_ms": latency.quantile_ms(0.99),
            "latency_max_ms": latency.max_ms(),
            "relay_cpu_pct": cpu_pct,
            "relay_rss_mb": rss_mb,
        })
    }
}

/// What [`summary`] is made of.
pub(super) struct SummaryInput<'a> {
    pub(super) shared: &'a Shared,
    pub(super) preset: &'a Preset,
    pub(super) load: &'a Load,
    pub(super) subscribers: usize,
    pub(super) duration: f64,
    pub(super) failed: usize,
    pub(super) relay: Option<(relay::Sample, relay::Sample)>,
    pub(super) baseline_rss: Option<f64>,
    pub(super) rss_max: Option<f64>,
    pub(super) own_cpu: f64,
    /// The relay's QUIC rates (`--relay-metrics`), as summary keys.
    pub(super) quic: Vec<(&'static str, f64)>,
}

/// The prefix of this load's stderr lines: `[label] `, or nothing.
pub(super) fn tag(load: &Load) -> String {
    load.label
        .as_ref()
        .map(|label| format!("[{label}] "))
        .unwrap_or_default()
}

/// Milliseconds since the Unix epoch, now.
pub(super) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The end-of-run results as one JSON object.
pub(super) fn summary(i: SummaryInput<'_>) -> Value {
    let shared = i.shared;
    let t = shared.totals();
    let latency = shared.latency.snapshot(false);
    let setups = shared.setup_ms();
    let measuring = i.subscribers > 0;
    let expected = t.frames + t.lost_frames;
    let loss_pct = match (measuring, expected) {
        (false, _) => None,
        (true, 0) => Some(100.0),
        (true, e) => Some(t.lost_frames as f64 * 100.0 / e as f64),
    };
    let cpu = i.relay.map(|(a, b)| b.cpu_seconds - a.cpu_seconds);
    let rss = i.relay.map(|(_, b)| b.rss_mb);
    // CPU time is counted in clock ticks (10 ms): below one tick, ratios are meaningless.
    let per_cpu = |amount: f64| cpu.filter(|c| *c > 0.0).map(|c| amount / c);
    let delivered_bytes = t.bytes;
    let churn = i.preset.churn_only();
    let mut json = json!({
        "type": "summary",
        "role": i.load.role.name(),
        "preset": i.preset.name,
        "version": shared.version.get(),
        "subscribers": i.subscribers,
        "subscribers_failed": i.failed,
        "duration_s": i.duration,
        "offered_mbps_per_subscriber": i.preset.mbps(),
        "delivered_mbps": measuring.then(|| delivered_bytes as f64 * 8.0 / 1e6 / i.duration),
        "delivered_bytes": delivered_bytes,
        "frames_published": shared.publishing.then(|| shared.published.load(Relaxed)),
        "frames_received": t.frames,
        "frames_lost": t.lost_frames,
        "groups_received": t.groups,
        "groups_lost": t.lost_groups,
        "loss_pct": loss_pct,
        "latency_p50_ms": latency.quantile_ms(0.5),
        "latency_p90_ms": latency.quantile_ms(0.9),
        "latency_p99_ms": latency.quantile_ms(0.99),
        "latency_max_ms": latency.max_ms(),
        "setup_median_ms": quantile(&setups, 0.5),
        "setup_p50_ms": quantile(&setups, 0.5),
        "setup_p99_ms": quantile(&setups, 0.99),
        "relay_cpu_seconds": cpu,
        "relay_cpu_pct": cpu.map(|c| c / i.duration * 100.0),
        "relay_rss_mb": rss,
        "relay_rss_max_mb": i.rss_max.or(rss).zip(rss).map(|(a, b)| a.max(b)),
        "relay_rss_baseline_mb": i.baseline_rss,
        "relay_rss_per_subscriber_kb": rss.zip(i.baseline_rss)
            .filter(|_| i.subscribers > 0)
            .map(|(end, base)| (end - base) * 1024.0 / i.subscribers as f64),
        "delivered_bytes_per_relay_cpu_second": per_cpu(delivered_bytes as f64).filter(|_| measuring),
        "delivered_gbps_per_relay_core": per_cpu(delivered_bytes as f64 * 8.0 / 1e9).filter(|_| measuring),
        "messages_per_relay_cpu_second": per_cpu(t.frames as f64).filter(|_| measuring),
        "bench_cpu_pct": i.own_cpu / i.duration * 100.0,
    });
    let obj = json.as_object_mut().expect("an object");
    for (key, value) in &i.quic {
        obj.insert((*key).into(), json!(value));
    }
    if churn {
        // The same counts under their churn names: frames are announcements here, latency is
        // announce latency (start of the broadcast to its ANNOUNCE at a subscriber).
        let obj = json.as_object_mut().expect("an object");
        obj.insert(
            "announces_published".into(),
            obj["frames_published"].clone(),
        );
        obj.insert("announces_received".into(), json!(t.frames));
        obj.insert("announces_lost".into(), json!(t.lost_frames));
        obj.insert("unannounces_received".into(), json!(t.unannounces));
    }
    json
}

/// The summary as a table on stderr.
pub fn print_summary(j: &Value) {
    let f = |k: &str| j[k].as_f64().map_or("-".into(), |v| format!("{v:.2}"));
    let g = |k: &str| j[k].as_f64().map_or("-".into(), |v| format!("{v:.3e}"));
    let churn = j.get("announces_received").is_some();
    match j["label"].as_str() {
        Some(label) => eprintln!("── moq-bench summary: {label} ─────────────────────────────"),
        None => eprintln!("── moq-bench summary ──────────────────────────────"),
    }
    eprintln!(
        "preset {} · role {} · {} · {} subscribers ({} failed) · {} s",
        j["preset"].as_str().unwrap_or("?"),
        j["role"].as_str().unwrap_or("?"),
        j["version"].as_str().unwrap_or("version ?"),
        j["subscribers"],
        j["subscribers_failed"],
        f("duration_s")
    );
    eprintln!(
        "delivered      {} Mbps ({} Mbps offered per subscriber)",
        f("delivered_mbps"),
        f("offered_mbps_per_subscriber")
    );
    if churn {
        eprintln!(
            "announces      {} published, {} received, {} lost ({} %), {} ends seen",
            j["announces_published"],
            j["announces_received"],
            j["announces_lost"],
            f("loss_pct"),
            j["unannounces_received"]
        );
    } else {
        eprintln!(
            "frames         {} published, {} received, {} lost ({} %)",
            j["frames_published"],
            j["frames_received"],
            j["frames_lost"],
            f("loss_pct")
        );
        eprintln!(
            "groups         {} received, {} lost",
            j["groups_received"], j["groups_lost"]
        );
    }
    eprintln!(
        "latency ms     p50 {} · p90 {} · p99 {} · max {}{}",
        f("latency_p50_ms"),
        f("latency_p90_ms"),
        f("latency_p99_ms"),
        f("latency_max_ms"),
        if churn { " (announce)" } else { "" }
    );
    eprintln!(
        "session set-up p50 {} · p99 {} ms",
        f("setup_p50_ms"),
        f("setup_p99_ms")
    );
    eprintln!(
        "relay          {} CPU s ({} % of a core) · RSS {} MB (max {}, {} before the run, {} KB per subscriber)",
        f("relay_cpu_seconds"),
        f("relay_cpu_pct"),
        f("relay_rss_mb"),
        f("relay_rss_max_mb"),
        f("relay_rss_baseline_mb"),
        f("relay_rss_per_subscriber_kb"),
    );
    eprintln!(
        "per relay CPU-second: {} bytes · {} Gbps per core · {} messages",
        g("delivered_bytes_per_relay_cpu_second"),
        f("delivered_gbps_per_relay_core"),
        g("messages_per_relay_cpu_second"),
    );
    if j.get("relay_udp_sends_per_s").is_some() {
        eprintln!(
            "relay QUIC /s  {} datagrams in {} sends ({} per send, {} bytes each; {} STREAM and {} ACK frames) · {} received ({} ACKs, {} credit frames) · {} lost · {} congestion events",
            f("relay_udp_datagrams_sent_per_s"),
            f("relay_udp_sends_per_s"),
            f("relay_datagrams_per_send"),
            f("relay_bytes_per_datagram"),
            f("relay_stream_frames_sent_per_s"),
            f("relay_acks_sent_per_s"),
            f("relay_udp_datagrams_received_per_s"),
            f("relay_acks_received_per_s"),
            f("relay_credit_frames_received_per_s"),
            f("relay_packets_lost_per_s"),
            f("relay_congestion_events_per_s"),
        );
    }
    eprintln!(
        "moq-bench      {} % of a core (near 100 × cores: latency measures this process)",
        f("bench_cpu_pct")
    );
    if j.get("machine_mem_latency_ns").is_some() {
        eprintln!(
            "machine        {} ns per dependent memory load over 8 MiB (--memory-probe)",
            f("machine_mem_latency_ns")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_sorted_values() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.99), Some(99.0));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
