//! Configuration: a TOML file, flags and `MOQ_*` environment variables. A value in the file holds
//! unless a flag or variable actually sets it; defaults apply last.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use serde::Deserialize;

/// moq-relay: a moq-lite relay. Publishers announce broadcasts, viewers subscribe; one upstream
/// subscription per track serves every viewer. Knows nothing about media.
///
/// One UDP port serves WebTransport (https://host:port/path?jwt=...) and raw QUIC
/// (moql://host:port/path?jwt=..., the path travelling in the lite-05 SETUP). Every option below can
/// also be set in the TOML file given as FILE (see dev/*.toml) or as a MOQ_* environment variable;
/// a flag or variable wins over the file.
#[derive(Parser, Debug, Default)]
#[command(name = "moq-relay", version, about, long_about)]
pub struct Cli {
    /// TOML configuration file.
    pub file: Option<PathBuf>,

    /// UDP address for QUIC: WebTransport and raw QUIC on one port. [default: [::]:443]
    #[arg(
        long = "server-bind",
        visible_alias = "listen",
        env = "MOQ_SERVER_BIND"
    )]
    pub bind: Option<SocketAddr>,

    /// PEM certificate chain (repeatable; pairs with --tls-key by position).
    #[arg(long = "tls-cert", env = "MOQ_SERVER_TLS_CERT", value_delimiter = ',')]
    pub tls_cert: Vec<PathBuf>,

    /// PEM private key for the --tls-cert at the same position.
    #[arg(long = "tls-key", env = "MOQ_SERVER_TLS_KEY", value_delimiter = ',')]
    pub tls_key: Vec<PathBuf>,

    /// Generate a self-signed certificate (valid < 14 days, new at every start) for these hostnames.
    #[arg(
        long = "tls-generate",
        env = "MOQ_SERVER_TLS_GENERATE",
        value_delimiter = ','
    )]
    pub tls_generate: Vec<String>,

    /// Protocols accepted, most preferred first. [default: moq-lite-05,moq-lite-04,moq-lite-03,moql]
    #[arg(
        long = "server-protocol",
        env = "MOQ_SERVER_PROTOCOL",
        value_delimiter = ','
    )]
    pub protocols: Vec<String>,

    /// Key (JWK file, base64url as written by `moq-token generate`) that signs client tokens.
    #[arg(long = "auth-key", env = "MOQ_AUTH_KEY")]
    pub auth_key: Option<PathBuf>,

    /// Path prefix anyone may publish and subscribe under without a token ("" = everything).
    #[arg(long = "auth-public", env = "MOQ_AUTH_PUBLIC")]
    pub auth_public: Option<String>,

    /// TCP address for the HTTP listener: /certificate.sha256, /announced, /fetch, /health.
    /// Use the QUIC port number so http:// client URLs work.
    #[arg(long = "web-http-listen", env = "MOQ_WEB_HTTP_LISTEN")]
    pub web_http_listen: Option<SocketAddr>,

    /// Directory of static files (a web app, e.g. js/demo/dist) served by the HTTP listener for any
    /// path the endpoints above don't claim: `/` → index.html, `/watch` → watch.html.
    #[arg(long = "web-root", env = "MOQ_WEB_ROOT")]
    pub web_root: Option<PathBuf>,

    /// TCP address for the internal listener: /metrics (Prometheus) and /health. Keep it private.
    #[arg(long = "internal-listen", env = "MOQ_INTERNAL_LISTEN")]
    pub internal_listen: Option<SocketAddr>,

    /// Most concurrent connections, counted from their first packet: those still in their
    /// set-up (see --handshake-timeout) count like sessions. More are refused at once (QUIC
    /// CONNECTION_REFUSED). [default: 10000]
    #[arg(long = "max-sessions", env = "MOQ_MAX_SESSIONS")]
    pub max_sessions: Option<usize>,

    /// Time a connection has from its first packet to finish its set-up: the QUIC handshake, the
    /// WebTransport CONNECT and the moq SETUP. Then it is closed (`timeout`, code 3, once the
    /// QUIC handshake is done) and logged. [default: 10s]
    #[arg(long = "handshake-timeout", env = "MOQ_HANDSHAKE_TIMEOUT", value_parser = parse_duration)]
    pub handshake_timeout: Option<Duration>,

    /// On shutdown (SIGINT/SIGTERM), how long sessions get to leave after GOAWAY. [default: 5s]
    #[arg(long = "shutdown-timeout", env = "MOQ_SHUTDOWN_TIMEOUT", value_parser = parse_duration)]
    pub shutdown_timeout: Option<Duration>,

    /// QUIC idle timeout in milliseconds. [default: 10000]
    #[arg(long = "quic-idle-timeout", env = "MOQ_QUIC_IDLE_TIMEOUT")]
    pub quic_idle_timeout: Option<u64>,

    /// Ask viewers to ACK only every N packets (QUIC ACK frequency extension, when the peer
    /// supports it; 0 = standard). Cuts the relay's ACK processing; loss detection on very
    /// low-rate tracks waits up to the peer's max ACK delay instead. [default: 10]
    #[arg(long = "quic-ack-threshold", env = "MOQ_QUIC_ACK_THRESHOLD")]
    pub quic_ack_threshold: Option<u32>,

    /// UDP socket receive/send buffer in bytes (capped by net.core.rmem_max). [default: 8388608]
    #[arg(long = "quic-socket-buffer", env = "MOQ_QUIC_SOCKET_BUFFER")]
    pub quic_socket_buffer: Option<usize>,

    /// Most unidirectional (group) streams a peer may have open towards the relay at once.
    /// [default: 100]
    #[arg(long = "quic-max-streams-uni", env = "MOQ_QUIC_MAX_STREAMS_UNI")]
    pub quic_max_streams_uni: Option<u32>,

    /// Most bidirectional streams (subscriptions, announce/track requests) a peer may have open
    /// towards the relay at once. [default: 100]
    #[arg(long = "quic-max-streams-bidi", env = "MOQ_QUIC_MAX_STREAMS_BIDI")]
    pub quic_max_streams_bidi: Option<u32>,

    /// Streams of each direction a peer may open at first; the allowance doubles whenever the
    /// peer has half of it open, up to --quic-max-streams-*. quinn allocates state for every
    /// allowed stream up front, so this is memory per connection: most viewers use a handful.
    /// 0 = the maxima from the start. [default: 16]
    #[arg(long = "quic-initial-streams", env = "MOQ_QUIC_INITIAL_STREAMS")]
    pub quic_initial_streams: Option<u32>,

    /// Largest UDP payload MTU discovery may try, and the largest accepted (1200–65527). Raise
    /// it (~8950) for peers on a jumbo-frame network (e.g. publishers in the same data centre),
    /// which must set it too; other peers only cost a few lost probes.
    /// [default: 1452]
    #[arg(long = "quic-max-mtu", env = "MOQ_QUIC_MAX_MTU", value_parser = clap::value_parser!(u16).range(1200..=65527))]
    pub quic_max_mtu: Option<u16>,

    /// Congestion controller for every connection: cubic (quinn's default, loss-based), bbr
    /// (model-based, keeps queues short; quinn marks it experimental) or new-reno (RFC 9002's
    /// baseline). [default: cubic]
    #[arg(long = "quic-congestion", env = "MOQ_QUIC_CONGESTION", value_enum)]
    pub quic_congestion: Option<moq_native::Congestion>,

    /// QUIC endpoints serving the port, each on its own thread with its own single-threaded
    /// runtime, which also runs the sessions it accepted (SO_REUSEPORT: Linux spreads clients
    /// over them by address). 0 = one per CPU. With more than one, a client whose address
    /// changes mid-session (NAT rebinding) may reach another worker, which ends the connection
    /// at once (stateless reset) so the client reconnects; one worker migrates it instead.
    /// [default: 1: one endpoint on a runtime with a thread per CPU]
    #[arg(
        long = "server-workers",
        visible_alias = "workers",
        env = "MOQ_SERVER_WORKERS"
    )]
    pub workers: Option<usize>,

    /// Log level: error, warn, info, debug, trace (RUST_LOG overrides). [default: info]
    #[arg(long = "log-level", env = "MOQ_LOG_LEVEL")]
    pub log_level: Option<tracing::Level>,

    /// Once every listener is bound, write their addresses to this file as JSON, e.g.
    /// {"quic":"127.0.0.1:43121","http":"127.0.0.1:43122","internal":"127.0.0.1:43123"}
    /// (written to PATH.tmp, then renamed). With port 0 in a listen address, the file tells the
    /// port the system chose.
    #[arg(long = "port-file", env = "MOQ_PORT_FILE")]
    pub port_file: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (e.g. 5s, 500ms)"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => n
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("duration {s:?} is too long")),
        _ => Err(format!("invalid duration unit in {s:?} (ms, s or m)")),
    }
}

/// The TOML file.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct File {
    port_file: Option<PathBuf>,
    #[serde(default)]
    server: FileServer,
    #[serde(default)]
    auth: FileAuth,
    #[serde(default)]
    web: FileWeb,
    #[serde(default)]
    internal: FileListen,
    #[serde(default)]
    log: FileLog,
    #[serde(default)]
    limits: FileLimits,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileServer {
    #[serde(alias = "listen")]
    bind: Option<SocketAddr>,
    #[serde(default)]
    protocols: Vec<String>,
    #[serde(default)]
    tls: FileTls,
    shutdown_timeout: Option<String>,
    quic_idle_timeout: Option<u64>,
    quic_ack_threshold: Option<u32>,
    quic_socket_buffer: Option<usize>,
    quic_max_streams_uni: Option<u32>,
    quic_max_streams_bidi: Option<u32>,
    quic_initial_streams: Option<u32>,
    quic_max_mtu: Option<u16>,
    quic_congestion: Option<String>,
    workers: Option<usize>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileTls {
    #[serde(default)]
    cert: OneOrMany<PathBuf>,
    #[serde(default)]
    key: OneOrMany<PathBuf>,
    #[serde(default)]
    generate: OneOrMany<String>,
}

/// A TOML value that may be written as one item or a list.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany::Many(Vec::new())
    }
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileAuth {
    key: Option<PathBuf>,
    public: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileWeb {
    #[serde(default)]
    http: FileListen,
    root: Option<PathBuf>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileListen {
    listen: Option<SocketAddr>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileLog {
    level: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_sessions: Option<usize>,
    handshake_timeout: Option<String>,
}

/// The relay asks its peers to ACK every 10th packet: measured ~8% less relay CPU at 500 viewers
/// (docs/performance.md).
const RELAY_ACK_THRESHOLD: u32 = 10;

/// Default --quic-initial-streams: room for a viewer's requests (WebTransport's CONNECT and HTTP/3
/// control streams count too) before the first raise; 16 + 16 keeps quinn's per-connection stream
/// tables at a quarter of their size at 100 + 100.
const RELAY_INITIAL_STREAMS: u32 = 16;

/// Largest --max-sessions: the most permits a Tokio semaphore holds.
const MAX_SESSIONS: usize = tokio::sync::Semaphore::MAX_PERMITS;

/// The merged configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// QUIC address.
    pub bind: SocketAddr,
    /// PEM certificates.
    pub tls_cert: Vec<PathBuf>,
    /// PEM keys.
    pub tls_key: Vec<PathBuf>,
    /// Hostnames for a generated certificate.
    pub tls_generate: Vec<String>,
    /// Accepted protocols (empty = defaults).
    pub protocols: Vec<String>,
    /// Token key file.
    pub auth_key: Option<PathBuf>,
    /// Anonymous prefix.
    pub auth_public: Option<String>,
    /// HTTP listener.
    pub web_http_listen: Option<SocketAddr>,
    /// Static files served by the HTTP listener.
    pub web_root: Option<PathBuf>,
    /// Internal (metrics) listener.
    pub internal_listen: Option<SocketAddr>,
    /// Connection limit (sessions and connections still in their set-up).
    pub max_sessions: usize,
    /// Deadline for a connection's set-up, from its first packet.
    pub handshake_timeout: Duration,
    /// Drain time on shutdown.
    pub shutdown_timeout: Duration,
    /// QUIC idle timeout (ms).
    pub quic_idle_timeout: u64,
    /// ACK frequency threshold requested from peers.
    pub quic_ack_threshold: u32,
    /// UDP socket buffer bytes.
    pub quic_socket_buffer: usize,
    /// Concurrent unidirectional streams a peer may open.
    pub quic_max_streams_uni: u32,
    /// Concurrent bidirectional streams a peer may open.
    pub quic_max_streams_bidi: u32,
    /// Streams of each direction a peer may open at first (0 = the maxima).
    pub quic_initial_streams: u32,
    /// PLPMTUD ceiling and largest datagram accepted.
    pub quic_max_mtu: u16,
    /// Congestion controller.
    pub quic_congestion: moq_native::Congestion,
    /// QUIC endpoints (worker threads) on the port; 0 = one per CPU.
    pub workers: usize,
    /// Log level.
    pub log_level: tracing::Level,
    /// Where to write the bound addresses.
    pub port_file: Option<PathBuf>,
}

fn first<T>(flag: Vec<T>, file: Vec<T>) -> Vec<T> {
    if flag.is_empty() {
        file
    } else {
        flag
    }
}

impl Config {
    /// Merge flags/environment over the file over the defaults.
    pub fn load(cli: Cli) -> anyhow::Result<Self> {
        let file: File = match &cli.file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("invalid config {}", path.display()))?
            }
            None => File::default(),
        };
        let log_level = match (cli.log_level, file.log.level) {
            (Some(level), _) => level,
            (None, Some(level)) => level
                .parse()
                .map_err(|_| anyhow::anyhow!("invalid [log] level {level:?}"))?,
            (None, None) => tracing::Level::INFO,
        };
        let shutdown_timeout = match (cli.shutdown_timeout, file.server.shutdown_timeout) {
            (Some(d), _) => d,
            (None, Some(s)) => parse_duration(&s).map_err(anyhow::Error::msg)?,
            (None, None) => Duration::from_secs(5),
        };
        let handshake_timeout = match (cli.handshake_timeout, file.limits.handshake_timeout) {
            (Some(d), _) => d,
            (None, Some(s)) => parse_duration(&s).map_err(anyhow::Error::msg)?,
            (None, None) => moq_native::DEFAULT_HANDSHAKE_TIMEOUT,
        };
        anyhow::ensure!(
            !handshake_timeout.is_zero(),
            "handshake_timeout must be more than 0"
        );
        let max_sessions = cli
            .max_sessions
            .or(file.limits.max_sessions)
            .unwrap_or(10_000);
        anyhow::ensure!(
            (1..=MAX_SESSIONS).contains(&max_sessions),
            "max_sessions {max_sessions}: must be 1..={MAX_SESSIONS}"
        );
        Ok(Self {
            bind: cli
                .bind
                .or(file.server.bind)
                .unwrap_or_else(|| "[::]:443".parse().expect("valid literal")),
            tls_cert: first(cli.tls_cert, file.server.tls.cert.into_vec()),
            tls_key: first(cli.tls_key, file.server.tls.key.into_vec()),
            tls_generate: first(cli.tls_generate, file.server.tls.generate.into_vec()),
            protocols: first(cli.protocols, file.server.protocols),
            auth_key: cli.auth_key.or(file.auth.key),
            auth_public: cli.auth_public.or(file.auth.public),
            web_http_listen: cli.web_http_listen.or(file.web.http.listen),
            web_root: cli.web_root.or(file.web.root),
            internal_listen: cli.internal_listen.or(file.internal.listen),
            max_sessions,
            handshake_timeout,
            shutdown_timeout,
            quic_idle_timeout: cli
                .quic_idle_timeout
                .or(file.server.quic_idle_timeout)
                .unwrap_or(10_000),
            quic_ack_threshold: cli
                .quic_ack_threshold
                .or(file.server.quic_ack_threshold)
                .unwrap_or(RELAY_ACK_THRESHOLD),
            quic_socket_buffer: cli
                .quic_socket_buffer
                .or(file.server.quic_socket_buffer)
                .unwrap_or(moq_native::DEFAULT_SOCKET_BUFFER),
            quic_max_streams_uni: cli
                .quic_max_streams_uni
                .or(file.server.quic_max_streams_uni)
                .unwrap_or(moq_native::DEFAULT_MAX_STREAMS_UNI),
            quic_max_streams_bidi: cli
                .quic_max_streams_bidi
                .or(file.server.quic_max_streams_bidi)
                .unwrap_or(moq_native::DEFAULT_MAX_STREAMS_BIDI),
            quic_initial_streams: cli
                .quic_initial_streams
                .or(file.server.quic_initial_streams)
                .unwrap_or(RELAY_INITIAL_STREAMS),
            quic_max_mtu: match cli.quic_max_mtu.or(file.server.quic_max_mtu) {
                Some(mtu) if !(1200..=65527).contains(&mtu) => {
                    anyhow::bail!("quic_max_mtu {mtu}: must be 1200..=65527")
                }
                mtu => mtu.unwrap_or(moq_native::DEFAULT_MAX_MTU),
            },
            quic_congestion: match (cli.quic_congestion, &file.server.quic_congestion) {
                (Some(flag), _) => flag,
                (None, Some(name)) => <moq_native::Congestion as clap::ValueEnum>::from_str(
                    name, true,
                )
                .map_err(|_| {
                    anyhow::anyhow!("quic_congestion {name:?}: must be cubic, bbr or new-reno")
                })?,
                (None, None) => moq_native::Congestion::default(),
            },
            workers: cli.workers.or(file.server.workers).unwrap_or(1),
            log_level,
            port_file: cli.port_file.or(file.port_file),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile_path::TempFile {
        tempfile_path::TempFile::new(text)
    }

    /// A file in the temp dir removed on drop (no extra dependency for one helper).
    mod tempfile_path {
        pub struct TempFile(pub std::path::PathBuf);
        impl TempFile {
            pub fn new(text: &str) -> Self {
                let path = std::env::temp_dir().join(format!(
                    "moq-relay-test-{}-{:?}.toml",
                    std::process::id(),
                    std::thread::current().id()
                ));
                std::fs::write(&path, text).unwrap();
                Self(path)
            }
        }
        impl Drop for TempFile {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn file_values_hold_unless_a_flag_is_given() {
        let f = file(
            "[server]\nlisten = \"127.0.0.1:4443\"\n[server.tls]\ngenerate = \"localhost\"\n[auth]\npublic = \"anon\"\n[log]\nlevel = \"debug\"\n",
        );
        let cli = Cli::try_parse_from(["moq-relay", f.0.to_str().unwrap()]).unwrap();
        let config = Config::load(cli).unwrap();
        assert_eq!(config.bind, "127.0.0.1:4443".parse().unwrap());
        assert_eq!(config.tls_generate, vec!["localhost".to_string()]);
        assert_eq!(config.auth_public.as_deref(), Some("anon"));
        assert_eq!(
            config.log_level,
            tracing::Level::DEBUG,
            "the file's level is not overridden by a default"
        );

        let cli = Cli::try_parse_from([
            "moq-relay",
            f.0.to_str().unwrap(),
            "--listen",
            "127.0.0.1:5000",
            "--auth-public",
            "",
        ])
        .unwrap();
        let config = Config::load(cli).unwrap();
        assert_eq!(config.bind, "127.0.0.1:5000".parse().unwrap());
        assert_eq!(config.auth_public.as_deref(), Some(""));
        assert_eq!(config.max_sessions, 10_000);
    }

    #[test]
    fn quic_tuning_from_file_flag_or_default() {
        let f = file("[server]\nquic_max_streams_uni = 64\nquic_ack_threshold = 4\n");
        let path = f.0.to_str().unwrap();
        let config = Config::load(Cli::try_parse_from(["moq-relay", path]).unwrap()).unwrap();
        assert_eq!(config.quic_max_streams_uni, 64);
        assert_eq!(config.quic_ack_threshold, 4);
        assert_eq!(
            config.quic_max_streams_bidi,
            moq_native::DEFAULT_MAX_STREAMS_BIDI
        );
        assert_eq!(config.quic_socket_buffer, moq_native::DEFAULT_SOCKET_BUFFER);
        assert_eq!(config.quic_initial_streams, RELAY_INITIAL_STREAMS);
        let cli = Cli::try_parse_from([
            "moq-relay",
            path,
            "--quic-max-streams-uni",
            "512",
            "--quic-max-streams-bidi",
            "256",
            "--quic-initial-streams",
            "0",
        ])
        .unwrap();
        let config = Config::load(cli).unwrap();
        assert_eq!(config.quic_max_streams_uni, 512);
        assert_eq!(config.quic_max_streams_bidi, 256);
        assert_eq!(config.quic_initial_streams, 0);
    }

    #[test]
    fn quic_max_mtu_from_file_flag_or_default_and_checked() {
        let none = Config::load(Cli::try_parse_from(["moq-relay"]).unwrap()).unwrap();
        assert_eq!(none.quic_max_mtu, moq_native::DEFAULT_MAX_MTU);
        let f = file("[server]\nquic_max_mtu = 8950\n");
        let path = f.0.to_str().unwrap();
        let config = Config::load(Cli::try_parse_from(["moq-relay", path]).unwrap()).unwrap();
        assert_eq!(config.quic_max_mtu, 8950);
        let cli = Cli::try_parse_from(["moq-relay", path, "--quic-max-mtu", "9000"]).unwrap();
        assert_eq!(Config::load(cli).unwrap().quic_max_mtu, 9000);
        assert!(Cli::try_parse_from(["moq-relay", "--quic-max-mtu", "1000"]).is_err());
        let bad = file("[server]\nquic_max_mtu = 100\n");
        let err =
            Config::load(Cli::try_parse_from(["moq-relay", bad.0.to_str().unwrap()]).unwrap())
                .unwrap_err();
        assert!(err.to_string().contains("quic_max_mtu"), "{err}");
    }

    #[test]
    fn quic_congestion_from_file_flag_or_default_and_checked() {
        use moq_native::Congestion;
        let none = Config::load(Cli::try_parse_from(["moq-relay"]).unwrap()).unwrap();
        assert_eq!(none.quic_congestion, Congestion::Cubic);
        let f = file("[server]\nquic_congestion = \"bbr\"\n");
        let path = f.0.to_str().unwrap();
        let config = Config::load(Cli::try_parse_from(["moq-relay", path]).unwrap()).unwrap();
        assert_eq!(config.quic_congestion, Congestion::Bbr);
        let cli =
            Cli::try_parse_from(["moq-relay", path, "--quic-congestion", "new-reno"]).unwrap();
        assert_eq!(
            Config::load(cli).unwrap().quic_congestion,
            Congestion::NewReno
        );
        assert!(Cli::try_parse_from(["moq-relay", "--quic-congestion", "vegas"]).is_err());
        let bad = file("[server]\nquic_congestion = \"vegas\"\n");
        let err =
            Config::load(Cli::try_parse_from(["moq-relay", bad.0.to_str().unwrap()]).unwrap())
                .unwrap_err();
        assert!(err.to_string().contains("quic_congestion"), "{err}");
    }

    #[test]
    fn workers_from_file_flag_alias_or_default() {
        let none = Config::load(Cli::try_parse_from(["moq-relay"]).unwrap()).unwrap();
        assert_eq!(none.workers, 1);
        let f = file("[server]\nworkers = 4\n");
        let path = f.0.to_str().unwrap();
        let config = Config::load(Cli::try_parse_from(["moq-relay", path]).unwrap()).unwrap();
        assert_eq!(config.workers, 4);
        for flag in ["--server-workers", "--workers"] {
            let cli = Cli::try_parse_from(["moq-relay", path, flag, "0"]).unwrap();
            assert_eq!(Config::load(cli).unwrap().workers, 0, "{flag}");
        }
    }

    #[test]
    fn unknown_keys_are_errors() {
        let f = file("[server]\nlisten = \"127.0.0.1:4443\"\nbogus = 1\n");
        let cli = Cli::try_parse_from(["moq-relay", f.0.to_str().unwrap()]).unwrap();
        assert!(Config::load(cli).is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration(&format!("{}m", u64::MAX)).is_err());
    }

    #[test]
    fn handshake_timeout_from_file_flag_variable_or_default() {
        let none = Config::load(Cli::try_parse_from(["moq-relay"]).unwrap()).unwrap();
        assert_eq!(none.handshake_timeout, Duration::from_secs(10));
        let f = file("[limits]\nhandshake_timeout = \"3s\"\n");
        let path = f.0.to_str().unwrap();
        let config = Config::load(Cli::try_parse_from(["moq-relay", path]).unwrap()).unwrap();
        assert_eq!(config.handshake_timeout, Duration::from_secs(3));
        let cli = Cli::try_parse_from(["moq-relay", path, "--handshake-timeout", "500ms"]).unwrap();
        assert_eq!(
            Config::load(cli).unwrap().handshake_timeout,
            Duration::from_millis(500)
        );
        for bad in ["0s", "soon"] {
            let cli = Cli::try_parse_from(["moq-relay", "--handshake-timeout", bad]);
            assert!(
                cli.map_err(|e| e.to_string())
                    .and_then(|cli| Config::load(cli).map_err(|e| e.to_string()))
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn max_sessions_must_fit_a_semaphore() {
        for bad in ["0", &usize::MAX.to_string()] {
            let cli = Cli::try_parse_from(["moq-relay", "--max-sessions", bad]).unwrap();
            assert!(Config::load(cli).is_err(), "{bad}");
        }
    }
}
