//! QUIC, TLS and WebTransport set-up for moq.
//!
//! This crate owns everything between a UDP socket and a `web_transport_quinn::Session`;
//! it knows moq versions only as ALPN / WebTransport protocol strings and never depends on
//! the protocol crate.
//!
//! ```text
//!                       one UDP port (quinn::Endpoint)
//!                                   │ TLS ALPN
//!                  ┌────────────────┴─────────────────┐
//!                 "h3"                       "moq-lite-06" … "moql"
//!          HTTP/3 CONNECT (URL, headers,        raw QUIC session,
//!          WT-Available-Protocols)              URL = moql://<peer>/
//!                  └────────────────┬─────────────────┘
//!                     QuicServer::accept() → Request
//!                  Request::ok() → web_transport_quinn::Session
//! ```
//!
//! * [`QuicServer`]: one [`quinn::Endpoint`] serving WebTransport (`h3`) and raw QUIC (every moq
//!   ALPN in [`QuicServerConfig::protocols`]) on the same port, with PEM certificates or
//!   self-signed ones generated at start-up (`--tls-generate`), whose SHA-256
//!   [fingerprints](QuicServer::fingerprints) browsers pin.
//! * [`QuicClient`]: connects to `https://` (WebTransport), `http://` (WebTransport after fetching
//!   and pinning `/certificate.sha256`), and `moql://` / `moqt://` (raw QUIC) URLs.
//! * [`serve_fingerprint`]: the plain-HTTP `/certificate.sha256` endpoint for `http://` URLs.
//! * [`http_get`]: a plain-HTTP/1.1 GET (hyper) bounded in time and size, which fetches that
//!   fingerprint and serves tools and tests scraping a relay's `/metrics`.
//! * [`Error`]: what every fallible function here returns, sorted by what a caller does about
//!   it (a refused session, a TLS failure, a timeout, a bad URL, I/O), with the detail as its
//!   source; [`HttpError`] for [`http_get`].
//! * [`Log`]: the `--log-level` flag and a tracing subscriber writing to stderr.
//! * [`Backoff`], [`Reconnect`], [`ReconnectConfig`]: jittered exponential delays between a
//!   client's reconnection attempts, and the `--no-reconnect` flag.
//! * [`fuzz`]: the fuzz-target bodies for the parsers written here (the fingerprint body).
//!
//! Both [`QuicServer::new`] and [`QuicClient::new`] must run inside a Tokio runtime (quinn binds its
//! socket to the current one).
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use moq_native::{QuicClient, QuicClientConfig, QuicServer, QuicServerConfig, ServerTlsConfig};
//!
//! let mut server = QuicServer::new(QuicServerConfig {
//!     bind: "[::]:0".parse()?,
//!     tls: ServerTlsConfig { generate: vec!["localhost".into()], ..Default::default() },
//!     ..Default::default()
//! })?;
//! let port = server.local_addr()?.port();
//! let fingerprint = server.fingerprints()[0].clone();
//!
//! tokio::spawn(async move {
//!     while let Some(request) = server.accept().await {
//!         // Authorise on request.url() here, or request.reject(403).await.
//!         let session = request.ok().await?;
//!         let (mut send, mut recv) = session.accept_bi().await?;
//!         let msg = recv.read_to_end(1024).await?;
//!         send.write_all(&msg).await?;
//!         send.finish()?;
//!     }
//!     anyhow::Ok(())
//! });
//!
//! let client = QuicClient::new(QuicClientConfig { fingerprints: vec![fingerprint], ..Default::default() })?;
//! let connection = client.connect(format!("https://localhost:{port}/anon").parse()?).await?;
//! assert_eq!(connection.protocol.as_deref(), Some("moq-lite-06"));
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod backoff;
mod client;
mod error;
mod fingerprint;
pub mod fuzz;
mod http;
mod log;
mod over_tcp;
mod quic;
mod reconnect;
mod server;
mod tls;

pub use backoff::Backoff;
pub use client::{
    AnyConnection, Connection, QuicClient, QuicClientConfig, DEFAULT_CONNECT_TIMEOUT_MS,
};
pub use error::{BoxError, Error};
pub use fingerprint::{fetch_fingerprint, serve_fingerprint, FINGERPRINT_PATH};
pub use http::{http_get, http_get_response, HttpError, HttpResponse};
pub use log::Log;
pub use over_tcp::{
    accept_tcp, accept_websocket, client_subprotocols, moq_protocol, select_subprotocol,
    server_subprotocols, tune_tcp, websocket_config, Io, KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT,
    LEGACY_SUBPROTOCOL, MAX_MESSAGE_SIZE, TCP_NOTSENT_LOWAT, TCP_VERSION,
};
pub use quic::{
    Congestion, QuicConfig, CLIENT_IDLE_TIMEOUT_MS, CLIENT_KEEP_ALIVE_MS, DEFAULT_ACK_THRESHOLD,
    DEFAULT_MAX_MTU, DEFAULT_MAX_STREAMS_BIDI, DEFAULT_MAX_STREAMS_UNI, DEFAULT_SOCKET_BUFFER,
};
pub use reconnect::{Reconnect, ReconnectConfig};
pub use server::{
    QuicServer, QuicServerConfig, Request, Transport, DEFAULT_HANDSHAKE_TIMEOUT, MAX_WORKERS,
};
pub use tls::ServerTlsConfig;

pub use moq_io;
pub use web_transport_quinn;

/// Default moq protocols offered/accepted, most preferred first.
///
/// Used as TLS ALPNs for raw QUIC and as `WT-Available-Protocols` for WebTransport.
/// `moql` is the legacy identifier (lite-01/02 and moq-transport-14, negotiated in-band).
pub const DEFAULT_PROTOCOLS: &[&str] = &[
    "moq-lite-06",
    "moq-lite-05",
    "moq-lite-04",
    "moq-lite-03",
    "moql",
];

/// The ALPN of HTTP/3, which carries WebTransport.
pub const ALPN_H3: &str = web_transport_quinn::ALPN;

/// Install rustls' `ring` provider as the process-wide default, if none is installed yet.
///
/// This crate passes the provider explicitly everywhere, but other code in the process
/// (or a dependency enabling `aws-lc-rs` too) may call rustls' default-provider
/// constructors, which panic when both backends are compiled in and no default is set.
/// [`QuicServer::new`] and [`QuicClient::new`] call this; calling it again is harmless.
pub fn install_crypto_provider() {
    // Err only means a default is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The protocol list to use: the configured one, or [`DEFAULT_PROTOCOLS`] when empty.
fn protocols_or_default(protocols: &[String]) -> Vec<String> {
    if protocols.is_empty() {
        DEFAULT_PROTOCOLS.iter().map(|p| p.to_string()).collect()
    } else {
        protocols.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    /// A binary with a server, a client and logging: no flag may clash.
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        server: QuicServerConfig,
        #[command(flatten)]
        client: QuicClientConfig,
        #[command(flatten)]
        log: Log,
        #[command(flatten)]
        reconnect: ReconnectConfig,
    }

    #[test]
    fn all_flags_coexist_in_one_binary() {
        Cli::command().debug_assert();

        let cli = Cli::try_parse_from([
            "test",
            "--listen",
            "[::]:4443",
            "--tls-generate",
            "localhost",
            "--server-protocol",
            "moq-lite-05,moql",
            "--client-protocol",
            "moq-lite-04",
            "--tls-fingerprint",
            "00",
            "--quic-congestion",
            "bbr",
            "--log-level",
            "debug",
        ])
        .unwrap();
        assert_eq!(cli.server.bind.port(), 4443);
        assert_eq!(cli.server.protocols, ["moq-lite-05", "moql"]);
        assert_eq!(cli.client.protocols, ["moq-lite-04"]);
        assert_eq!(cli.server.quic.congestion, Congestion::Bbr);
        assert_eq!(cli.log.level, tracing::Level::DEBUG);
    }

    #[test]
    fn empty_protocol_lists_mean_the_defaults() {
        assert_eq!(protocols_or_default(&[]), DEFAULT_PROTOCOLS);
        assert_eq!(protocols_or_default(&["moql".into()]), ["moql"]);
    }
}
