//! `moq-bench`: a load generator for moq-lite relays (ours or anyone's), measuring what a relay
//! delivers and what it costs.
//!
//! ```text
//!   publisher ──1 session──▶ relay ──N sessions──▶ subscribers   (--role both: one process;
//!                                                                 publish / subscribe: two)
//!   frame payload = send time (µs since the epoch, u64 BE) ‖ sequence (u64 BE) ‖ zero padding
//! ```
//!
//! Workloads are TOML presets (built in: `sd`, `hd`, `audio`, `chat`, `churn`; more with
//! `--preset-file`; `moq-bench presets` lists them). Every second it reports delivered Mbps,
//! frames and groups received and missing, latency percentiles and, given `--relay-pid`, the
//! relay's CPU and RSS (stderr; JSON lines on stdout with `--json`); at the end a summary table
//! (stderr) and, with `--json`, one summary JSON object as the last stdout line: the stable
//! interface for scripts (`delivered_mbps`, `loss_pct`, `latency_p50_ms`, `latency_p99_ms`,
//! `relay_cpu_seconds`, `relay_rss_mb`, and derived figures such as
//! `delivered_bytes_per_relay_cpu_second`).
//!
//! `moq-bench compare --a CMD --b CMD` starts two relays in turn (A B A B …) under the same load
//! and prints medians and ratios. `--version moq-lite-02` loads relays that only speak the compat
//! SETUP (the reference moq-relay 0.10.x).

mod compare;
mod machine;
mod preset;
mod relay;
mod run;
mod stats;

use clap::{Parser, Subcommand};

/// Load a moq-lite relay with publishers and N subscriber sessions; report throughput, loss,
/// latency, session set-up time and the relay's CPU and memory.
///
/// Presets (`moq-bench presets`): sd (30 fps × 12.5 KB = 3 Mbps, a group per second), hd
/// (30 fps × 25 KB = 6 Mbps), audio (50 × 160 B, one frame per group), chat (10 × 100 B, one
/// frame per group), churn (10 broadcasts/s announced, each ending after 2 s; latency =
/// announce latency). Add or override them with --preset-file FILE (TOML).
///
/// Loss counts, per subscriber, the frames sent during the measured period from its first
/// received frame on that it never received (subscribers get --drain more seconds to catch up).
/// Latency is receive time minus the send time carried in the frame (same host clock).
///
/// Scripting: `moq-bench --url URL --preset NAME [--subscribers N] [--duration SECONDS]
/// [--relay-pid PID] --json` prints one `"type":"tick"` JSON line per second and ends with one
/// `"type":"summary"` line.
#[derive(Parser, Debug)]
#[command(
    about,
    long_about,
    disable_version_flag = true,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Print the presets (built in, and from --preset-file) and exit.
    #[arg(long)]
    list_presets: bool,

    #[command(flatten)]
    load: run::Load,

    #[command(flatten)]
    log: moq_native::Log,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the presets (built in, and from --preset-file) and exit.
    Presets {
        /// A TOML file of extra presets.
        #[arg(long, value_name = "FILE")]
        preset_file: Option<std::path::PathBuf>,
    },
    /// Run the same load against two relay commands alternately (A B A B …) and print the
    /// ratios.
    Compare(Box<compare::CompareArgs>),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Presets { preset_file }) => {
            print!("{}", preset::table(&preset::load(preset_file.as_deref())?));
            Ok(())
        }
        Some(Command::Compare(compare)) => {
            compare.log.init();
            let presets = preset::load(compare.load.preset_file.as_deref())?;
            let preset = preset::find(&presets, &compare.load.preset)?;
            compare::compare(&compare, &preset).await
        }
        None => {
            let presets = preset::load(cli.load.preset_file.as_deref())?;
            if cli.list_presets {
                print!("{}", preset::table(&presets));
                return Ok(());
            }
            cli.log.init();
            let preset = preset::find(&presets, &cli.load.preset)?;
            let summary = run::run(&cli.load, &preset, cli.load.json).await?;
            if cli.load.json {
                println!("{summary}");
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_scripting_interface_parses() {
        let cli = Cli::try_parse_from([
            "moq-bench",
            "--url",
            "http://127.0.0.1:1/x",
            "--preset",
            "chat",
            "--subscribers",
            "3",
            "--duration",
            "2",
            "--relay-pid",
            "1",
            "--json",
            "--version",
            "moq-lite-02",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.load.subscribers, 3);
        assert_eq!(cli.load.lite_version, run::LiteVersion::Lite02);
        let cli = Cli::try_parse_from([
            "moq-bench",
            "compare",
            "--a",
            "exec a {port}",
            "--b",
            "exec b {port}",
            "--rounds",
            "1",
            "--preset",
            "sd",
            "--json",
        ])
        .unwrap();
        assert!(matches!(cli.command, Some(Command::Compare(c)) if c.rounds == 1 && c.load.json));
    }
}
