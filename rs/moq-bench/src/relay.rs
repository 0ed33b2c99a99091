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
