//! QUIC transport tuning shared by the client and the server.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use quinn::congestion;

/// Congestion controller for QUIC connections.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Congestion {
    /// CUBIC (quinn's default): well tested, loss-based.
    #[default]
    Cubic,
    /// BBR (quinn's implementation is marked experimental): model-based, keeps queues short,
    /// which suits live media, but less exercised than CUBIC.
    Bbr,
    /// NewReno: the RFC 9002 baseline.
    NewReno,
}

/// QUIC transport settings, applied to both client and server connections.
///
/// Flags: `--quic-idle-timeout`, `--quic-keep-alive`, `--quic-mtu-discovery`, `--quic-max-mtu`,
/// `--quic-gso`, `--quic-congestion`, `--quic-socket-buffer`, `--quic-ack-threshold`,
/// `--quic-max-streams-uni`, `--quic-max-streams-bidi`.
///
/// [`QuicServerConfig`](crate::QuicServerConfig) flattens these flags;
/// [`QuicClientConfig`](crate::QuicClientConfig) does not (clap rejects the same flag twice in one
/// binary), so a binary with both copies the server's into the client
/// (`client.quic = server.quic.clone()`), and a client-only binary flattens a `QuicConfig`
/// of its own and does the same.
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
pub struct QuicConfig {
    /// Close a connection after this many milliseconds without packets from the peer (0 = never).
    #[arg(
        long = "quic-idle-timeout",
        default_value_t = 10_000,
        env = "MOQ_QUIC_IDLE_TIMEOUT"
    )]
    pub idle_timeout_ms: u64,

    /// Send a keep-alive packet after this many idle milliseconds (0 = never).
    #[arg(
        long = "quic-keep-alive",
        default_value_t = 4_000,
        env = "MOQ_QUIC_KEEP_ALIVE"
    )]
    pub keep_alive_ms: u64,

    /// Probe for a path MTU larger than 1200 bytes (PLPMTUD).
    #[arg(long = "quic-mtu-discovery", default_value_t = true, action = clap::ArgAction::Set, env = "MOQ_QUIC_MTU_DISCOVERY")]
    pub mtu_discovery: bool,

    /// Largest UDP payload MTU discovery may try, and the largest we accept from peers (bytes,
    /// 1200–65527). The default suits Ethernet paths; where both ends sit on a jumbo-frame
    /// network (a publisher and a relay in one data centre) ~8950 works: fewer, larger packets
    /// cost the relay less CPU per byte. A path that does not carry the size only costs a few
    /// lost probes.
    #[arg(
        long = "quic-max-mtu",
        default_value_t = DEFAULT_MAX_MTU,
        value_parser = clap::value_parser!(u16).range(1200..=65527),
        env = "MOQ_QUIC_MAX_MTU"
    )]
    pub max_mtu: u16,

    /// Use UDP generic segmentation offload when the OS supports it.
    #[arg(long = "quic-gso", default_value_t = true, action = clap::ArgAction::Set, env = "MOQ_QUIC_GSO")]
    pub gso: bool,

    /// Congestion controller.
    #[arg(long = "quic-congestion", value_enum, default_value_t = Congestion::Cubic, env = "MOQ_QUIC_CONGESTION")]
    pub congestion: Congestion,

    /// UDP socket receive and send buffer, in bytes. The kernel's default (~208 KiB) overflows
    /// with ACKs from hundreds of viewers; Linux caps the value at net.core.rmem_max/wmem_max.
    #[arg(
        long = "quic-socket-buffer",
        default_value_t = DEFAULT_SOCKET_BUFFER,
        env = "MOQ_QUIC_SOCKET_BUFFER"
    )]
    pub socket_buffer: usize,

    /// Ask peers to acknowledge only every this many ack-eliciting packets (QUIC ACK frequency
    /// extension, used when the peer supports it; 0 or 1 = the standard every second packet).
    /// Fewer ACKs to process is most of a fan-out relay's receive work.
    #[arg(
        long = "quic-ack-threshold",
        default_value_t = DEFAULT_ACK_THRESHOLD,
        env = "MOQ_QUIC_ACK_THRESHOLD"
    )]
    pub ack_threshold: u32,

    /// Unidirectional streams (groups) the peer may have open towards us at once. quinn
    /// allocates state for every allowed stream up front, so this is memory per connection
    /// (~45 bytes a stream; what it costs per idle viewer: docs/performance-notebook.md).
    #[arg(long = "quic-max-streams-uni", default_value_t = DEFAULT_MAX_STREAMS_UNI, env = "MOQ_QUIC_MAX_STREAMS_UNI")]
    pub max_streams_uni: u32,

    /// Bidirectional streams (subscriptions, announce and track requests) the peer may have open
    /// towards us at once (~90 bytes of state each, allocated up front).
    #[arg(long = "quic-max-streams-bidi", default_value_t = DEFAULT_MAX_STREAMS_BIDI, env = "MOQ_QUIC_MAX_STREAMS_BIDI")]
    pub max_streams_bidi: u32,

    /// Streams of each direction a peer may open at first, when the moq-lite session raises the
    /// allowance with use up to the maxima (`moq_lite::StreamWindow`); 0 = the maxima from the
    /// start. Saves quinn's up-front per-stream state on connections that use few streams.
    #[arg(
        long = "quic-initial-streams",
        default_value_t = 0,
        env = "MOQ_QUIC_INITIAL_STREAMS"
    )]
    pub initial_streams: u32,
}

/// Default [`QuicConfig::max_mtu`]: an Ethernet MTU (1500) less IPv6 and UDP headers, quinn's
/// own default upper bound.
pub const DEFAULT_MAX_MTU: u16 = 1452;

/// Default [`QuicConfig::ack_threshold`].
pub const DEFAULT_ACK_THRESHOLD: u32 = 0;

/// Default UDP socket buffer: 8 MiB each way.
pub const DEFAULT_SOCKET_BUFFER: usize = 8 << 20;

impl Default for QuicConfig {
    /// The same values as the flags' defaults.
    fn default() -> Self {
        Self {
            idle_timeout_ms: 10_000,
            keep_alive_ms: 4_000,
            mtu_discovery: true,
            max_mtu: DEFAULT_MAX_MTU,
            gso: true,
            congestion: Congestion::Cubic,
            socket_buffer: DEFAULT_SOCKET_BUFFER,
            ack_threshold: DEFAULT_ACK_THRESHOLD,
            max_streams_uni: DEFAULT_MAX_STREAMS_UNI,
            max_streams_bidi: DEFAULT_MAX_STREAMS_BIDI,
            initial_streams: 0,
        }
    }
}

/// Default [`QuicConfig::max_streams_uni`]: group streams a peer may have open towards us at once
/// (one per group in flight: plenty for live media, whose old groups finish or expire).
pub const DEFAULT_MAX_STREAMS_UNI: u32 = 100;

/// Default [`QuicConfig::max_streams_bidi`]: subscriptions, announce and track requests a peer
/// may have open towards us at once.
///
/// With the uni default this keeps quinn's per-connection stream tables at their smaller size:
/// it keeps one hash map entry per allowed peer stream (receive side: uni + bidi, ours included;
/// send side: peer bidi + ours), and 100 + 128 entries needed 512 buckets where 100 + 100 fit in
/// 256, which shows in the relay's memory per idle viewer (docs/performance-notebook.md).
pub const DEFAULT_MAX_STREAMS_BIDI: u32 = 100;

/// [`QuicConfig::keep_alive_ms`] of client binaries (see [`QuicConfig::client_defaults`]).
pub const CLIENT_KEEP_ALIVE_MS: u64 = 1_000;

/// [`QuicConfig::idle_timeout_ms`] of client binaries (see [`QuicConfig::client_defaults`]).
pub const CLIENT_IDLE_TIMEOUT_MS: u64 = 3_000;

impl QuicConfig {
    /// `command`, which flattens a `QuicConfig`, with the client defaults of `--quic-keep-alive`
    /// ([`CLIENT_KEEP_ALIVE_MS`]) and `--quic-idle-timeout` ([`CLIENT_IDLE_TIMEOUT_MS`]).
    ///
    /// A server that vanishes without closing (killed, crashed, its host gone) is only noticed
    /// when the idle timeout expires; a client that reconnects wants to notice within a few
    /// seconds, not the server's 10. QUIC uses the smaller of the two ends' idle timeouts, so the
    /// server side of the connection uses it too; the 1 s keep-alive keeps an idle but healthy
    /// connection well inside it (three keep-alives per timeout). Servers keep their defaults.
    ///
    /// Panics if `command` has no `QuicConfig` flags (a programming error, caught by any test
    /// that builds the command).
    pub fn client_defaults(command: clap::Command) -> clap::Command {
        // clap takes static strings here; the unit test checks they parse to the constants.
        command
            .mut_arg("keep_alive_ms", |arg| arg.default_value("1000"))
            .mut_arg("idle_timeout_ms", |arg| arg.default_value("3000"))
    }

    /// Build the quinn transport config ([`Error::Config`](crate::Error::Config) for an idle
    /// timeout past QUIC's limit).
    pub fn transport(&self) -> Result<Arc<quinn::TransportConfig>, crate::Error> {
        let mut transport = quinn::TransportConfig::default();

        let idle = match self.idle_timeout_ms {
            0 => None,
            ms => Some(
                quinn::IdleTimeout::try_from(Duration::from_millis(ms)).map_err(|err| {
                    crate::Error::Config {
                        what: format!("--quic-idle-timeout {ms}: too long"),
                        source: Some(err.into()),
                    }
                })?,
            ),
        };
        transport.max_idle_timeout(idle);

        let keep_alive = match self.keep_alive_ms {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        };
        transport.keep_alive_interval(keep_alive);

        transport.mtu_discovery_config(self.mtu_discovery.then(|| {
            let mut mtu = quinn::MtuDiscoveryConfig::default();
            mtu.upper_bound(self.max_mtu);
            mtu
        }));
        transport.enable_segmentation_offload(self.gso);
        if self.ack_threshold > 1 {
            let mut ack = quinn::AckFrequencyConfig::default();
            // The peer may receive this many ack-eliciting packets before it must ACK.
            ack.ack_eliciting_threshold(quinn::VarInt::from_u32(self.ack_threshold - 1));
            transport.ack_frequency_config(Some(ack));
        }
        let initial = |max: u32| match self.initial_streams {
            0 => max,
            n => n.min(max),
        };
        transport.max_concurrent_uni_streams(initial(self.max_streams_uni).into());
        transport.max_concurrent_bidi_streams(initial(self.max_streams_bidi).into());

        let factory: Arc<dyn congestion::ControllerFactory + Send + Sync> = match self.congestion {
            Congestion::Cubic => Arc::new(congestion::CubicConfig::default()),
            Congestion::Bbr => Arc::new(congestion::BbrConfig::default()),
            Congestion::NewReno => Arc::new(congestion::NewRenoConfig::default()),
        };
        transport.congestion_controller_factory(factory);

        Ok(Arc::new(transport))
    }
}

/// Bind a UDP socket for a QUIC endpoint: dual-stack when bound to `[::]`, with
/// `socket_buffer`-byte receive and send buffers (best effort: the kernel may cap them, which is
/// logged with the sysctl to raise). With `reuse_port`, `SO_REUSEPORT` is set first, so several
/// sockets can share the port and Linux spreads peers over them by address (server workers).
pub(crate) fn bind_udp(
    addr: SocketAddr,
    socket_buffer: usize,
    reuse_port: bool,
) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // Serve IPv4 too on [::] (std's default on Linux, made explicit).
        let _ = socket.set_only_v6(false);
    }
    if socket_buffer > 0 {
        let _ = socket.set_recv_buffer_size(socket_buffer);
        let _ = socket.set_send_buffer_size(socket_buffer);
        // Linux reports twice the granted size (bookkeeping overhead included).
        let granted = socket.recv_buffer_size().unwrap_or(0) / 2;
        if granted < socket_buffer {
            tracing::info!(
                requested = socket_buffer,
                granted,
                "UDP receive buffer capped by the kernel; raise net.core.rmem_max/wmem_max for many viewers"
            );
        }
    }
    if reuse_port {
        #[cfg(unix)]
        socket.set_reuse_port(true)?;
        #[cfg(not(unix))]
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "several server workers need SO_REUSEPORT (Linux and other Unix systems)",
        ));
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// A quinn endpoint over [`bind_udp`]'s socket, accepting datagrams up to `quic.max_mtu`
/// (never less than quinn's default, an Ethernet frame's worth).
pub(crate) fn endpoint(
    addr: SocketAddr,
    quic: &QuicConfig,
    server: Option<quinn::ServerConfig>,
) -> std::io::Result<quinn::Endpoint> {
    endpoint_on(
        bind_udp(addr, quic.socket_buffer, false)?,
        endpoint_config(quic)?,
        server,
    )
}

/// The endpoint settings for `quic`, with new random keys for stateless resets and for the
/// check value in our connection IDs (quinn's defaults, made once here so they can be shared).
/// Endpoints sharing a port (server workers) use one config: a packet reaching a worker that does
/// not know its connection then has a connection ID that worker accepts as one of ours and draws
/// a reset the client accepts, so the client learns at once that the connection is gone instead
/// of at its idle timeout.
pub(crate) fn endpoint_config(quic: &QuicConfig) -> std::io::Result<quinn::EndpointConfig> {
    use rand_core::RngCore;
    let mut config = quinn::EndpointConfig::default();
    let cid_key = rand_core::OsRng.next_u64();
    config.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
    });
    let accept = quic.max_mtu.max(config.get_max_udp_payload_size() as u16);
    config
        .max_udp_payload_size(accept)
        .map_err(|e| std::io::Error::other(format!("--quic-max-mtu {accept}: {e}")))?;
    Ok(config)
}

/// A quinn endpoint over a socket from [`bind_udp`], driven by the current Tokio runtime (its
/// connections' drivers are spawned where they are accepted).
pub(crate) fn endpoint_on(
    socket: std::net::UdpSocket,
    config: quinn::EndpointConfig,
    server: Option<quinn::ServerConfig>,
) -> std::io::Result<quinn::Endpoint> {
    let runtime = quinn::default_runtime()
        .ok_or_else(|| std::io::Error::other("no async runtime (needs Tokio)"))?;
    quinn::Endpoint::new(config, server, socket, runtime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        quic: QuicConfig,
    }

    #[test]
    fn bind_udp_is_dual_stack_and_sizes_its_buffers() {
        let wanted = 1 << 20;
        let socket = bind_udp("[::]:0".parse().unwrap(), wanted, false).unwrap();
        let port = socket.local_addr().unwrap().port();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(b"v4", ("127.0.0.1", port)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 8];
        let (n, _) = socket.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"v4", "an IPv4 datagram reaches the [::] socket");

        // The kernel grants up to net.core.rmem_max and reports double what it grants.
        let socket = socket2::SockRef::from(&socket);
        let granted = socket.recv_buffer_size().unwrap() / 2;
        if let Some(max) = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
        {
            assert!(granted >= wanted.min(max), "granted {granted}, max {max}");
        }
    }

    #[test]
    fn flag_defaults_match_default() {
        let cli = Cli::try_parse_from(["test"]).unwrap();
        assert_eq!(cli.quic, QuicConfig::default());
    }

    #[test]
    fn client_defaults_shorten_keep_alive_and_idle_timeout_only() {
        use clap::{CommandFactory, FromArgMatches};
        let command = QuicConfig::client_defaults(Cli::command());
        let cli = Cli::from_arg_matches(&command.clone().get_matches_from(["test"])).unwrap();
        assert_eq!(cli.quic.keep_alive_ms, CLIENT_KEEP_ALIVE_MS);
        assert_eq!(cli.quic.idle_timeout_ms, CLIENT_IDLE_TIMEOUT_MS);
        assert_eq!(
            QuicConfig {
                keep_alive_ms: QuicConfig::default().keep_alive_ms,
                idle_timeout_ms: QuicConfig::default().idle_timeout_ms,
                ..cli.quic
            },
            QuicConfig::default()
        );
        // The flags still override them.
        let matches = command.get_matches_from(["test", "--quic-idle-timeout", "7000"]);
        let cli = Cli::from_arg_matches(&matches).unwrap();
        assert_eq!(cli.quic.idle_timeout_ms, 7000);
    }

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from([
            "test",
            "--quic-idle-timeout",
            "0",
            "--quic-gso",
            "false",
            "--quic-congestion",
            "bbr",
        ])
        .unwrap();
        assert_eq!(cli.quic.idle_timeout_ms, 0);
        assert!(!cli.quic.gso);
        assert_eq!(cli.quic.congestion, Congestion::Bbr);
        cli.quic.transport().unwrap();
    }
}
