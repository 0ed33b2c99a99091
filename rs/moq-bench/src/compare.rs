//! `moq-bench compare`: start relay A, load it, stop it; the same for B; repeat; ratios. With
//! `--at-once`, both relays run and are loaded at the same time in each round.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Map, Value};
use url::Url;

use crate::preset::Preset;
use crate::run::{self, Load};

/// Compare two relays under the same load: for each round, start relay A (a shell command),
/// wait until it accepts sessions, run the load against it with its PID sampled, stop it
/// (SIGTERM, then SIGKILL after 5 s); then the same for B. Prints per-round values, medians
/// and the ratios B/A and A/B.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// Relay A: a shell command (`sh -c`) starting a relay that listens on UDP port `{port}`
    /// with a self-signed certificate (and, for http:// URLs, serves its fingerprint on TCP
    /// `{port}`). Start it with `exec` so the shell's PID is the relay's (otherwise the
    /// single child of the shell is sampled). A relay that can report the ports it bound (ours:
    /// `--port-file {port_file}`) is better started on port 0: with `{port_file}` in the
    /// command, `{port}` becomes 0, the load connects to the reported `quic` port, and an
    /// http:// URL template becomes https:// with the fingerprint fetched from the reported
    /// `http` listener; no other process can take the relay's port between choice and bind.
    #[arg(long, value_name = "CMD")]
    pub a: String,

    /// Relay B: like --a.
    #[arg(long, value_name = "CMD")]
    pub b: String,

    /// Rounds: A then B in each.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,

    /// The load's URL, `{port}` replaced by the relay's port: e.g. `moql://localhost:{port}/anon`
    /// (raw QUIC; add --tls-disable-verify).
    #[arg(long, default_value = "http://127.0.0.1:{port}/anon")]
    pub url_template: String,

    /// Seconds to wait for a relay to accept sessions.
    #[arg(long, default_value_t = 15.0)]
    pub start_timeout: f64,

    /// Seconds to rest between runs.
    #[arg(long, default_value_t = 1.0)]
    pub pause: f64,

    /// Run A and B at the same time in each round, each under its own copy of the load (one
    /// publisher and N subscribers each), instead of one after the other. Pin both relays to the
    /// same core (`taskset -c 0 …` in both commands) and the load to another: the two relays then
    /// share that core's time and caches, so whatever else the host does to the machine (a
    /// neighbour taking the shared cache, frequency changes) costs both the same, and the ratio of
    /// their CPU per delivered byte holds from run to run where alternate runs scatter. Each relay
    /// gets at most about half a core and the load generator carries twice the load: choose N so
    /// that neither saturates (no loss). Odd rounds start A first, even rounds B, so that an
    /// order effect cannot favour one side: use an even number of rounds.
    #[arg(long)]
    pub at_once: bool,

    /// Directory for the relays' stdout/stderr (`<round>-<a|b>.log`) [default: discarded].
    #[arg(long, value_name = "DIR")]
    pub relay_log: Option<PathBuf>,

    #[command(flatten)]
    pub load: Load,

    #[command(flatten)]
    pub log: moq_native::Log,
}

/// Summary fields compared, and whether higher is better (for the table's "better" column).
const METRICS: &[(&str, bool)] = &[
    ("delivered_bytes_per_relay_cpu_second", true),
    ("delivered_gbps_per_relay_core", true),
    ("messages_per_relay_cpu_second", true),
    ("delivered_mbps", true),
    ("relay_cpu_pct", false),
    ("relay_rss_mb", false),
    ("relay_rss_per_subscriber_kb", false),
    ("latency_p50_ms", false),
    ("latency_p99_ms", false),
    ("loss_pct", false),
    ("setup_p50_ms", false),
];

/// Run the comparison and print it (table, or one JSON object with --json).
pub async fn compare(args: &CompareArgs, preset: &Preset) -> anyhow::Result<()> {
    anyhow::ensure!(args.rounds >= 1, "--rounds must be at least 1");
    if args.load.url.is_some() || args.load.relay_pid.is_some() {
        tracing::warn!("compare ignores --url and --relay-pid (see --url-template)");
    }
    if let Some(dir) = &args.relay_log {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut runs: [Vec<Value>; 2] = [Vec::new(), Vec::new()];
    for round in 1..=args.rounds {
        if args.at_once {
            eprintln!(
                "══ round {round}/{} · A and B at once ══\n  A: {}\n  B: {}",
                args.rounds, args.a, args.b
            );
            let [a, b] = run_both(args, preset, round).await?;
            runs[0].push(a);
            runs[1].push(b);
            tokio::time::sleep(Duration::from_secs_f64(args.pause.max(0.0))).await;
            continue;
        }
        for (side, cmd) in [(0, &args.a), (1, &args.b)] {
            let label = ["a", "b"][side];
            eprintln!(
                "══ round {round}/{} · {} ══ {cmd}",
                args.rounds,
                label.to_uppercase()
            );
            let log = args
                .relay_log
                .as_ref()
                .map(|dir| dir.join(format!("{round}-{label}.log")));
            let summary = run_one(args, preset, cmd, log.as_deref()).await?;
            runs[side].push(summary);
            tokio::time::sleep(Duration::from_secs_f64(args.pause.max(0.0))).await;
        }
    }

    let result = report(args, preset, &runs);
    if args.load.json {
        eprint!("{}", table(&result));
        println!("{result}");
    } else {
        print!("{}", table(&result));
    }
    Ok(())
}

/// Start both relays, load both at the same time (each with its own publisher and subscribers),
/// stop both. Odd rounds start A first, even rounds B (its relay started, its load's sessions and
/// publisher set up and polled first): one run of 5 rounds with A always first measured the same
/// relay 3–6 % cheaper as A in every round; alternating keeps such an order effect out of an
/// even number of rounds.
async fn run_both(args: &CompareArgs, preset: &Preset, round: usize) -> anyhow::Result<[Value; 2]> {
    let cmds = [&args.a, &args.b];
    let order = match round % 2 {
        1 => [0, 1],
        _ => [1, 0],
    };
    let mut started = Vec::with_capacity(2);
    for side in order {
        let label = ["a", "b"][side];
        let log = args
            .relay_log
            .as_ref()
            .map(|dir| dir.join(format!("{round}-{label}.log")));
        started.push((side, start(args, cmds[side], log.as_deref()).await?));
    }
    // A's first, then B's, whichever started first.
    started.sort_by_key(|(side, _)| *side);
    let started: Vec<(RelayProcess, Target)> =
        started.into_iter().map(|(_, relay)| relay).collect();
    let loads: Vec<Load> = started
        .iter()
        .enumerate()
        .map(|(side, (relay, target))| {
            let mut load = target.load(&args.load);
            load.relay_pid = Some(relay.relay_pid());
            load.label = Some(["A", "B"][side].to_string());
            // Distinct broadcast names, in case both commands are one relay cluster.
            load.broadcast = Some(format!(
                "{}-{}",
                args.load
                    .broadcast
                    .clone()
                    .unwrap_or_else(|| format!("bench-{}", std::process::id())),
                ["a", "b"][side]
            ));
            eprintln!(
                "{}: relay pid {} on port {}, load {}",
                ["A", "B"][side],
                relay.relay_pid(),
                target.port,
                target.url
            );
            load
        })
        .collect();
    let (first, second) = tokio::join!(
        run::run(&loads[order[0]], preset, false),
        run::run(&loads[order[1]], preset, false)
    );
    let mut results = [None, None];
    results[order[0]] = Some(first);
    results[order[1]] = Some(second);
    let mut out = Vec::new();
    for (side, (relay, target)) in started.into_iter().enumerate() {
        let result = results[side].take().expect("a result per side");
        let mut summary = finish(relay, cmds[side], target.port, result)?;
        summary["at_once"] = json!(true);
        summary["at_once_first"] = json!(order[0] == side);
        out.push(summary);
    }
    let [a, b]: [Value; 2] = out.try_into().expect("two runs");
    Ok([a, b])
}

/// Where the load finds a started relay.
struct Target {
    url: Url,
    /// The relay's QUIC port.
    port: u16,
    /// The relay's certificate, when fetched for it (a relay on reported ports).
    fingerprint: Option<String>,
}

impl Target {
    /// `load` aimed at this relay.
    fn load(&self, load: &Load) -> Load {
        let mut load = load.clone();
        load.url = Some(self.url.clone());
        if let Some(fingerprint) = &self.fingerprint {
            load.client.fingerprints = vec![fingerprint.clone()];
        }
        load
    }
}

/// Start a relay and wait until it accepts sessions: the relay and where the load finds it.
async fn start(
    args: &CompareArgs,
    cmd: &str,
    log: Option<&Path>,
) -> anyhow::Result<(RelayProcess, Target)> {
    if cmd.contains("{port_file}") {
        return start_reported(args, cmd, log).await;
    }
    // A relay that exits right after starting lost its port to another process meanwhile:
    // try another port.
    for attempt in 1..=3 {
        let port = free_port()?;
        let url: Url = args
            .url_template
            .replace("{port}", &port.to_string())
            .parse()
            .context("invalid --url-template")?;
        let mut relay = RelayProcess::spawn(cmd, port, log)?;
        let timeout = Duration::from_secs_f64(args.start_timeout);
        relay.wait_ready(&args.load, &url, timeout).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(status) = relay.child.try_wait()? {
            tracing::warn!(%status, port, attempt, "the relay exited at start; another port");
            continue;
        }
        let target = Target {
            url,
            port,
            fingerprint: None,
        };
        return Ok((relay, target));
    }
    anyhow::bail!("`{cmd}` exited at start three times")
}

/// Start a relay that binds port 0 and writes the addresses it got to `{port_file}` (JSON, one
/// address per listener: `{"quic":"127.0.0.1:43121","http":"127.0.0.1:43122"}`).
async fn start_reported(
    args: &CompareArgs,
    cmd: &str,
    log: Option<&Path>,
) -> anyhow::Result<(RelayProcess, Target)> {
    static STARTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let port_file =
        std::env::temp_dir().join(format!("moq-bench-{}-{n}.ports.json", std::process::id()));
    let _ = std::fs::remove_file(&port_file);
    let filled = cmd.replace(
        "{port_file}",
        port_file.to_str().context("a UTF-8 temporary directory")?,
    );
    let mut relay = RelayProcess::spawn(&filled, 0, log)?;
    let timeout = Duration::from_secs_f64(args.start_timeout);
    let ports = relay.wait_port_file(&port_file, timeout).await;
    let _ = std::fs::remove_file(&port_file);
    let ports = ports?;
    let listener = |name: &str| -> anyhow::Result<std::net::SocketAddr> {
        ports[name]
            .as_str()
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("no {name:?} address in the port file: {ports}"))
    };
    let port = listener("quic")?.port();
    let mut url: Url = args
        .url_template
        .replace("{port}", &port.to_string())
        .parse()
        .context("invalid --url-template")?;
    let mut fingerprint = None;
    if url.scheme() == "http" {
        // The fingerprint is served on the HTTP listener, not on the QUIC port's number.
        let http: Url = format!("http://{}/", listener("http")?).parse()?;
        fingerprint = Some(moq_native::fetch_fingerprint(&http).await?);
        url.set_scheme("https")
            .map_err(|()| anyhow::anyhow!("cannot make {url} https"))?;
    }
    let target = Target {
        url,
        port,
        fingerprint,
    };
    relay
        .wait_ready(&target.load(&args.load), &target.url, timeout)
        .await?;
    Ok((relay, target))
}

/// Start the relay, load it, stop it.
async fn run_one(
    args: &CompareArgs,
    preset: &Preset,
    cmd: &str,
    log: Option<&Path>,
) -> anyhow::Result<Value> {
    let (relay, target) = start(args, cmd, log).await?;
    let pid = relay.relay_pid();
    let mut load = target.load(&args.load);
    load.relay_pid = Some(pid);
    eprintln!(
        "relay pid {pid} on port {}, load {}",
        target.port, target.url
    );
    let result = run::run(&load, preset, false).await;
    finish(relay, cmd, target.port, result)
}

/// Stop the relay (whatever the load's result) and label the load's summary with its command.
fn finish(
    mut relay: RelayProcess,
    cmd: &str,
    port: u16,
    result: anyhow::Result<Value>,
) -> anyhow::Result<Value> {
    relay.stop();
    let mut summary = result.with_context(|| format!("running the load against `{cmd}`"))?;
    summary["relay_command"] = json!(cmd.replace("{port}", &port.to_string()));
    Ok(summary)
}

/// A relay started by `sh -c`, in its own process group.
struct RelayProcess {
    child: Child,
}

impl RelayProcess {
    fn spawn(cmd: &str, port: u16, log: Option<&Path>) -> anyhow::Result<Self> {
        let cmd = cmd.replace("{port}", &port.to_string());
        let (stdout, stderr) = match log {
            Some(path) => {
                let file = std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                (Stdio::from(file.try_clone()?), Stdio::from(file))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let child = Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start `{cmd}`"))?;
        Ok(Self { child })
    }

    /// Wait (at most `timeout`) for the relay to write its port file, and parse it.
    async fn wait_port_file(&mut self, path: &Path, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            // Written to a temporary name and renamed: a file that exists is complete.
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    return serde_json::from_str(&text)
                        .with_context(|| format!("invalid port file {}: {text:?}", path.display()))
                }
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    return Err(err).with_context(|| format!("cannot read {}", path.display()))
                }
                Err(_) => {}
            }
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!(
                    "the relay exited before writing its port file ({status}); see --relay-log"
                );
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the relay did not write {} in time",
                path.display()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Wait until a session to `url` can be established (the relay listens, and serves its
    /// certificate fingerprint for http:// URLs).
    async fn wait_ready(
        &mut self,
        load: &Load,
        url: &Url,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let mut config = load.client.clone();
        config.quic = load.quic.clone();
        let client = moq_native::QuicClient::new(config)?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!(
                    "the relay exited before accepting sessions ({status}); see --relay-log"
                );
            }
            match tokio::time::timeout(Duration::from_secs(1), client.connect(url.clone())).await {
                Ok(Ok(connection)) => {
                    connection.session.close(0, b"ready");
                    return Ok(());
                }
                Ok(Err(err)) if Instant::now() >= deadline => {
                    return Err(anyhow::Error::from(err)
                        .context(format!("the relay did not accept {url} in time")))
                }
                Err(_) if Instant::now() >= deadline => {
                    anyhow::bail!("the relay did not accept {url} in time")
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// The relay's PID: the shell's, or (when the shell did not `exec`) its only descendant
    /// that is not a shell.
    fn relay_pid(&self) -> u32 {
        let mut pid = self.child.id();
        for _ in 0..8 {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if !matches!(comm.trim(), "sh" | "bash" | "dash" | "zsh" | "busybox") {
                break;
            }
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            let children: Vec<u32> = children
                .split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect();
            match children[..] {
                [only] => pid = only,
                _ => break,
            }
        }
        pid
    }

    /// SIGTERM to the process group, SIGKILL after 5 s, then reap.
    fn stop(&mut self) {
        let group = format!("-{}", self.child.id());
        let signal = |sig: &str| {
            let _ = Command::new("kill")
                .args(["-s", sig, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                // The shell is gone; make sure nothing else of the group survives.
                signal("KILL");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        signal("KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// A port free for both UDP (QUIC) and TCP (the relay's HTTP listener) on 127.0.0.1 right now.
fn free_port() -> anyhow::Result<u16> {
    for _ in 0..100 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("no port free for both UDP and TCP")
}

fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_unstable_by(f64::total_cmp);
    let n = v.len();
    Some(match n % 2 {
        1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    })
}

fn ratio(num: Option<f64>, den: Option<f64>) -> Option<f64> {
    match (num, den) {
        (Some(n), Some(d)) if d != 0.0 => Some(n / d),
        _ => None,
    }
}

/// The comparison as one JSON object.
fn report(args: &CompareArgs, preset: &Preset, runs: &[Vec<Value>; 2]) -> Value {
    let mut metrics = Map::new();
    for (key, higher_better) in METRICS {
        let values = |side: usize| -> Vec<Option<f64>> {
            runs[side].iter().map(|r| r[*key].as_f64()).collect()
        };
        let (a, b) = (values(0), values(1));
        let flat = |v: &[Option<f64>]| v.iter().flatten().copied().collect::<Vec<_>>();
        let (am, bm) = (median(&flat(&a)), median(&flat(&b)));
        // Round by round: with --at-once the two runs of a round share the machine's state, so
        // the median of these is the steadier ratio.
        let pairs: Vec<Option<f64>> = a.iter().zip(&b).map(|(a, b)| ratio(*b, *a)).collect();
        metrics.insert(
            key.to_string(),
            json!({
                "a": a,
                "b": b,
                "a_median": am,
                "b_median": bm,
                "b_over_a": ratio(bm, am),
                "a_over_b": ratio(am, bm),
                "b_over_a_rounds": pairs,
                "b_over_a_rounds_median": median(&flat(&pairs)),
                "higher_is_better": higher_better,
            }),
        );
    }
    json!({
        "type": "compare",
        "a": args.a,
        "b": args.b,
        "rounds": args.rounds,
        "at_once": args.at_once,
        "preset": preset.name,
        "subscribers": args.load.subscribers,
        "duration_s": args.load.duration,
        "url_template": args.url_template,
        "metrics": metrics,
        "runs": { "a": runs[0], "b": runs[1] },
    })
}

/// The comparison as a text table.
fn table(result: &Value) -> String {
    let rounds = result["rounds"].as_u64().unwrap_or(0) as usize;
    let fmt = |v: &Value| match v.as_f64() {
        None => "-".to_string(),
        Some(v) if v != 0.0 && (v.abs() >= 1e5 || v.abs() < 1e-2) => format!("{v:.3e}"),
        Some(v) => format!("{v:.2}"),
    };
    let mut out = format!(
        "compare · preset {} · {} subscribers · {} s · {rounds} round(s){}\n  A: {}\n  B: {}\n",
        result["preset"].as_str().unwrap_or("?"),
        result["subscribers"],
        result["duration_s"],
        match result["at_once"].as_bool() {
            Some(true) => " · A and B at once",
            _ => "",
        },
        result["a"].as_str().unwrap_or("?"),
        result["b"].as_str().unwrap_or("?"),
    );
    out += &format!(
        "{:<38} {:>24} {:>24} {:>10} {:>10} {:>10} {:>8} {:>6} {:>24}\n",
        "metric",
        "A rounds",
        "B rounds",
        "A median",
        "B median",
        "B/A",
        "A/B",
        "better",
        "B/A by round (median)"
    );
    let Some(metrics) = result["metrics"].as_object() else {
        return out;
    };
    for (key, _) in METRICS {
        let m = &metrics[*key];
        let list = |side: &str| {
            m[side]
                .as_array()
                .map(|v| v.iter().map(fmt).collect::<Vec<_>>().join(" "))
                .unwrap_or_default()
        };
        let better = match (m["b_over_a"].as_f64(), m["higher_is_better"].as_bool()) {
            (Some(r), Some(true)) if r > 1.0 => "B",
            (Some(r), Some(false)) if r < 1.0 => "B",
            (Some(1.0), _) => "=",
            (Some(_), _) => "A",
            (None, _) => "-",
        };
        out += &format!(
            "{:<38} {:>24} {:>24} {:>10} {:>10} {:>10} {:>8} {:>6} {:>24}\n",
            key,
            list("a"),
            list("b"),
            fmt(&m["a_median"]),
            fmt(&m["b_median"]),
            fmt(&m["b_over_a"]),
            fmt(&m["a_over_b"]),
            better,
            format!(
                "{} ({})",
                list("b_over_a_rounds"),
                fmt(&m["b_over_a_rounds_median"])
            )
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ratios() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(ratio(Some(2.0), Some(4.0)), Some(0.5));
        assert_eq!(ratio(Some(2.0), Some(0.0)), None);
        assert_eq!(ratio(None, Some(1.0)), None);
    }

    #[test]
    fn round_by_round_ratios() {
        let run = |v: f64| json!({ "relay_cpu_pct": v });
        let runs = [
            vec![run(20.0), run(30.0), run(25.0)],
            vec![run(40.0), run(57.0), run(55.0)],
        ];
        let args = CompareArgs {
            a: "a".into(),
            b: "b".into(),
            rounds: 3,
            url_template: String::new(),
            start_timeout: 1.0,
            pause: 0.0,
            at_once: true,
            relay_log: None,
            load: <Load as clap::FromArgMatches>::from_arg_matches(
                &<Load as clap::Args>::augment_args(clap::Command::new("t"))
                    .get_matches_from(["t"]),
            )
            .unwrap(),
            log: Default::default(),
        };
        let preset = crate::preset::load(None).unwrap().remove(0);
        let report = report(&args, &preset, &runs);
        let cpu = &report["metrics"]["relay_cpu_pct"];
        assert_eq!(cpu["b_over_a_rounds"], json!([2.0, 1.9, 2.2]));
        assert_eq!(cpu["b_over_a_rounds_median"], json!(2.0));
        // The ratio of the medians differs (55 / 25): the two are not the same statistic.
        assert_eq!(cpu["b_over_a"], json!(2.2));
        assert!(table(&report).contains("2.00 1.90 2.20 (2.00)"));
    }
}
