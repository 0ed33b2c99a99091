//! moq over TCP: QMux over WebSocket (`ws://`, `wss://`) and over plain TCP (`moql+tcp://`).
//!
//! Where UDP is blocked (offices, hotels, some carriers) neither QUIC nor WebTransport gets
//! through; a WebSocket on the relay's HTTP(S) port does. QMux (draft-ietf-quic-qmux) carries
//! QUIC's streams over that one ordered byte stream (the `qmux` crate does the framing, flow
//! control and send scheduling); [`moq_io::QmuxSession`] makes it a session transport.
//!
//! The subprotocol replaces the ALPN (spec §1.5): `qmux-01.<moq protocol>` and
//! `qmux-00.<moq protocol>` for each moq version, the bare `qmux-01` / `qmux-00` (no moq
//! version: the session negotiates lite-01/02 in-band, §1.6) and the legacy `webtransport`
//! framing, which is also what a client offering no subprotocol at all gets.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Sink, Stream};

use moq_io::{ByteCounters, Kind, QmuxSession};
use qmux::Version as QmuxVersion;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::{
    self, client::IntoClientRequest, http, protocol::Role, protocol::WebSocketConfig,
};
use url::Url;

use crate::{protocols_or_default, Error};

/// The legacy WebSocket framing (web-transport-ws): no flow control, no moq version.
pub const LEGACY_SUBPROTOCOL: &str = "webtransport";

/// QMux drafts we speak on a WebSocket, most preferred first, with their subprotocol prefix.
const WS_VERSIONS: [(QmuxVersion, &str); 2] = [
    (QmuxVersion::QMux01, "qmux-01"),
    (QmuxVersion::QMux00, "qmux-00"),
];

/// The moq protocol identifier with no prefixed WebSocket form: its version is negotiated
/// in-band, which the bare `qmux-0N` subprotocols already mean.
const LEGACY_ALPN: &str = "moql";

/// Largest WebSocket message accepted. A QMux-01 record is at most our `max_record_size`
/// (16 382 bytes), a QMux-00 message one frame of at most 16 384; the legacy framing has no
/// limit of its own, so this bounds it (a browser's legacy client writes small frames).
pub const MAX_MESSAGE_SIZE: usize = 1 << 20;

/// WebSocket keep-alive (spec §1.5): a Ping every 5 s, and a peer silent for 30 s is gone.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// See [`KEEP_ALIVE_INTERVAL`].
pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// Unsent bytes a moq TCP socket may hold (`TCP_NOTSENT_LOWAT`). The kernel reports the socket
/// writable only below this, so what waits for a slow link waits in QMux's send queue, where
/// newer and higher-priority data goes first and dropped groups are discarded, not in a kernel
/// buffer that autotunes to megabytes (seconds at 2 Mbit/s). Bytes in flight are not counted,
/// so throughput on fast links is unaffected.
pub const TCP_NOTSENT_LOWAT: u32 = 16 * 1024;

/// Set up a TCP socket for moq: no Nagle delay, and at most [`TCP_NOTSENT_LOWAT`] unsent bytes
/// in the kernel (best effort: an error leaves the default). The congestion control stays the
/// system's: BBR was tried behind a 2 Mbit/s link with a 200 ms queue and did worse than cubic
/// (viewer latency up to 1.2 s against 0.75 s).
pub fn tune_tcp(stream: &tokio::net::TcpStream) {
    let _ = stream.set_nodelay(true);
    #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
    let _ = socket2::SockRef::from(stream).set_tcp_notsent_lowat(TCP_NOTSENT_LOWAT);
}

/// The QMux draft spoken on plain TCP (`moql+tcp://`), where nothing negotiates it.
pub const TCP_VERSION: QmuxVersion = QmuxVersion::QMux01;

/// The subprotocols a server accepts, most preferred first: `qmux-01.<p>`, `qmux-00.<p>` for
/// each moq protocol `p` (the legacy `moql` excepted), then `qmux-01`, `qmux-00` and
/// `webtransport`.
pub fn server_subprotocols(protocols: &[String]) -> Vec<String> {
    let mut list = prefixed(protocols);
    list.extend(WS_VERSIONS.iter().map(|(_, bare)| bare.to_string()));
    list.push(LEGACY_SUBPROTOCOL.to_string());
    list
}

/// What a client offers: the prefixed pairs, then the bare `qmux-01` and `qmux-00` when the
/// legacy `moql` is among `protocols` (it means "negotiate in-band").
pub fn client_subprotocols(protocols: &[String]) -> Vec<String> {
    let mut list = prefixed(protocols);
    if protocols.iter().any(|p| p == LEGACY_ALPN) {
        list.extend(WS_VERSIONS.iter().map(|(_, bare)| bare.to_string()));
    }
    list
}

fn prefixed(protocols: &[String]) -> Vec<String> {
    protocols
        .iter()
        .filter(|p| *p != LEGACY_ALPN)
        .flat_map(|p| WS_VERSIONS.iter().map(move |(_, v)| format!("{v}.{p}")))
        .collect()
}

/// The server's choice among the subprotocols a client offered (the values of its
/// `Sec-WebSocket-Protocol` headers): the first of `supported` it offered. `Ok(None)` when it
/// offered none (the legacy framing), `Err` when it offered only ones we do not speak (HTTP 400).
pub fn select_subprotocol<'a>(
    offered: impl IntoIterator<Item = &'a str>,
    supported: &[String],
) -> Result<Option<String>, Vec<String>> {
    let offered: Vec<&str> = offered
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if offered.is_empty() {
        return Ok(None);
    }
    match supported.iter().find(|s| offered.contains(&s.as_str())) {
        Some(chosen) => Ok(Some(chosen.clone())),
        None => Err(offered.into_iter().map(str::to_string).collect()),
    }
}

/// The moq protocol a negotiated subprotocol carries (`qmux-01.moq-lite-06` → `moq-lite-06`),
/// `None` for the bare and legacy ones.
pub fn moq_protocol(subprotocol: &str) -> Option<&str> {
    WS_VERSIONS
        .iter()
        .find_map(|(_, v)| subprotocol.strip_prefix(v)?.strip_prefix('.'))
        .filter(|p| !p.is_empty())
}

/// The WebSocket limits both sides use.
pub fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_SIZE))
        .max_frame_size(Some(MAX_MESSAGE_SIZE))
}

/// The connection-level receive window we grant: effectively none. qmux 0.5.3 loses connection
/// credit for bytes that arrive on a stream after we stopped reading it (its STOP_SENDING was
/// in flight): it neither counts nor credits them, while the sender counted them. A viewer that
/// skips old groups stops streams all the time; with qmux's 1 MB default, a viewer behind a
/// 2 Mbit/s link ran out of credit within seconds and stalled. Memory stays bounded by the
/// stream windows times the stream limits (100 of each kind).
pub const CONNECTION_WINDOW: u64 = 1 << 40;

/// The receive window per unidirectional stream on a client: one group of a 3 Mbit/s stream
/// with a 1 s GoP is ~375 KB, and it should not wait a round trip for credit mid-group.
pub const CLIENT_UNI_STREAM_WINDOW: u64 = 1 << 20;

/// QMux session settings: qmux's defaults (100 streams of each kind, 256 KB per stream, 16 KB
/// records, 30 s idle timeout), the [`CONNECTION_WINDOW`], on a client the
/// [`CLIENT_UNI_STREAM_WINDOW`], and the handshake bounded by `timeout`.
fn session_config(version: QmuxVersion, timeout: Duration, client: bool) -> qmux::Config {
    let mut config = qmux::Config::new(version);
    config.handshake_timeout = timeout;
    config.max_data = CONNECTION_WINDOW;
    if client {
        config.max_stream_data_uni = CLIENT_UNI_STREAM_WINDOW;
    }
    config
}

fn keep_alive() -> qmux::ws::KeepAlive {
    qmux::ws::KeepAlive::new(KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT)
}

/// A byte stream QMux can ride on.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// Run the server side of a QMux session over a WebSocket whose HTTP upgrade is done (`io` is
/// the upgraded connection), speaking `subprotocol` as chosen by [`select_subprotocol`]
/// (`None`: the legacy framing).
pub async fn accept_websocket(io: impl Io, subprotocol: Option<&str>) -> moq_io::Session {
    let counters = ByteCounters::default();
    let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
        counters.wrap(io),
        Role::Server,
        Some(websocket_config()),
    )
    .await;
    let mut upgraded = qmux::ws::Upgraded::new(BinaryOnly::new(ws, counters.clone()))
        .with_keep_alive(keep_alive())
        .with_session_config(session_config(QmuxVersion::QMux01, Duration::ZERO, false));
    if let Some(subprotocol) = subprotocol {
        upgraded = upgraded.with_alpn(subprotocol);
    }
    QmuxSession::new(upgraded.accept(), Kind::WebSocket, counters).into()
}

/// Run the server side of a QMux session over an accepted TCP connection, negotiating one of
/// `protocols` in-band; fails if the client sends no transport parameters within `timeout`.
pub async fn accept_tcp(
    stream: tokio::net::TcpStream,
    protocols: &[String],
    timeout: Duration,
) -> Result<moq_io::Session, Error> {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "TCP peer".to_string(), |a| a.to_string());
    tune_tcp(&stream);
    let counters = ByteCounters::default();
    let mut config = session_config(TCP_VERSION, timeout, false);
    config.protocol = qmux::Protocol::Negotiate(protocols_or_default(protocols));
    let transport =
        qmux::transport::Stream::new(counters.wrap(stream), TCP_VERSION, config.max_record_size);
    let session = qmux::Session::accept(transport, config)
        .await
        .map_err(|err| Error::Connect {
            peer,
            source: err.into(),
        })?;
    Ok(QmuxSession::new(session, Kind::Tcp, counters).into())
}

/// Connect a QMux session over a WebSocket to a `ws://` or `wss://` URL (same path and query as
/// the WebTransport URL), offering `protocols`; `tls` verifies `wss://` servers.
///
/// Returns the session and the moq protocol the server chose (`None`: in-band negotiation).
pub(crate) async fn connect_websocket(
    url: &Url,
    addr: Option<std::net::SocketAddr>,
    tls: Arc<rustls::ClientConfig>,
    protocols: &[String],
) -> Result<(moq_io::Session, Option<String>), Error> {
    let secure = url.scheme() == "wss";
    let host = url.host_str().ok_or_else(|| Error::Url {
        url: url.to_string(),
        reason: "no host".into(),
    })?;
    let port = url
        .port_or_known_default()
        .unwrap_or(if secure { 443 } else { 80 });
    let tcp = tcp_connect(url, host, port, addr).await?;
    let counters = ByteCounters::default();
    let io = counters.wrap(tcp);
    let io: Box<dyn Io> = match secure {
        false => Box::new(io),
        true => {
            let name = rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']))
                .map_err(|err| Error::Url {
                    url: url.to_string(),
                    reason: format!("not a TLS server name: {err}"),
                })?
                .to_owned();
            let stream = tokio_rustls::TlsConnector::from(tls)
                .connect(name, io)
                .await
                .map_err(|err| Error::Tls {
                    peer: url.to_string(),
                    source: err.into(),
                })?;
            Box::new(stream)
        }
    };

    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|err| Error::Url {
            url: url.to_string(),
            reason: err.to_string(),
        })?;
    let offer = client_subprotocols(&protocols_or_default(protocols)).join(", ");
    if !offer.is_empty() {
        let value = http::HeaderValue::from_str(&offer).map_err(|err| Error::Url {
            url: url.to_string(),
            reason: format!("bad protocol list: {err}"),
        })?;
        request
            .headers_mut()
            .insert(http::header::SEC_WEBSOCKET_PROTOCOL, value);
    }
    let (ws, response) =
        tokio_tungstenite::client_async_with_config(request, io, Some(websocket_config()))
            .await
            .map_err(|err| match err {
                tungstenite::Error::Http(response) => Error::Refused {
                    peer: url.to_string(),
                    status: Some(response.status().as_u16()),
                },
                err => Error::Connect {
                    peer: url.to_string(),
                    source: err.into(),
                },
            })?;
    let chosen = response
        .headers()
        .get(http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    tracing::debug!(%url, subprotocol = ?chosen, "WebSocket session");
    let mut upgraded = qmux::ws::Upgraded::new(BinaryOnly::new(ws, counters.clone()))
        .with_keep_alive(keep_alive())
        .with_session_config(session_config(QmuxVersion::QMux01, Duration::ZERO, true));
    if let Some(chosen) = &chosen {
        upgraded = upgraded.with_alpn(chosen);
    }
    let protocol = chosen.as_deref().and_then(moq_protocol).map(str::to_string);
    let session = QmuxSession::new(upgraded.connect(), Kind::WebSocket, counters);
    Ok((session.into(), protocol))
}

/// A WebSocket that refuses text messages: QMux speaks only binary ones, and a text message
/// is a connection error (spec §14). The peer gets a Close frame with 1003 (unsupported data)
/// and the session ends; qmux itself would skip the message.
pub(crate) struct BinaryOnly<S> {
    ws: S,
    refused: bool,
    /// Told when the message stream ends (or fails): the session ends with it.
    counters: ByteCounters,
}

impl<S> BinaryOnly<S> {
    pub(crate) fn new(ws: S, counters: ByteCounters) -> Self {
        Self {
            ws,
            refused: false,
            counters,
        }
    }
}

impl<S> Stream for BinaryOnly<S>
where
    S: Stream<Item = Result<tungstenite::Message, tungstenite::Error>>
        + Sink<tungstenite::Message, Error = tungstenite::Error>
        + Unpin,
{
    type Item = Result<tungstenite::Message, tungstenite::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.refused {
            return Poll::Ready(None);
        }
        let next = Pin::new(&mut self.ws).poll_next(cx);
        if let Poll::Ready(None | Some(Err(_))) = &next {
            self.counters.mark_ended();
        }
        match next {
            Poll::Ready(Some(Ok(tungstenite::Message::Text(_)))) => {
                self.refused = true;
                tracing::debug!("text message on a QMux WebSocket: closing with 1003");
                let close = tungstenite::protocol::CloseFrame {
                    code: tungstenite::protocol::frame::coding::CloseCode::Unsupported,
                    reason: "QMux takes binary messages only".into(),
                };
                // Best effort: the Close goes out if the socket takes it now.
                let ws = &mut self.ws;
                if let Poll::Ready(Ok(())) = Pin::new(&mut *ws).poll_ready(cx) {
                    if Pin::new(&mut *ws)
                        .start_send(tungstenite::Message::Close(Some(close)))
                        .is_ok()
                    {
                        let _ = Pin::new(&mut *ws).poll_flush(cx);
                    }
                }
                self.counters.mark_ended();
                Poll::Ready(Some(Err(tungstenite::Error::Protocol(
                    tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                ))))
            }
            other => other,
        }
    }
}

impl<S> Sink<tungstenite::Message> for BinaryOnly<S>
where
    S: Sink<tungstenite::Message, Error = tungstenite::Error> + Unpin,
{
    type Error = tungstenite::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.ws).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: tungstenite::Message) -> Result<(), Self::Error> {
        Pin::new(&mut self.ws).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.ws).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.ws).poll_close(cx)
    }
}

/// Connect a QMux session over plain TCP to a `moql+tcp://host:port/` URL, negotiating one of
/// `protocols` in-band within `timeout`.
pub(crate) async fn connect_tcp(
    url: &Url,
    addr: Option<std::net::SocketAddr>,
    protocols: &[String],
    timeout: Duration,
) -> Result<(moq_io::Session, Option<String>), Error> {
    let host = url.host_str().ok_or_else(|| Error::Url {
        url: url.to_string(),
        reason: "no host".into(),
    })?;
    let port = url.port().ok_or_else(|| Error::Url {
        url: url.to_string(),
        reason: "moql+tcp:// needs a port".into(),
    })?;
    let tcp = tcp_connect(url, host, port, addr).await?;
    let counters = ByteCounters::default();
    let mut config = session_config(TCP_VERSION, timeout, true);
    config.protocol = qmux::Protocol::Negotiate(protocols_or_default(protocols));
    let transport =
        qmux::transport::Stream::new(counters.wrap(tcp), TCP_VERSION, config.max_record_size);
    let session = qmux::Session::connect(transport, config)
        .await
        .map_err(|err| Error::Connect {
            peer: url.to_string(),
            source: err.into(),
        })?;
    let session = QmuxSession::new(session, Kind::Tcp, counters);
    let protocol = moq_io::Connection::protocol(&session).filter(|p| p != LEGACY_ALPN);
    tracing::debug!(%url, ?protocol, "QMux over TCP session");
    Ok((session.into(), protocol))
}

async fn tcp_connect(
    url: &Url,
    host: &str,
    port: u16,
    addr: Option<std::net::SocketAddr>,
) -> Result<tokio::net::TcpStream, Error> {
    let connected = match addr {
        Some(addr) => tokio::net::TcpStream::connect(addr).await,
        None => tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port)).await,
    };
    let stream = connected.map_err(|err| Error::Connect {
        peer: url.to_string(),
        source: err.into(),
    })?;
    tune_tcp(&stream);
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_server_list_is_prefixed_pairs_then_bare_then_legacy() {
        let ours = list(&["moq-lite-06", "moq-lite-05", "moql"]);
        assert_eq!(
            server_subprotocols(&ours),
            list(&[
                "qmux-01.moq-lite-06",
                "qmux-00.moq-lite-06",
                "qmux-01.moq-lite-05",
                "qmux-00.moq-lite-05",
                "qmux-01",
                "qmux-00",
                "webtransport"
            ])
        );
        assert_eq!(
            client_subprotocols(&ours),
            list(&[
                "qmux-01.moq-lite-06",
                "qmux-00.moq-lite-06",
                "qmux-01.moq-lite-05",
                "qmux-00.moq-lite-05",
                "qmux-01",
                "qmux-00"
            ])
        );
    }

    #[test]
    fn the_server_picks_its_first_preference_the_client_offered() {
        let supported = server_subprotocols(&list(&["moq-lite-06", "moq-lite-05"]));
        let pick = |offered: &[&str]| select_subprotocol(offered.iter().copied(), &supported);
        assert_eq!(
            pick(&["qmux-00.moq-lite-05, qmux-01.moq-lite-05"]),
            Ok(Some("qmux-01.moq-lite-05".into()))
        );
        assert_eq!(
            pick(&["qmux-01.moq-lite-05", "qmux-01.moq-lite-06"]),
            Ok(Some("qmux-01.moq-lite-06".into()))
        );
        assert_eq!(pick(&["webtransport"]), Ok(Some("webtransport".into())));
        assert_eq!(pick(&[]), Ok(None));
        assert_eq!(
            pick(&["chat", "qmux-09.x"]),
            Err(list(&["chat", "qmux-09.x"]))
        );
    }

    #[test]
    fn the_moq_protocol_is_the_part_after_the_qmux_prefix() {
        assert_eq!(moq_protocol("qmux-01.moq-lite-06"), Some("moq-lite-06"));
        assert_eq!(moq_protocol("qmux-00.moq-lite-05"), Some("moq-lite-05"));
        assert_eq!(moq_protocol("qmux-01"), None);
        assert_eq!(moq_protocol("webtransport"), None);
        assert_eq!(moq_protocol("qmux-01."), None);
    }
}
