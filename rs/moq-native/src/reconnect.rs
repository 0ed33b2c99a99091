//! The reconnection policy of client binaries: the `--no-reconnect` flag, the delays, the logs.

use std::time::{Duration, Instant};

use crate::Backoff;

/// The `--no-reconnect` flag of client binaries (clap flags).
#[derive(clap::Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconnectConfig {
    /// Exit with the error when the connection fails or is lost, instead of connecting again
    /// after a jittered exponential backoff (100 ms doubling to 2 s).
    #[arg(long = "no-reconnect", env = "MOQ_NO_RECONNECT")]
    pub no_reconnect: bool,
}

/// A client's reconnection loop: what to do after a failed dial or a lost session.
///
/// ```no_run
/// # async fn dial() -> anyhow::Result<()> { Ok(()) }
/// # async fn serve() -> anyhow::Error { anyhow::anyhow!("lost") }
/// # async fn run() -> anyhow::Result<()> {
/// let mut reconnect = moq_native::Reconnect::new(&moq_native::ReconnectConfig::default());
/// loop {
///     let delay = match dial().await {
///         Ok(()) => {
///             let up = reconnect.connected();
///             let lost = serve().await;
///             reconnect.retry(lost, Some(up))?
///         }
///         Err(err) => reconnect.retry(err, None)?,
///     };
///     tokio::time::sleep(delay).await;
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Reconnect {
    enabled: bool,
    backoff: Backoff,
    /// When the last session was lost (or the first dial failed), until connected again.
    lost: Option<Instant>,
}

impl Reconnect {
    /// The policy `config` asks for, with [`Backoff::default`] delays.
    pub fn new(config: &ReconnectConfig) -> Self {
        Self::with_backoff(config, Backoff::default())
    }

    /// The policy `config` asks for, with these delays.
    pub fn with_backoff(config: &ReconnectConfig, backoff: Backoff) -> Self {
        Self {
            enabled: !config.no_reconnect,
            backoff,
            lost: None,
        }
    }

    /// Whether a failure is followed by another attempt.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Note that a session is up: logs `connected`, or `reconnected` with how long it was away.
    /// Returns the moment, to pass to [`Reconnect::retry`] when the session is lost.
    pub fn connected(&mut self) -> Instant {
        match self.lost.take() {
            Some(lost) => tracing::info!(after = ?lost.elapsed(), "reconnected"),
            None => tracing::info!("connected"),
        }
        Instant::now()
    }

    /// After `err`, a failed dial (`up_since` None) or a session up since `up_since` and now
    /// lost: the delay before dialling again, logged as a warning with the reason; or `err` itself
    /// when reconnecting is off.
    ///
    /// A session that held for at least the backoff's maximum delay starts the delays again from
    /// the first; one that failed sooner (a server that accepts and then drops us) keeps them
    /// growing, so such a server is not redialled ten times a second.
    ///
    /// Any error type will do: it is only logged (its alternate form `{:#}`, which for an
    /// `anyhow::Error` includes the chain of causes) or handed back.
    pub fn retry<E: std::fmt::Display>(
        &mut self,
        err: E,
        up_since: Option<Instant>,
    ) -> Result<Duration, E> {
        if !self.enabled {
            return Err(err);
        }
        if up_since.is_some_and(|up| up.elapsed() >= self.backoff.max()) {
            self.backoff.reset();
        }
        self.lost.get_or_insert_with(Instant::now);
        let delay = self.backoff.next_delay();
        let reason = format!("{err:#}");
        match up_since {
            Some(_) => tracing::warn!(%reason, retry_in = ?delay, "disconnected; reconnecting"),
            None => tracing::warn!(%reason, retry_in = ?delay, "cannot connect; retrying"),
        }
        Ok(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn reconnect(no_reconnect: bool) -> Reconnect {
        Reconnect::with_backoff(
            &ReconnectConfig { no_reconnect },
            Backoff::with_seed(100 * MS, 400 * MS, 1),
        )
    }

    #[test]
    fn without_reconnect_the_error_is_returned() {
        let err = reconnect(true)
            .retry(anyhow::anyhow!("relay gone"), None)
            .unwrap_err();
        assert_eq!(err.to_string(), "relay gone");
    }

    #[test]
    fn failed_dials_back_off_and_a_session_that_held_resets_the_delays() {
        let mut reconnect = reconnect(false);
        let delays: Vec<Duration> = (0..4)
            .map(|_| reconnect.retry(anyhow::anyhow!("refused"), None).unwrap())
            .collect();
        assert!(delays[3] > 200 * MS, "{delays:?}");

        // A session dropped at once keeps the delays growing.
        let up = reconnect.connected();
        assert!(
            reconnect
                .retry(anyhow::anyhow!("closed"), Some(up))
                .unwrap()
                > 200 * MS
        );

        // One that held for the longest delay starts them again.
        let long_ago = Instant::now() - 400 * MS;
        assert!(
            reconnect
                .retry(anyhow::anyhow!("lost"), Some(long_ago))
                .unwrap()
                <= 100 * MS
        );
    }

    #[test]
    fn the_flag_and_its_environment_variable_parse() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            reconnect: ReconnectConfig,
        }
        assert!(
            !Cli::try_parse_from(["test"])
                .unwrap()
                .reconnect
                .no_reconnect
        );
        let cli = Cli::try_parse_from(["test", "--no-reconnect"]).unwrap();
        assert!(cli.reconnect.no_reconnect);
    }
}
