//! Configuration: a TOML file, flags and `MOQ_*` environment variables, declared once.
//!
//! Each option is one field below, with its doc (the `--help` text), its flag and variable
//! (clap), its TOML key (the field's place in the structs, serde) and its default (clap's
//! `default_value`, also shown in `--help`). [`Config::load_from`] layers them with figment:
//!
//! ```text
//! defaults  <  TOML file  <  MOQ_* variable  <  flag
//! ```
//!
//! A value in the file holds unless a flag or variable actually sets it.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, CommandFactory, FromArgMatches, Parser};
use figment::providers::Serialized;
use figment::Figment;
use serde::{Deserialize, Serialize};

/// moq-relay: a moq-lite relay. Publishers announce broadcasts, viewers subscribe; one upstream
/// subscription per track serves every viewer. Knows nothing about media.
///
/// One UDP port serves WebTransport (https://host:port/path?jwt=...) and raw QUIC
/// (moql://host:port/path?jwt=..., the path travelling in the lite-05 SETUP). Every option below can
/// also be set in the TOML file given as FILE (see dev/*.toml and docs/relay.md) or as a MOQ_*
/// environment variable; a flag or variable wins over the file. Durations: 500ms, 10s, 2m, 1h
/// (a bare number is seconds).
#[derive(Parser, Serialize, Deserialize, Debug, Clone)]
#[command(name = "moq-relay", version, about, long_about)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// TOML configuration file.
    #[serde(skip)]
    pub file: Option<PathBuf>,

    /// `[server]`: the QUIC endpoint.
    #[command(flatten, next_help_heading = "QUIC")]
    pub server: Server,

    /// `[auth]`: who may publish and subscribe.
    #[command(flatten, next_help_heading = "Auth")]
    pub auth: Auth,

    /// `[web]`: the public HTTP listener.
    #[command(flatten, next_help_heading = "HTTP")]
    pub web: Web,

    /// `[limits]`: what one relay accepts.
    #[command(flatten, next_help_heading = "Limits")]
    pub limits: Limits,

    /// `[internal]`: the private metrics listener.
    #[command(flatten, next_help_heading = "Operations")]
    pub internal: Internal,

    /// `[log]`.
    #[command(flatten)]
    pub log: Log,

    /// `[cluster]`: links to other relays.
    #[command(flatten, next_help_heading = "Cluster")]
    #[serde(default)]
    pub cluster: Cluster,

    /// Once every listener is bound, write their addresses to this file as JSON, e.g.
    /// {"quic":"127.0.0.1:43121","http":"127.0.0.1:43122","internal":"127.0.0.1:43123"}
    /// (written to PATH.tmp, then renamed). With port 0 in a listen address, the file tells the
    /// port the system chose.
    #[arg(long = "port-file", env = "MOQ_PORT_FILE", value_name = "PATH")]
    pub port_file: Option<PathBuf>,
}

/// `[server]`: the QUIC endpoint (WebTransport and raw QUIC on one UDP port).
#[derive(Args, Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// UDP address for QUIC: WebTransport and raw QUIC on one port.
    #[arg(
        long = "server-bind",
        visible_alias = "listen",
        env = "MOQ_SERVER_BIND",
        value_name = "ADDR",
        default_value = "[::]:443"
    )]
    #[serde(alias = "listen")]
    pub bind: SocketAddr,

    /// Protocols accepted, most preferred first. [default: moq-lite-06,moq-lite-05,moq-lite-04,moq-lite-03,moql]
    #[arg(
        long = "server-protocol",
        env = "MOQ_SERVER_PROTOCOL",
        value_name = "PROTOCOL",
        value_delimiter = ','
    )]
    pub protocols: Vec<String>,

    /// QUIC endpoints serving the port, each on its own thread with its own single-threaded
    /// runtime, which also runs the sessions it accepted (SO_REUSEPORT: Linux spreads clients
    /// over them by address). 0 = one per CPU; 1 = one endpoint on a runtime with a thread per
    /// CPU. With more than one, a client whose address changes mid-session (NAT rebinding) may
    /// reach another worker, which ends the connection at once (stateless reset) so the client
    /// reconnects; one worker migrates it instead.
    #[arg(
        long = "server-workers",
        visible_alias = "workers",
        env = "MOQ_SERVER_WORKERS",
        value_name = "N",
        default_value_t = 1
    )]
    pub workers: usize,

    /// TCP address for moq over plain TCP (QMux, `moql+tcp://host:port/path?jwt=`; the moq
    /// version is negotiated in-band and the path travels in SETUP, as on raw QUIC). No TLS:
    /// for trusted networks (a sidecar, a LAN). [default: off]
    #[arg(long = "tcp-listen", env = "MOQ_TCP_LISTEN", value_name = "ADDR")]
    pub tcp_listen: Option<SocketAddr>,

    /// On shutdown (SIGINT/SIGTERM), how long sessions get to leave after GOAWAY.
    #[arg(
        long = "shutdown-timeout",
        env = "MOQ_SHUTDOWN_TIMEOUT",
        value_name = "DURATION",
        value_parser = parse_duration,
        default_value = "5s"
    )]
    #[serde(with = "duration")]
    pub shutdown_timeout: Duration,

    /// QUIC idle timeout in milliseconds.
    #[arg(
        long = "quic-idle-timeout",
        env = "MOQ_QUIC_IDLE_TIMEOUT",
        value_name = "MS",
        default_value_t = 10_000
    )]
    pub quic_idle_timeout: u64,

    /// Ask viewers to ACK only every N packets (QUIC ACK frequency extension, when the peer
    /// supports it; 0 = standard). Cuts the relay's ACK processing; loss detection on very
    /// low-rate tracks waits up to the peer's max ACK delay instead (measured:
    /// docs/performance-notebook.md).
    #[arg(
        long = "quic-ack-threshold",
        env = "MOQ_QUIC_ACK_THRESHOLD",
        value_name = "N",
        default_value_t = 10
    )]
    pub quic_ack_threshold: u32,

    /// UDP socket receive/send buffer in bytes (capped by net.core.rmem_max).
    #[arg(
        long = "quic-socket-buffer",
        env = "MOQ_QUIC_SOCKET_BUFFER",
        value_name = "BYTES",
        default_value_t = moq_native::DEFAULT_SOCKET_BUFFER
    )]
    pub quic_socket_buffer: usize,

    /// Most unidirectional (group) streams a peer may have open towards the relay at once.
    #[arg(
        long = "quic-max-streams-uni",
        env = "MOQ_QUIC_MAX_STREAMS_UNI",
        value_name = "N",
        default_value_t = moq_native::DEFAULT_MAX_STREAMS_UNI
    )]
    pub quic_max_streams_uni: u32,

    /// Most bidirectional streams (subscriptions, announce/track requests) a peer may have open
    /// towards the relay at once.
    #[arg(
        long = "quic-max-streams-bidi",
        env = "MOQ_QUIC_MAX_STREAMS_BIDI",
        value_name = "N",
        default_value_t = moq_native::DEFAULT_MAX_STREAMS_BIDI
    )]
    pub quic_max_streams_bidi: u32,

    /// Streams of each direction a peer may open at first; the allowance doubles whenever the
    /// peer has half of it open, up to --quic-max-streams-*. quinn allocates state for every
    /// allowed stream up front, so this is memory per connection: most viewers use a handful
    /// (WebTransport's CONNECT and HTTP/3 control streams count too). 0 = the maxima from the
    /// start.
    #[arg(
        long = "quic-initial-streams",
        env = "MOQ_QUIC_INITIAL_STREAMS",
        value_name = "N",
        default_value_t = 16
    )]
    pub quic_initial_streams: u32,

    /// Largest UDP payload MTU discovery may try, and the largest accepted (1200–65527). Raise
    /// it (~8950) for peers on a jumbo-frame network (e.g. publishers in the same data centre),
    /// which must set it too; other peers only cost a few lost probes.
    #[arg(
        long = "quic-max-mtu",
        env = "MOQ_QUIC_MAX_MTU",
        value_name = "BYTES",
        value_parser = clap::value_parser!(u16).range(MTU_RANGE),
        default_value_t = moq_native::DEFAULT_MAX_MTU
    )]
    pub quic_max_mtu: u16,

    /// Congestion controller for every connection: cubic (quinn's default, loss-based), bbr
    /// (model-based, keeps queues short; quinn marks it experimental) or new-reno (RFC 9002's
    /// baseline).
    #[arg(
        long = "quic-congestion",
        env = "MOQ_QUIC_CONGESTION",
        value_name = "CC",
        value_enum,
        default_value_t
    )]
    #[serde(with = "congestion")]
    pub quic_congestion: moq_native::Congestion,

    /// UDP generic segmentation offload: hand the kernel up to ten packets in one send. Off
    /// costs CPU per viewer; turn it off where a shaper on this host must see packets one by one
    /// (a test link in a network namespace), or for a NIC that mishandles it. [default: true]
    #[arg(
        long = "quic-gso",
        env = "MOQ_QUIC_GSO",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub quic_gso: Option<bool>,

    /// `[server.tls]`: the certificates.
    #[command(flatten, next_help_heading = "TLS")]
    pub tls: Tls,
}

/// `[server.tls]`: certificates, given or generated. Each key takes one value or a list.
#[derive(Args, Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM certificate chain (repeatable; pairs with --tls-key by position).
    #[arg(
        id = "tls_cert",
        long = "tls-cert",
        env = "MOQ_SERVER_TLS_CERT",
        value_name = "PATH",
        value_delimiter = ','
    )]
    #[serde(deserialize_with = "one_or_many")]
    pub cert: Vec<PathBuf>,

    /// PEM private key for the --tls-cert at the same position.
    #[arg(
        id = "tls_key",
        long = "tls-key",
        env = "MOQ_SERVER_TLS_KEY",
        value_name = "PATH",
        value_delimiter = ','
    )]
    #[serde(deserialize_with = "one_or_many")]
    pub key: Vec<PathBuf>,

    /// Generate a self-signed certificate (valid < 14 days, new at every start) for these hostnames.
    #[arg(
        id = "tls_generate",
        long = "tls-generate",
        env = "MOQ_SERVER_TLS_GENERATE",
        value_name = "HOST",
        value_delimiter = ','
    )]
    #[serde(deserialize_with = "one_or_many")]
    pub generate: Vec<String>,
}

/// `[auth]`: at least one of `key` and `public` is required.
#[derive(Args, Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// Key (JWK file, base64url as written by `moq-token generate`) that signs client tokens.
    #[arg(
        id = "auth_key",
        long = "auth-key",
        env = "MOQ_AUTH_KEY",
        value_name = "PATH"
    )]
    pub key: Option<PathBuf>,

    /// Path prefix anyone may publish and subscribe under without a token ("" = everything).
    #[arg(
        id = "auth_public",
        long = "auth-public",
        env = "MOQ_AUTH_PUBLIC",
        value_name = "PREFIX"
    )]
    pub public: Option<String>,
}

/// `[web]`: the public HTTP listener.
#[derive(Args, Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Web {
    /// `[web.http]`.
    #[command(flatten)]
    pub http: WebHttp,

    /// `[web.https]`.
    #[command(flatten)]
    #[serde(default)]
    pub https: WebHttps,

    /// Directory of static files (a web app, e.g. js/demo/dist) served by the HTTP listener for any
    /// path the endpoints above don't claim: `/` → index.html, `/watch` → watch.html.
    #[arg(
        id = "web_root",
        long = "web-root",
        env = "MOQ_WEB_ROOT",
        value_name = "DIR"
    )]
    pub root: Option<PathBuf>,
}

/// `[web.http]`.
#[derive(Args, Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct WebHttp {
    /// TCP address for the HTTP listener: /certificate.sha256, /announced, /fetch, /health.
    /// Use the QUIC port number so http:// client URLs work. [default: off]
    #[arg(
        id = "web_http_listen",
        long = "web-http-listen",
        env = "MOQ_WEB_HTTP_LISTEN",
        value_name = "ADDR"
    )]
    pub listen: Option<SocketAddr>,

    /// Accept moq sessions over WebSocket (QMux; the fallback of browsers where UDP is blocked)
    /// on this listener, at `/` and `/<path>` with the same `?jwt=` as WebTransport.
    /// [default: true]
    #[arg(
        id = "web_ws",
        long = "web-ws",
        env = "MOQ_WEB_WS",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub ws: Option<bool>,
}

/// `[web.https]`.
#[derive(Args, Serialize, Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct WebHttps {
    /// TCP address for the same endpoints and WebSocket sessions over TLS, with the QUIC
    /// certificate (--tls-cert or --tls-generate): `wss://` for browsers on `https://` pages
    /// where UDP is blocked. Use the QUIC port number (TCP 443 beside UDP 443).
    /// [default: off]
    #[arg(
        id = "web_https_listen",
        long = "web-https-listen",
        env = "MOQ_WEB_HTTPS_LISTEN",
        value_name = "ADDR"
    )]
    pub listen: Option<SocketAddr>,
}

/// `[internal]`: the private listener.
#[derive(Args, Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Internal {
    /// TCP address for the internal listener: /metrics (Prometheus) and /health. Keep it
    /// private. [default: off]
    #[arg(
        id = "internal_listen",
        long = "internal-listen",
        env = "MOQ_INTERNAL_LISTEN",
        value_name = "ADDR"
    )]
    pub listen: Option<SocketAddr>,
}

/// Default `--cluster-resolve-interval`: how often a peer's host name is resolved again (a
/// pod that joins a headless Service is linked within this time).
pub const RESOLVE_INTERVAL: &str = "30s";

/// `[cluster]`: this relay's links to other relays (docs/cluster.md). A link is an ordinary
/// session at `/` that publishes this relay's whole origin and subscribes to the peer's; hop
/// chains keep the routes loop-free (spec §13.1).
#[derive(Args, Serialize, Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Cluster {
    /// This relay's origin (hop) id in the cluster: non-zero, below 2^53 (browsers read hop ids as
    /// JavaScript numbers). [default: random per start]
    #[arg(
        id = "cluster_id",
        long = "cluster-id",
        env = "MOQ_CLUSTER_ID",
        value_name = "N"
    )]
    pub id: Option<u64>,

    /// A peer relay to link to (repeatable, or comma-separated): https://host:port/ (WebTransport),
    /// http://host:port/ (pin the certificate served over HTTP at that port first) or
    /// moql://host:port/ (raw QUIC). `?cost=N` is the link's price (lite-06 route cost), declared in SETUP and not sent in the URL. Redialed forever, with
    /// jittered backoff up to 10 s. A host name links to each of its addresses (see
    /// --cluster-resolve-interval).
    #[arg(
        id = "cluster_connect",
        long = "cluster-connect",
        env = "MOQ_CLUSTER_CONNECT",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub connect: Vec<String>,

    /// A file holding the JWT sent as `?jwt=` on our dials (a token granting publish and
    /// subscribe at `/` on the peers).
    #[arg(
        id = "cluster_token",
        long = "cluster-token",
        env = "MOQ_CLUSTER_TOKEN",
        value_name = "FILE"
    )]
    pub token: Option<PathBuf>,

    /// This relay's advertised address (identity only: it dials nothing).
    #[arg(
        id = "cluster_node",
        long = "cluster-node",
        env = "MOQ_CLUSTER_NODE",
        value_name = "URL"
    )]
    pub node: Option<String>,

    /// How often a --cluster-connect host name is resolved again: each of its addresses gets a
    /// link (a Kubernetes headless Service, a DNS round robin), new ones are dialed and the links
    /// of vanished ones dropped. This relay's own addresses are skipped.
    #[arg(
        id = "cluster_resolve_interval",
        long = "cluster-resolve-interval",
        env = "MOQ_CLUSTER_RESOLVE_INTERVAL",
        value_name = "DURATION",
        value_parser = parse_duration,
        default_value = RESOLVE_INTERVAL
    )]
    #[serde(with = "duration")]
    pub resolve_interval: Duration,

    /// Dial peers without verifying their certificate (tests, private networks).
    #[arg(
        id = "connect_tls_insecure",
        long = "connect-tls-insecure",
        env = "MOQ_CONNECT_TLS_INSECURE",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub connect_tls_insecure: Option<bool>,

    /// Accept a peer whose certificate has this SHA-256 fingerprint (hex; repeatable).
    #[arg(
        id = "connect_tls_fingerprint",
        long = "connect-tls-fingerprint",
        env = "MOQ_CONNECT_TLS_FINGERPRINT",
        value_name = "HEX",
        value_delimiter = ','
    )]
    pub connect_tls_fingerprint: Vec<String>,
}

/// `[limits]`.
#[derive(Args, Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Most concurrent connections, counted from their first packet: those still in their
    /// set-up (see --handshake-timeout) count like sessions. More are refused at once (QUIC
    /// CONNECTION_REFUSED).
    #[arg(
        long = "max-sessions",
        env = "MOQ_MAX_SESSIONS",
        value_name = "N",
        default_value_t = 10_000
    )]
    pub max_sessions: usize,

    /// Time a connection has from its first packet to finish its set-up: the QUIC handshake, the
    /// WebTransport CONNECT and the moq SETUP. Then it is closed (`timeout`, code 3, once the
    /// QUIC handshake is done) and logged.
    #[arg(
        long = "handshake-timeout",
        env = "MOQ_HANDSHAKE_TIMEOUT",
        value_name = "DURATION",
        value_parser = parse_duration,
        default_value = "10s"
    )]
    #[serde(with = "duration")]
    pub handshake_timeout: Duration,
}

/// `[log]`.
#[derive(Args, Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Log {
    /// Log level: error, warn, info, debug, trace (RUST_LOG overrides).
    #[arg(
        id = "log_level",
        long = "log-level",
        env = "MOQ_LOG_LEVEL",
        value_name = "LEVEL",
        default_value = "info"
    )]
    #[serde(with = "level")]
    pub level: tracing::Level,
}

/// The MTUs quinn accepts as a ceiling.
const MTU_RANGE: std::ops::RangeInclusive<i64> = 1200..=65527;

/// Largest --max-sessions: the most permits a Tokio semaphore holds.
const MAX_SESSIONS: usize = tokio::sync::Semaphore::MAX_PERMITS;

impl Config {
    /// Parse the command line `args` (the first is the program name) and the `MOQ_*` variables,
    /// read the TOML file they name, and layer them: defaults < file < variable < flag.
    ///
    /// An error that downcasts to a [`clap::Error`] is `--help`, `--version` or a malformed flag or
    /// variable, for clap to print ([`clap::Error::exit`]); anything else is a bad file or an
    /// invalid value.
    pub fn load_from<I, T>(args: I) -> anyhow::Result<Self>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        // Every value, defaults included: the bottom layer.
        let matches = Self::command().try_get_matches_from(&args)?;
        let mut config = Self::from_arg_matches(&matches)?;
        if let Some(path) = config.file.clone() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            config = Self::with_file(&config, &text)
                .with_context(|| format!("invalid config {}", path.display()))?;
        }
        // Only what a flag or variable set: the same command without its defaults.
        let explicit = Self::command()
            .mut_args(|arg| arg.default_value(None::<&'static str>))
            .try_get_matches_from(&args)?;
        config.update_from_arg_matches(&explicit)?;
        config.validate()?;
        Ok(config)
    }

    /// `base` with the values of the TOML `text` over it.
    fn with_file(base: &Self, text: &str) -> anyhow::Result<Self> {
        let mut file: toml::Table = toml::from_str(text)?;
        // `[server] listen` is another name for `bind`; the base layer always has `bind`.
        if let Some(toml::Value::Table(server)) = file.get_mut("server") {
            if let Some(listen) = server.remove("listen") {
                anyhow::ensure!(
                    server.insert("bind".to_string(), listen).is_none(),
                    "[server] has both bind and listen"
                );
            }
        }
        Figment::from(Serialized::defaults(base))
            .merge(Serialized::defaults(file))
            .extract()
            .map_err(|errors| {
                // Each as `server.bind: invalid socket address syntax`.
                let messages: Vec<String> = errors
                    .into_iter()
                    .map(|err| match err.path.is_empty() {
                        true => err.kind.to_string(),
                        false => format!("{}: {}", err.path.join("."), err.kind),
                    })
                    .collect();
                anyhow::anyhow!(messages.join("; "))
            })
    }

    /// The checks no single value's type makes.
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.limits.handshake_timeout.is_zero(),
            "handshake_timeout must be more than 0"
        );
        let max_sessions = self.limits.max_sessions;
        anyhow::ensure!(
            (1..=MAX_SESSIONS).contains(&max_sessions),
            "max_sessions {max_sessions}: must be 1..={MAX_SESSIONS}"
        );
        if let Some(id) = self.cluster.id {
            anyhow::ensure!(
                (1..1u64 << 53).contains(&id),
                "cluster id {id}: must be 1..2^53 (browsers read hop ids as JavaScript numbers)"
            );
        }
        anyhow::ensure!(
            !self.cluster.resolve_interval.is_zero(),
            "cluster resolve_interval must be more than 0"
        );
        let mtu = self.server.quic_max_mtu;
        anyhow::ensure!(
            MTU_RANGE.contains(&i64::from(mtu)),
            "quic_max_mtu {mtu}: must be 1200..=65527"
        );
        Ok(())
    }
}

/// A duration: a humantime string (`500ms`, `10s`, `2m`, `1h 30m`) or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| format!("duration {s:?} is too long"));
    }
    humantime::parse_duration(s)
        .map_err(|err| format!("invalid duration {s:?} ({err}; e.g. 5s, 500ms)"))
}

/// Durations in the file: strings as [`parse_duration`] reads them.
mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Log levels in the file: `error` … `trace`, any case.
mod level {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(level: &tracing::Level, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(level)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<tracing::Level, D::Error> {
        let text = String::deserialize(d)?;
        text.parse()
            .map_err(|_| serde::de::Error::custom(format!("invalid log level {text:?}")))
    }
}

/// Congestion controllers in the file: the flag's names, any case.
mod congestion {
    use clap::ValueEnum;
    use moq_native::Congestion;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(cc: &Congestion, s: S) -> Result<S::Ok, S::Error> {
        let value = cc
            .to_possible_value()
            .ok_or_else(|| serde::ser::Error::custom("a hidden congestion controller"))?;
        s.serialize_str(value.get_name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Congestion, D::Error> {
        let text = String::deserialize(d)?;
        Congestion::from_str(&text, true).map_err(|_| {
            serde::de::Error::custom(format!("{text:?}: must be cubic, bbr or new-reno"))
        })
    }
}

/// A list in the file that may also be written as its one item.
fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        One(T),
        Many(Vec<T>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(item) => vec![item],
        OneOrMany::Many(items) => items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Mutex;

    /// Tests that set `MOQ_*` variables, or parse with them, take turns: clap reads the process
    /// environment.
    static ENV: Mutex<()> = Mutex::new(());

    /// Load `args` (after the program name) with `env` set and no other `MOQ_*` variable.
    fn load_with(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Config> {
        let _turn = ENV.lock().unwrap_or_else(|e| e.into_inner());
        for (key, _) in std::env::vars() {
            if key.starts_with("MOQ_") {
                std::env::remove_var(key);
            }
        }
        for (key, value) in env {
            std::env::set_var(key, value);
        }
        let config = Config::load_from(std::iter::once("moq-relay").chain(args.iter().copied()));
        for (key, _) in env {
            std::env::remove_var(key);
        }
        config
    }

    fn load(args: &[&str]) -> anyhow::Result<Config> {
        load_with(args, &[])
    }

    /// A TOML file in the temp dir, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(text: &str) -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "moq-relay-config-test-{}-{}.toml",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, text).unwrap();
            Self(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// One option as each source spells it, set to a value that is not its default.
    struct Case {
        /// The flag and its value(s).
        flag: &'static [&'static str],
        /// The variable and its value.
        env: (&'static str, &'static str),
        /// The TOML file.
        toml: &'static str,
        /// Whether a configuration holds the value.
        check: fn(&Config) -> bool,
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn paths(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    /// Every option (and alias), the way docs/relay.md lists them.
    const CASES: &[Case] = &[
        Case {
            flag: &["--server-bind", "127.0.0.1:4321"],
            env: ("MOQ_SERVER_BIND", "127.0.0.1:4321"),
            toml: "[server]\nbind = \"127.0.0.1:4321\"",
            check: |c| c.server.bind == addr("127.0.0.1:4321"),
        },
        Case {
            flag: &["--listen", "127.0.0.1:4322"],
            env: ("MOQ_SERVER_BIND", "127.0.0.1:4322"),
            toml: "[server]\nlisten = \"127.0.0.1:4322\"",
            check: |c| c.server.bind == addr("127.0.0.1:4322"),
        },
        Case {
            flag: &["--tls-cert", "a.pem"],
            env: ("MOQ_SERVER_TLS_CERT", "a.pem"),
            toml: "[server.tls]\ncert = \"a.pem\"",
            check: |c| c.server.tls.cert == paths(&["a.pem"]),
        },
        Case {
            flag: &["--tls-cert", "a.pem", "--tls-cert", "b.pem"],
            env: ("MOQ_SERVER_TLS_CERT", "a.pem,b.pem"),
            toml: "[server.tls]\ncert = [\"a.pem\", \"b.pem\"]",
            check: |c| c.server.tls.cert == paths(&["a.pem", "b.pem"]),
        },
        Case {
            flag: &["--tls-key", "a.key"],
            env: ("MOQ_SERVER_TLS_KEY", "a.key"),
            toml: "[server.tls]\nkey = \"a.key\"",
            check: |c| c.server.tls.key == paths(&["a.key"]),
        },
        Case {
            flag: &["--tls-key", "a.key,b.key"],
            env: ("MOQ_SERVER_TLS_KEY", "a.key,b.key"),
            toml: "[server.tls]\nkey = [\"a.key\", \"b.key\"]",
            check: |c| c.server.tls.key == paths(&["a.key", "b.key"]),
        },
        Case {
            flag: &["--tls-generate", "localhost"],
            env: ("MOQ_SERVER_TLS_GENERATE", "localhost"),
            toml: "[server.tls]\ngenerate = \"localhost\"",
            check: |c| c.server.tls.generate == ["localhost"],
        },
        Case {
            flag: &["--server-protocol", "moq-lite-03,moql"],
            env: ("MOQ_SERVER_PROTOCOL", "moq-lite-03,moql"),
            toml: "[server]\nprotocols = [\"moq-lite-03\", \"moql\"]",
            check: |c| c.server.protocols == ["moq-lite-03", "moql"],
        },
        Case {
            flag: &["--auth-key", "root.jwk"],
            env: ("MOQ_AUTH_KEY", "root.jwk"),
            toml: "[auth]\nkey = \"root.jwk\"",
            check: |c| c.auth.key == Some(PathBuf::from("root.jwk")),
        },
        Case {
            flag: &["--auth-public", "anon"],
            env: ("MOQ_AUTH_PUBLIC", "anon"),
            toml: "[auth]\npublic = \"anon\"",
            check: |c| c.auth.public.as_deref() == Some("anon"),
        },
        Case {
            flag: &["--web-http-listen", "127.0.0.1:4323"],
            env: ("MOQ_WEB_HTTP_LISTEN", "127.0.0.1:4323"),
            toml: "[web.http]\nlisten = \"127.0.0.1:4323\"",
            check: |c| c.web.http.listen == Some(addr("127.0.0.1:4323")),
        },
        Case {
            flag: &["--web-root", "/srv/www"],
            env: ("MOQ_WEB_ROOT", "/srv/www"),
            toml: "[web]\nroot = \"/srv/www\"",
            check: |c| c.web.root == Some(PathBuf::from("/srv/www")),
        },
        Case {
            flag: &["--internal-listen", "127.0.0.1:4324"],
            env: ("MOQ_INTERNAL_LISTEN", "127.0.0.1:4324"),
            toml: "[internal]\nlisten = \"127.0.0.1:4324\"",
            check: |c| c.internal.listen == Some(addr("127.0.0.1:4324")),
        },
        Case {
            flag: &["--max-sessions", "42"],
            env: ("MOQ_MAX_SESSIONS", "42"),
            toml: "[limits]\nmax_sessions = 42",
            check: |c| c.limits.max_sessions == 42,
        },
        Case {
            flag: &["--handshake-timeout", "3s"],
            env: ("MOQ_HANDSHAKE_TIMEOUT", "3s"),
            toml: "[limits]\nhandshake_timeout = \"3s\"",
            check: |c| c.limits.handshake_timeout == Duration::from_secs(3),
        },
        Case {
            flag: &["--shutdown-timeout", "750ms"],
            env: ("MOQ_SHUTDOWN_TIMEOUT", "750ms"),
            toml: "[server]\nshutdown_timeout = \"750ms\"",
            check: |c| c.server.shutdown_timeout == Duration::from_millis(750),
        },
        Case {
            flag: &["--quic-idle-timeout", "2500"],
            env: ("MOQ_QUIC_IDLE_TIMEOUT", "2500"),
            toml: "[server]\nquic_idle_timeout = 2500",
            check: |c| c.server.quic_idle_timeout == 2500,
        },
        Case {
            flag: &["--quic-ack-threshold", "4"],
            env: ("MOQ_QUIC_ACK_THRESHOLD", "4"),
            toml: "[server]\nquic_ack_threshold = 4",
            check: |c| c.server.quic_ack_threshold == 4,
        },
        Case {
            flag: &["--quic-socket-buffer", "65536"],
            env: ("MOQ_QUIC_SOCKET_BUFFER", "65536"),
            toml: "[server]\nquic_socket_buffer = 65536",
            check: |c| c.server.quic_socket_buffer == 65536,
        },
        Case {
            flag: &["--quic-max-streams-uni", "64"],
            env: ("MOQ_QUIC_MAX_STREAMS_UNI", "64"),
            toml: "[server]\nquic_max_streams_uni = 64",
            check: |c| c.server.quic_max_streams_uni == 64,
        },
        Case {
            flag: &["--quic-max-streams-bidi", "32"],
            env: ("MOQ_QUIC_MAX_STREAMS_BIDI", "32"),
            toml: "[server]\nquic_max_streams_bidi = 32",
            check: |c| c.server.quic_max_streams_bidi == 32,
        },
        Case {
            flag: &["--quic-initial-streams", "0"],
            env: ("MOQ_QUIC_INITIAL_STREAMS", "0"),
            toml: "[server]\nquic_initial_streams = 0",
            check: |c| c.server.quic_initial_streams == 0,
        },
        Case {
            flag: &["--quic-max-mtu", "8950"],
            env: ("MOQ_QUIC_MAX_MTU", "8950"),
            toml: "[server]\nquic_max_mtu = 8950",
            check: |c| c.server.quic_max_mtu == 8950,
        },
        Case {
            flag: &["--quic-congestion", "bbr"],
            env: ("MOQ_QUIC_CONGESTION", "bbr"),
            toml: "[server]\nquic_congestion = \"bbr\"",
            check: |c| c.server.quic_congestion == moq_native::Congestion::Bbr,
        },
        Case {
            flag: &["--quic-gso", "false"],
            env: ("MOQ_QUIC_GSO", "false"),
            toml: "[server]\nquic_gso = false",
            check: |c| c.server.quic_gso == Some(false),
        },
        Case {
            flag: &["--server-workers", "3"],
            env: ("MOQ_SERVER_WORKERS", "3"),
            toml: "[server]\nworkers = 3",
            check: |c| c.server.workers == 3,
        },
        Case {
            flag: &["--workers", "0"],
            env: ("MOQ_SERVER_WORKERS", "0"),
            toml: "[server]\nworkers = 0",
            check: |c| c.server.workers == 0,
        },
        Case {
            flag: &["--log-level", "debug"],
            env: ("MOQ_LOG_LEVEL", "debug"),
            toml: "[log]\nlevel = \"debug\"",
            check: |c| c.log.level == tracing::Level::DEBUG,
        },
        Case {
            flag: &["--cluster-id", "7"],
            env: ("MOQ_CLUSTER_ID", "7"),
            toml: "[cluster]\nid = 7",
            check: |c| c.cluster.id == Some(7),
        },
        Case {
            flag: &["--cluster-connect", "moql://a:1/,https://b:2/?cost=3"],
            env: ("MOQ_CLUSTER_CONNECT", "moql://a:1/,https://b:2/?cost=3"),
            toml: "[cluster]\nconnect = [\"moql://a:1/\", \"https://b:2/?cost=3\"]",
            check: |c| c.cluster.connect == ["moql://a:1/", "https://b:2/?cost=3"],
        },
        Case {
            flag: &["--cluster-token", "peer.jwt"],
            env: ("MOQ_CLUSTER_TOKEN", "peer.jwt"),
            toml: "[cluster]\ntoken = \"peer.jwt\"",
            check: |c| c.cluster.token == Some(PathBuf::from("peer.jwt")),
        },
        Case {
            flag: &["--cluster-node", "https://me:4443/"],
            env: ("MOQ_CLUSTER_NODE", "https://me:4443/"),
            toml: "[cluster]\nnode = \"https://me:4443/\"",
            check: |c| c.cluster.node.as_deref() == Some("https://me:4443/"),
        },
        Case {
            flag: &["--cluster-resolve-interval", "2s"],
            env: ("MOQ_CLUSTER_RESOLVE_INTERVAL", "2s"),
            toml: "[cluster]\nresolve_interval = \"2s\"",
            check: |c| c.cluster.resolve_interval == Duration::from_secs(2),
        },
        Case {
            flag: &["--connect-tls-insecure"],
            env: ("MOQ_CONNECT_TLS_INSECURE", "true"),
            toml: "[cluster]\nconnect_tls_insecure = true",
            check: |c| c.cluster.connect_tls_insecure == Some(true),
        },
        Case {
            flag: &["--connect-tls-fingerprint", "ab12"],
            env: ("MOQ_CONNECT_TLS_FINGERPRINT", "ab12"),
            toml: "[cluster]\nconnect_tls_fingerprint = [\"ab12\"]",
            check: |c| c.cluster.connect_tls_fingerprint == ["ab12"],
        },
        Case {
            flag: &["--port-file", "ports.json"],
            env: ("MOQ_PORT_FILE", "ports.json"),
            toml: "port_file = \"ports.json\"",
            check: |c| c.port_file == Some(PathBuf::from("ports.json")),
        },
    ];

    #[test]
    fn no_case_holds_by_default() {
        let defaults = load(&[]).unwrap();
        for case in CASES {
            assert!(!(case.check)(&defaults), "{:?} is a default", case.flag);
        }
    }

    #[test]
    fn every_option_from_a_flag() {
        for case in CASES {
            let config = load(case.flag).unwrap_or_else(|err| panic!("{:?}: {err:#}", case.flag));
            assert!((case.check)(&config), "{:?}: {config:#?}", case.flag);
        }
    }

    #[test]
    fn every_option_from_a_variable() {
        for case in CASES {
            let config =
                load_with(&[], &[case.env]).unwrap_or_else(|err| panic!("{:?}: {err:#}", case.env));
            assert!((case.check)(&config), "{:?}: {config:#?}", case.env);
        }
    }

    #[test]
    fn every_option_from_the_file() {
        for case in CASES {
            let file = TempFile::new(case.toml);
            let config =
                load(&[file.path()]).unwrap_or_else(|err| panic!("{:?}: {err:#}", case.toml));
            assert!((case.check)(&config), "{:?}: {config:#?}", case.toml);
        }
    }

    /// defaults < file < variable < flag.
    #[test]
    fn a_flag_beats_a_variable_beats_the_file_beats_the_default() {
        let file = TempFile::new(
            "[server]\nbind = \"127.0.0.1:1001\"\nquic_ack_threshold = 7\nworkers = 2\n\
             [limits]\nmax_sessions = 100\nhandshake_timeout = \"3s\"\n[log]\nlevel = \"warn\"\n",
        );
        let config = load_with(
            &[
                file.path(),
                "--listen",
                "127.0.0.1:1003",
                "--quic-ack-threshold",
                "10",
            ],
            &[
                ("MOQ_SERVER_BIND", "127.0.0.1:1002"),
                ("MOQ_MAX_SESSIONS", "200"),
            ],
        )
        .unwrap();
        assert_eq!(
            config.server.bind,
            addr("127.0.0.1:1003"),
            "flag over variable"
        );
        assert_eq!(config.limits.max_sessions, 200, "variable over file");
        assert_eq!(
            config.server.quic_ack_threshold, 10,
            "a flag with the default's value still beats the file"
        );
        assert_eq!(config.server.workers, 2, "the file over the default");
        assert_eq!(config.limits.handshake_timeout, Duration::from_secs(3));
        assert_eq!(config.log.level, tracing::Level::WARN);
        assert_eq!(
            config.server.quic_max_streams_uni,
            moq_native::DEFAULT_MAX_STREAMS_UNI,
            "the default where nothing is given"
        );
        assert_eq!(config.file.as_deref(), Some(file.0.as_path()));
    }

    #[test]
    fn unknown_keys_and_bad_values_in_the_file_are_errors() {
        for (toml, needle) in [
            ("[server]\nbogus = 1", "bogus"),
            ("bogus = 1", "bogus"),
            ("[bogus]\nx = 1", "bogus"),
            ("[server]\nquic_max_mtu = 100", "quic_max_mtu"),
            ("[server]\nquic_congestion = \"vegas\"", "quic_congestion"),
            ("[server]\nbind = \"nowhere\"", "bind"),
            (
                "[limits]\nhandshake_timeout = \"soon\"",
                "handshake_timeout",
            ),
            ("[limits]\nhandshake_timeout = \"0s\"", "handshake_timeout"),
            ("[limits]\nmax_sessions = 0", "max_sessions"),
            ("[log]\nlevel = \"loud\"", "level"),
            (
                "[server]\nbind = \"127.0.0.1:1\"\nlisten = \"127.0.0.1:2\"",
                "listen",
            ),
            ("[server", "invalid config"),
        ] {
            let file = TempFile::new(toml);
            let err = load(&[file.path()]).expect_err(toml);
            assert!(format!("{err:#}").contains(needle), "{toml}: {err:#}");
        }
        let err = load(&["/nonexistent/relay.toml"]).unwrap_err();
        assert!(format!("{err:#}").contains("cannot read"), "{err:#}");
    }

    #[test]
    fn bad_flags_and_variables_are_errors() {
        for args in [
            &["--quic-max-mtu", "1000"][..],
            &["--quic-congestion", "vegas"],
            &["--max-sessions", "0"],
            &["--handshake-timeout", "0s"],
            &["--handshake-timeout", "soon"],
            &["--server-bind", "nowhere"],
            &["--bogus"],
        ] {
            assert!(load(args).is_err(), "{args:?}");
        }
        let max = usize::MAX.to_string();
        assert!(load(&["--max-sessions", &max]).is_err());
        assert!(load_with(&[], &[("MOQ_MAX_SESSIONS", "many")]).is_err());
        let err = load(&["--help"]).unwrap_err();
        assert!(err.downcast_ref::<clap::Error>().is_some(), "{err:#}");
    }

    #[test]
    fn durations_old_and_humantime() {
        for (text, want) in [
            ("5s", Duration::from_secs(5)),
            ("250ms", Duration::from_millis(250)),
            ("5", Duration::from_secs(5)),
            ("0", Duration::ZERO),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("1m 30s", Duration::from_secs(90)),
            ("1500us", Duration::from_micros(1500)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
        for bad in [
            "",
            "soon",
            "5x",
            "-1s",
            &format!("{}m", u64::MAX),
            &format!("{}0", u64::MAX),
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    /// The configuration the container image, the systemd unit and the Kubernetes manifests use.
    #[test]
    fn deploy_file_loads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/relay.toml");
        let config = load(&[path]).unwrap_or_else(|err| panic!("{path}: {err:#}"));
        assert_eq!(config.server.bind, addr("[::]:4443"));
        assert_eq!(config.internal.listen, Some(addr("[::]:9090")));
        assert_eq!(config.auth.public.as_deref(), Some("anon"));
    }

    /// The example files in dev/ load as they are.
    #[test]
    fn dev_files_load() {
        let dev = concat!(env!("CARGO_MANIFEST_DIR"), "/../../dev");
        let mut loaded = 0;
        for entry in std::fs::read_dir(dev).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let config = load(&[path.to_str().unwrap()])
                    .unwrap_or_else(|err| panic!("{}: {err:#}", path.display()));
                let tls = &config.server.tls;
                assert!(
                    !tls.generate.is_empty() || !tls.cert.is_empty(),
                    "{}: the file's [server.tls] was not applied",
                    path.display()
                );
                loaded += 1;
            }
        }
        assert!(loaded >= 3, "{loaded} files in {dev}");
    }
}
