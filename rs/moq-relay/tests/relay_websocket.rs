//! moq over TCP on the real relay binary: QMux over WebSocket on the HTTP listener (every path,
//! the subprotocols of spec §1.5, the legacy framing) and over plain TCP (`--tcp-listen`), with
//! the same auth, limits and metrics as QUIC; bad WebSocket input ends only that session.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures::{SinkExt, StreamExt};
use moq_lite::{Client, OriginProducer, Track, TrackProducer, Version};
use tokio_tungstenite::tungstenite::{
    client::IntoClientRequest, http, protocol::frame::coding::CloseCode, Message,
};

/// Keep writing one-frame groups to `track` every 20 ms until dropped.
struct Writer(tokio::task::JoinHandle<()>);

impl Writer {
    fn start(track: TrackProducer, tag: &'static str) -> Self {
        Self(tokio::spawn(async move {
            for g in 0.. {
                let mut group = track.append_group().unwrap();
                group.write_frame(g, payload(tag, g, 0, 100)).unwrap();
                group.finish();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A broadcast `name` with a track "video" written continuously, published over `via`.
async fn live(relay: &Relay, via: Via, name: &'static str) -> (moq_lite::Session, Writer) {
    let (origin, broadcast) = origin_with(name);
    let track = patient_video_track(&broadcast);
    let session = relay.publisher(via, "/anon", &origin).await;
    std::mem::forget(broadcast); // lives as long as the test process
    (session, Writer::start(track, name))
}

/// Subscribe to `name` through `origin` (a subscriber session's) and read one whole group.
async fn read_one(origin: &OriginProducer, name: &str) -> Vec<Bytes> {
    let mut track = wait_broadcast(origin, name)
        .await
        .subscribe_track(&Track::new("video"));
    read_group(next_group(&mut track).await).await.unwrap()
}

#[tokio::test]
async fn every_transport_reaches_every_other() {
    let relay = Relay::start(RelayArgs::new(&["--auth-public", "anon"])).await;
    let (_ws_pub, _ws_writer) = live(&relay, Via::WebSocket, "ws-cam").await;
    let (_tcp_pub, _tcp_writer) = live(&relay, Via::Tcp, "tcp-cam").await;
    for via in Via::ALL {
        let (session, origin) = relay.subscriber(via, "/anon").await;
        assert_eq!(session.version(), Version::Lite06, "{via:?}");
        for name in ["ws-cam", "tcp-cam"] {
            let frames = read_one(&origin, name).await;
            assert_eq!(frames.len(), 1, "{via:?} reading {name}");
            assert!(
                frames[0].starts_with(name.as_bytes()),
                "{via:?}: {frames:?}"
            );
        }
    }
    let metrics = relay.metrics().await;
    for (transport, sessions) in [("websocket", 2.0), ("tcp", 2.0), ("quic", 1.0)] {
        assert_eq!(
            metrics.get(
                "moq_relay_transport_sessions_accepted_total",
                &[("transport", transport)]
            ),
            Some(sessions),
            "{transport}: {}",
            metrics.text
        );
    }
    // The two publishers are still connected, the viewers have left.
    let live = relay
        .wait_metrics("the viewers gone", |m| {
            m.get(
                "moq_relay_transport_sessions",
                &[("transport", "websocket")],
            ) == Some(1.0)
        })
        .await;
    assert_eq!(
        live.get("moq_relay_transport_sessions", &[("transport", "tcp")]),
        Some(1.0)
    );
}

/// A WebSocket handshake offering `offered` (none: no header) on `path`: the server's chosen
/// subprotocol, or the HTTP status it refused with.
async fn handshake(
    relay: &Relay,
    path: &str,
    offered: &[&str],
) -> Result<
    (
        Option<String>,
        tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    ),
    u16,
> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", relay.web))
        .await
        .unwrap();
    let mut request = format!("ws://127.0.0.1:{}{path}", relay.web)
        .into_client_request()
        .unwrap();
    if !offered.is_empty() {
        request.headers_mut().insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            offered.join(", ").parse().unwrap(),
        );
    }
    match tokio_tungstenite::client_async(request, tcp).await {
        Ok((ws, response)) => {
            let chosen = response
                .headers()
                .get(http::header::SEC_WEBSOCKET_PROTOCOL)
                .map(|v| v.to_str().unwrap().to_string());
            Ok((chosen, ws))
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(err) => panic!("handshake: {err}"),
    }
}

/// A subscriber session over a WebSocket negotiated with `offered`; its version and origin.
async fn ws_subscriber(
    relay: &Relay,
    offered: &[&str],
) -> (Option<String>, moq_lite::Session, OriginProducer) {
    let (chosen, ws) = handshake(relay, "/anon", offered).await.expect("101");
    let mut upgraded = qmux::ws::Upgraded::new(ws);
    if let Some(chosen) = &chosen {
        upgraded = upgraded.with_alpn(chosen);
    }
    let transport = moq_io::QmuxSession::new(
        upgraded.connect(),
        moq_io::Kind::WebSocket,
        moq_io::ByteCounters::default(),
    );
    let origin = OriginProducer::new();
    let session = tokio::time::timeout(
        TIMEOUT,
        Client::new().subscribe(origin.clone()).connect(transport),
    )
    .await
    .unwrap()
    .unwrap();
    (chosen, session, origin)
}

#[tokio::test]
async fn every_subprotocol_of_the_spec_and_the_legacy_framing_play() {
    // Everything public: the upgrade on /announced below is authorised like any path.
    let relay = Relay::start(RelayArgs::new(&["--auth-public", ""])).await;
    let (_publisher, _writer) = live(&relay, Via::Quic, "cam").await;
    let cases: [(&[&str], Option<&str>, Version); 6] = [
        // The server's preference among what the client offers: 06 before 05, qmux-01 before 00.
        (
            &[
                "qmux-00.moq-lite-05",
                "qmux-01.moq-lite-05",
                "qmux-01.moq-lite-06",
            ],
            Some("qmux-01.moq-lite-06"),
            Version::Lite06,
        ),
        (
            &["qmux-00.moq-lite-05"],
            Some("qmux-00.moq-lite-05"),
            Version::Lite05,
        ),
        (
            &["qmux-01.moq-lite-04"],
            Some("qmux-01.moq-lite-04"),
            Version::Lite04,
        ),
        // Bare versions and the legacy framing: the moq version is negotiated in-band (lite-02).
        (&["qmux-01"], Some("qmux-01"), Version::Lite02),
        (&["webtransport"], Some("webtransport"), Version::Lite02),
        // No subprotocol at all: the legacy framing.
        (&[], None, Version::Lite02),
    ];
    for (offered, want, version) in cases {
        let (chosen, session, origin) = ws_subscriber(&relay, offered).await;
        assert_eq!(chosen.as_deref(), want, "offered {offered:?}");
        assert_eq!(session.version(), version, "offered {offered:?}");
        let frames = read_one(&origin, "cam").await;
        assert!(
            frames[0].starts_with(b"cam"),
            "offered {offered:?}: {frames:?}"
        );
    }
    // Only subprotocols we do not speak: 400, and nothing else happens.
    assert_eq!(
        handshake(&relay, "/anon", &["chat", "qmux-09.moq-lite-99"])
            .await
            .err(),
        Some(400)
    );
    // A path with a WebSocket upgrade is a session root, not a file or an endpoint.
    let (chosen, _ws) = handshake(&relay, "/announced", &["qmux-01.moq-lite-06"])
        .await
        .expect("upgrades on any path");
    assert_eq!(chosen.as_deref(), Some("qmux-01.moq-lite-06"));
}

#[tokio::test]
async fn the_token_and_the_session_limit_hold_before_the_upgrade() {
    let relay = Relay::start(RelayArgs::new(&[
        "--auth-public",
        "anon",
        "--max-sessions",
        "2",
    ]))
    .await;
    // No token for a path outside the public prefix: 401 before the upgrade.
    let refused = relay
        .try_connect(&relay.client(), Via::WebSocket, "/private", Client::new())
        .await
        .unwrap_err();
    assert!(
        format!("{refused:#}").contains("401"),
        "{refused:#}\n{}",
        relay.log_tail(5)
    );
    // Two sessions fill --max-sessions; a third WebSocket is answered 503.
    let _a = relay.connect(Via::WebSocket, "/anon", Client::new()).await;
    let _b = relay.connect(Via::Tcp, "/anon", Client::new()).await;
    assert_eq!(
        handshake(&relay, "/anon", &["qmux-01.moq-lite-06"])
            .await
            .err(),
        Some(503)
    );
}

/// The frames of a QMux-01 record: the server's messages until the connection ends, looking for
/// its CONNECTION_CLOSE (type 0x1c, then the error code) or a WebSocket Close.
async fn how_it_ends(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
) -> (Option<u64>, Option<CloseCode>) {
    let mut connection_close = None;
    let mut ws_close = None;
    let ended = tokio::time::timeout(TIMEOUT, async {
        while let Some(message) = ws.next().await {
            match message {
                Ok(Message::Binary(bytes)) if bytes.first() == Some(&0x1c) => {
                    connection_close = Some(varint(&bytes[1..]));
                }
                Ok(Message::Close(frame)) => ws_close = frame.map(|f| f.code),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the relay never closed the session");
    (connection_close, ws_close)
}

/// A QUIC variable-length integer.
fn varint(bytes: &[u8]) -> u64 {
    let len = 1 << (bytes[0] >> 6);
    let mut value = u64::from(bytes[0] & 0x3f);
    for b in &bytes[1..len] {
        value = (value << 8) | u64::from(*b);
    }
    value
}

/// QX_TRANSPORT_PARAMETERS with no parameters: what a QMux peer must send first.
const EMPTY_PARAMETERS: [u8; 9] = [0xff, 0x51, 0x53, 0x30, 0x0d, 0x0a, 0x0d, 0x0a, 0x00];

#[tokio::test]
async fn bad_websocket_input_ends_only_that_session() {
    let relay = Relay::start(RelayArgs::new(&["--auth-public", "anon"])).await;
    let (_publisher, _writer) = live(&relay, Via::Quic, "cam").await;
    let (_viewer, origin) = relay.subscriber(Via::WebSocket, "/anon").await;
    let mut watching = wait_broadcast(&origin, "cam")
        .await
        .subscribe_track(&Track::new("video"));
    next_group(&mut watching).await;

    // A text message: QMux is binary only. Close 1003 (unsupported data).
    let (_, mut ws) = handshake(&relay, "/anon", &["qmux-01.moq-lite-06"])
        .await
        .unwrap();
    ws.send(Message::Binary(EMPTY_PARAMETERS.to_vec().into()))
        .await
        .unwrap();
    ws.send(Message::Text("hello".into())).await.unwrap();
    assert_eq!(how_it_ends(&mut ws).await.1, Some(CloseCode::Unsupported));

    // A record larger than the max_record_size the relay advertised (16 382 bytes).
    let (_, mut ws) = handshake(&relay, "/anon", &["qmux-01.moq-lite-06"])
        .await
        .unwrap();
    ws.send(Message::Binary(EMPTY_PARAMETERS.to_vec().into()))
        .await
        .unwrap();
    let mut oversize = vec![0u8; 20_000]; // PADDING frames
    oversize[0] = 0x00;
    ws.send(Message::Binary(oversize.into())).await.unwrap();
    let (code, _) = how_it_ends(&mut ws).await;
    assert_eq!(code, Some(1002), "CONNECTION_CLOSE for the oversize record");

    // An unknown frame type (0x21 is none of QUIC's or QMux's).
    let (_, mut ws) = handshake(&relay, "/anon", &["qmux-01.moq-lite-06"])
        .await
        .unwrap();
    ws.send(Message::Binary(EMPTY_PARAMETERS.to_vec().into()))
        .await
        .unwrap();
    ws.send(Message::Binary(vec![0x21, 0x00].into()))
        .await
        .unwrap();
    let (code, _) = how_it_ends(&mut ws).await;
    assert_eq!(
        code,
        Some(1002),
        "CONNECTION_CLOSE for the unknown frame type"
    );

    // The other viewer noticed nothing: new groups keep coming, and the relay serves new sessions.
    let before = next_group(&mut watching).await.info().sequence;
    let after = next_group(&mut watching).await.info().sequence;
    assert!(after > before);
    let (_again, origin) = relay.subscriber(Via::WebSocket, "/anon").await;
    assert!(read_one(&origin, "cam").await[0].starts_with(b"cam"));
}

#[tokio::test]
async fn wss_on_the_https_listener_with_the_quic_certificate() {
    let relay = Relay::start(RelayArgs::new(&[
        "--auth-public",
        "anon",
        "--web-https-listen",
        "127.0.0.1:0",
    ]))
    .await;
    assert_ne!(relay.https, 0, "the port file names the HTTPS listener");
    let (_publisher, _writer) = live(&relay, Via::Quic, "cam").await;
    // The client pins the fingerprint served for QUIC: the same certificate is on TCP.
    let url = format!("wss://localhost:{}/anon", relay.https)
        .parse()
        .unwrap();
    let connection = tokio::time::timeout(TIMEOUT, relay.client().connect_any(url))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(connection.protocol.as_deref(), Some("moq-lite-06"));
    let origin = OriginProducer::new();
    let _session = Client::new()
        .subscribe(origin.clone())
        .connect(connection.session)
        .await
        .unwrap();
    assert!(read_one(&origin, "cam").await[0].starts_with(b"cam"));
    // A client that trusts neither the system roots' issuer nor this fingerprint is refused.
    let untrusted = moq_native::QuicClient::new(moq_native::QuicClientConfig::default()).unwrap();
    let url = format!("wss://localhost:{}/anon", relay.https)
        .parse()
        .unwrap();
    let refused = untrusted.connect_any(url).await.unwrap_err();
    assert!(
        matches!(refused, moq_native::Error::Tls { .. }),
        "{refused:#}"
    );
}
