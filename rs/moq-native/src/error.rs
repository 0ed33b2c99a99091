//! The crate's error type: what went wrong, sorted by what a caller does about it.

use std::time::Duration;

use crate::HttpError;

/// A dependency's error, kept as the [`source`](std::error::Error::source) of an [`Error`]
/// without making that dependency's types part of this crate's API.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a client, a server or a fingerprint fetch failed.
///
/// The variants sort failures by what the caller can do: fix the URL ([`Error::Url`]), fix the
/// trust set-up ([`Error::Tls`], [`Error::Certificate`]), get permission
/// ([`Error::Refused`]), try again later ([`Error::Timeout`], [`Error::Connect`]), or fix the
/// machine or the configuration ([`Error::Io`], [`Error::Config`]). The detail (quinn's, rustls'
/// or the I/O error) is the [`source`](std::error::Error::source); print the chain (`{:#}` of an
/// `anyhow::Error`) to see it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL cannot be dialled: a scheme other than `https`, `http`, `moql` and `moqt`, no
    /// host, or no address the client's socket can reach (an IPv6-only host from a client bound
    /// to an IPv4 address).
    #[error("cannot dial {url}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The URL's host name did not resolve.
    #[error("cannot resolve {host}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },

    /// The TLS handshake failed: the server's certificate is not trusted (unknown issuer,
    /// expired, another name, no pinned fingerprint matches), or the peer refused ours or our
    /// ALPNs (a TLS alert from the peer).
    #[error("TLS handshake with {peer} failed")]
    Tls {
        /// The URL or address dialled, or the client's address on a server.
        peer: String,
        /// The TLS error (its text names the certificate problem or the alert).
        #[source]
        source: BoxError,
    },

    /// The server refused the session: a WebTransport CONNECT answered with another status than
    /// 200 (401 or 403: the token was refused; 404: no such path), or the connection refused
    /// at once (QUIC CONNECTION_REFUSED: the server is at its connection limit). A raw QUIC
    /// rejection arrives after the connection is up, as the session's close code, so it is not
    /// this error.
    #[error(
        "{peer} refused the session{}",
        .status.map(|s| format!(" with status {s}")).unwrap_or_default()
    )]
    Refused {
        /// The URL dialled.
        peer: String,
        /// The HTTP status of a WebTransport rejection; `None` for a refused QUIC connection.
        status: Option<u16>,
    },

    /// No answer in time: [`QuicClientConfig::connect_timeout_ms`](crate::QuicClientConfig)
    /// passed (the server is down, or drops our packets), or the fingerprint fetch of an
    /// `http://` URL timed out.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What was under way.
        what: String,
        /// The time allowed.
        after: Duration,
    },

    /// The QUIC or WebTransport connection failed for another reason: the network (an
    /// unreachable host, the connection lost or reset during set-up), or a protocol error of
    /// the peer's. Often worth another try.
    #[error("connection to {peer} failed")]
    Connect {
        /// The URL or address dialled, or the client's address on a server.
        peer: String,
        /// quinn's or web-transport's error.
        #[source]
        source: BoxError,
    },

    /// The plain-HTTP fetch of an `http://` URL's certificate fingerprint failed (a status
    /// other than 200, a body too large, the TCP connection refused).
    #[error(transparent)]
    Http(#[from] HttpError),

    /// A certificate, key, root or fingerprint cannot be used: an unreadable or invalid PEM
    /// file, a key that does not go with its certificate, a fingerprint that is not 64 hex
    /// digits (given, or served at an `http://` URL's `/certificate.sha256`).
    #[error("{what}")]
    Certificate {
        /// Which one, and what is wrong with it.
        what: String,
        /// The parser's or rustls' error, if any.
        #[source]
        source: Option<BoxError>,
    },

    /// A local I/O failure: binding a UDP socket (the address in use, or not local), moving a
    /// client to a new socket, starting a server worker thread.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A setting that cannot work: `--tls-cert` without its `--tls-key`, more than
    /// [`MAX_WORKERS`](crate::MAX_WORKERS) workers, `h3` as a moq protocol, a QUIC setting
    /// quinn refuses.
    #[error("{what}")]
    Config {
        /// The setting, and what is wrong with it.
        what: String,
        /// The library's error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// A [`Error::Config`] without a source.
    pub(crate) fn config(what: impl Into<String>) -> Self {
        Self::Config {
            what: what.into(),
            source: None,
        }
    }

    /// A [`Error::Certificate`] caused by `source`.
    pub(crate) fn certificate(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Certificate {
            what: what.into(),
            source: Some(source.into()),
        }
    }

    /// An [`Error::Io`].
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }

    /// Sort a failed QUIC connection (dialled or accepted) with `peer`: a TLS alert or a local
    /// TLS failure is [`Error::Tls`], CONNECTION_REFUSED is [`Error::Refused`], the rest
    /// [`Error::Connect`].
    pub(crate) fn quic(peer: impl Into<String>, err: quinn::ConnectionError) -> Self {
        use quinn::{ConnectionError, TransportErrorCode};
        let peer = peer.into();
        let code = match &err {
            ConnectionError::TransportError(err) => Some(err.code),
            ConnectionError::ConnectionClosed(close) => Some(close.error_code),
            _ => None,
        };
        match code {
            // RFC 9001 §4.8: 0x0100–0x01ff carry a TLS alert.
            Some(code) if (0x100..=0x1ff).contains(&u64::from(code)) => Self::Tls {
                peer,
                source: err.into(),
            },
            Some(code) if code == TransportErrorCode::CONNECTION_REFUSED => {
                Self::Refused { peer, status: None }
            }
            _ => Self::Connect {
                peer,
                source: err.into(),
            },
        }
    }
}

/// `err` and its sources, joined by `: ` (what `{:#}` of an `anyhow::Error` prints), for logs.
pub(crate) fn report(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        text.push_str(": ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
}
