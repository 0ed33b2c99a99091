//! Sampling a relay process's CPU time and memory from `/proc/PID` (Linux).

use anyhow::Context;

/// One reading of a process's counters.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// User + system CPU seconds consumed so far.
    pub cpu_seconds: f64,
    /// Resident set size in MB (VmRSS / 1024).
    pub rss_mb: f64,
}

/// Reads `/proc/PID/stat` and `/proc/PID/status`.
#[derive(Clone, Debug)]
pub struct Probe {
    pid: u32,
    ticks_per_second: f64,
}

impl Probe {
    /// A probe for `pid`; fails when the process cannot be read now.
    ///
    /// Clock ticks per second come from `getconf CLK_TCK` (this crate does not link libc to
    /// call `sysconf(_SC_CLK_TCK)`), falling back to 100, the value on every mainstream Linux.
    pub fn new(pid: u32) -> anyhow::Result<Self> {
        let ticks_per_second = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0);
        let probe = Self {
            pid,
            ticks_per_second,
        };
        probe.sample()?;
        Ok(probe)
    }

    /// Read the counters now.
    pub fn sample(&self) -> anyhow::Result<Sample> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .with_context(|| format!("cannot read /proc/{}/stat", self.pid))?;
        // The command name (field 2) may contain spaces and parentheses: fields after it are
        // counted from its last ')'. utime and stime are fields 14 and 15.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .context("malformed /proc/PID/stat")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| -> anyhow::Result<f64> {
            Ok(fields
                .get(i)
                .context("short /proc/PID/stat")?
                .parse::<u64>()? as f64)
        };
        // `rest` starts at field 3 (state), so field 14 is index 11.
        let cpu_seconds = (ticks(11)? + ticks(12)?) / self.ticks_per_second;

        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .with_context(|| format!("cannot read /proc/{}/status", self.pid))?;
        let rss_kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .context("no VmRSS in /proc/PID/status")?;
        Ok(Sample {
            cpu_seconds,
            rss_mb: rss_kb as f64 / 1024.0,
        })
    }
}

/// The relay's QUIC counters, scraped from its Prometheus `/metrics` (our relay's
/// `moq_relay_quic_*_total`; another relay has none, and every rate is then absent).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuicCounters(std::collections::BTreeMap<String, f64>);

/// Largest `/metrics` response accepted (a relay with very many sessions lists each: generous,
/// but bounded).
const MAX_METRICS_BYTES: usize = 64 << 20;

/// Time allowed for one scrape of `/metrics`.
const SCRAPE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The counters [`QuicCounters::rates`] reports, as `(metric suffix, JSON key)`.
const QUIC_RATES: [(&str, &str); 11] = [
    ("udp_datagrams_sent", "relay_udp_datagrams_sent_per_s"),
    ("udp_sends", "relay_udp_sends_per_s"),
    ("udp_bytes_sent", "relay_udp_bytes_sent_per_s"),
    (
        "udp_datagrams_received",
        "relay_udp_datagrams_received_per_s",
    ),
    ("packets_lost", "relay_packets_lost_per_s"),
    ("congestion_events", "relay_congestion_events_per_s"),
    ("acks_received", "relay_acks_received_per_s"),
    ("packets_sent", "relay_packets_sent_per_s"),
    ("acks_sent", "relay_acks_sent_per_s"),
    ("stream_frames_sent", "relay_stream_frames_sent_per_s"),
    (
        "credit_frames_received",
        "relay_credit_frames_received_per_s",
    ),
];

impl QuicCounters {
    /// The unlabelled `moq_relay_quic_<name>_total` samples of a Prometheus text body.
    pub fn parse(text: &str) -> Self {
        let map = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (name, value) = l.split_once(' ')?;
                let name = name
                    .strip_prefix("moq_relay_quic_")?
                    .strip_suffix("_total")?;
                Some((name.to_string(), value.trim().parse().ok()?))
            })
            .collect();
        Self(map)
    }

    /// Fetch and parse `url` (plain `http://host:port/path`: the relay's internal listener).
    pub async fn scrape(url: &url::Url) -> anyhow::Result<Self> {
        anyhow::ensure!(
            url.scheme() == "http",
            "--relay-metrics needs an http:// URL"
        );
        let body = moq_native::http_get(url.as_str(), MAX_METRICS_BYTES, SCRAPE_TIMEOUT).await?;
        Ok(Self::parse(&String::from_utf8_lossy(&body)))
    }

    /// Per-second rates from `self` (start) to `end` over `seconds`, as JSON keys, plus the
    /// mean datagrams per UDP send (the GSO batch) and bytes per datagram; empty when the
    /// relay exposes no QUIC counters.
    pub fn rates(&self, end: &Self, seconds: f64) -> Vec<(&'static str, f64)> {
        let delta = |name: &str| Some(end.0.get(name)? - self.0.get(name)?);
        let mut out: Vec<(&'static str, f64)> = QUIC_RATES
            .iter()
            .filter_map(|(name, key)| Some((*key, delta(name)? / seconds)))
            .collect();
        if let (Some(datagrams), Some(sends), Some(bytes)) = (
            delta("udp_datagrams_sent"),
            delta("udp_sends"),
            delta("udp_bytes_sent"),
        ) {
            if sends > 0.0 && datagrams > 0.0 {
                out.push(("relay_datagrams_per_send", datagrams / sends));
                out.push(("relay_bytes_per_datagram", bytes / datagrams));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quic_counters_parse_and_rate() {
        let start = QuicCounters::parse(
            "# HELP moq_relay_quic_udp_sends_total UDP send calls\n\
             # TYPE moq_relay_quic_udp_sends_total counter\n\
             moq_relay_quic_udp_sends_total 100\n\
             moq_relay_quic_udp_datagrams_sent_total 800\n\
             moq_relay_quic_udp_bytes_sent_total 1000000\n\
             moq_relay_frames_out_total 5\n\
             moq_relay_session_rtt_seconds{session=\"1\",root=\"\"} 0.001\n",
        );
        let end = QuicCounters::parse(
            "moq_relay_quic_udp_sends_total 300\n\
             moq_relay_quic_udp_datagrams_sent_total 2400\n\
             moq_relay_quic_udp_bytes_sent_total 3400000\n",
        );
        let rates: std::collections::BTreeMap<_, _> = start.rates(&end, 2.0).into_iter().collect();
        assert_eq!(rates["relay_udp_sends_per_s"], 100.0);
        assert_eq!(rates["relay_udp_datagrams_sent_per_s"], 800.0);
        assert_eq!(rates["relay_datagrams_per_send"], 8.0);
        assert_eq!(rates["relay_bytes_per_datagram"], 1500.0);
        assert!(
            !rates.contains_key("relay_packets_lost_per_s"),
            "absent counters stay absent"
        );
        assert!(QuicCounters::parse("moq_relay_frames_out_total 5\n")
            .rates(&QuicCounters::default(), 1.0)
            .is_empty());
    }
}
