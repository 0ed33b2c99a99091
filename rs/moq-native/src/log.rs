//! Logging set-up for binaries.

use tracing::Level;
use tracing_subscriber::EnvFilter;

/// Log configuration (clap flags): `--log-level` / `MOQ_LOG_LEVEL`; `RUST_LOG` overrides.
#[derive(clap::Args, Clone, Debug)]
pub struct Log {
    /// Log level: error, warn, info, debug or trace. `RUST_LOG`, when set, takes precedence.
    #[arg(long = "log-level", default_value = "info", env = "MOQ_LOG_LEVEL")]
    pub level: Level,
}

impl Default for Log {
    /// `info`, like the flag.
    fn default() -> Self {
        Self { level: Level::INFO }
    }
}

impl Log {
    /// Install a `tracing-subscriber` fmt subscriber writing to stderr.
    ///
    /// Without `RUST_LOG`, everything logs at `level` except the chatty transport crates,
    /// capped at `info` (quinn) and `warn` (h2). Does nothing if a global subscriber is
    /// already installed (tests may call it repeatedly).
    pub fn init(&self) {
        let filter = match std::env::var("RUST_LOG") {
            Ok(directives) if !directives.is_empty() => EnvFilter::new(directives),
            _ => EnvFilter::new(self.directives()),
        };

        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }

    /// The filter used when `RUST_LOG` is unset.
    fn directives(&self) -> String {
        // `Level` orders by verbosity: TRACE > DEBUG > INFO > WARN > ERROR.
        let quinn = self.level.min(Level::INFO);
        let h2 = self.level.min(Level::WARN);
        // web-transport-quinn warns on every session a peer ends without the close capsule
        // (browsers closing a tab, killed processes): one line per viewer, not actionable.
        let wt = match self.level >= Level::DEBUG {
            true => self.level,
            false => Level::ERROR,
        };
        format!(
            "{level},quinn={quinn},quinn_proto={quinn},quinn_udp={quinn},h2={h2},web_transport_quinn={wt}",
            level = self.level
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noisy_crates_are_capped() {
        let debug = Log {
            level: Level::DEBUG,
        }
        .directives();
        assert!(debug.starts_with("DEBUG,quinn=INFO"), "{debug}");
        assert!(debug.contains("h2=WARN"), "{debug}");
        assert!(debug.ends_with("web_transport_quinn=DEBUG"), "{debug}");

        let info = Log { level: Level::INFO }.directives();
        assert!(info.ends_with("web_transport_quinn=ERROR"), "{info}");

        let error = Log {
            level: Level::ERROR,
        }
        .directives();
        assert!(
            error.contains("quinn=ERROR") && error.contains("h2=ERROR"),
            "{error}"
        );
    }
}
