//! Fuzz-target bodies, shared by the cargo-fuzz crate (`fuzz/fuzz_targets/*.rs`) and the corpus
//! replay test (`tests/fuzz_corpus.rs`), so a committed crash input is checked by `cargo test`.
//!
//! Each function feeds arbitrary bytes to one parser and panics only when it finds a bug in it:
//! the parser panicking, or breaking one of the properties listed on the function. HTTP itself
//! is hyper's (fuzzed upstream); what is left of ours is the body parser.

use crate::fingerprint::parse_body;

/// The parser of a `/certificate.sha256` response body. Checks that:
/// - a fingerprint it returns is 32 bytes (SHA-256);
/// - it accepts only bodies made of 64 hex digits, `:` separators and surrounding white space;
/// - the fingerprint printed as lowercase hex (with or without `:` separators, in upper case,
///   with a trailing newline) parses back to the same bytes.
pub fn fingerprint_body(data: &[u8]) {
    let Ok(fingerprint) = parse_body(data) else {
        return;
    };
    assert_eq!(
        fingerprint.len(),
        32,
        "a fingerprint of {} bytes",
        fingerprint.len()
    );

    let text = std::str::from_utf8(data).expect("accepted a body that is not UTF-8");
    let digits: Vec<u8> = text.trim().bytes().filter(|b| *b != b':').collect();
    assert!(
        digits.len() == 64 && digits.iter().all(u8::is_ascii_hexdigit),
        "accepted {text:?}"
    );

    let hex = crate::tls::hex(&fingerprint);
    let colons: Vec<String> = fingerprint.iter().map(|b| format!("{b:02X}")).collect();
    for printed in [hex.clone(), hex.to_uppercase() + "\n", colons.join(":")] {
        assert_eq!(
            parse_body(printed.as_bytes()).ok().as_ref(),
            Some(&fingerprint),
            "{printed:?} does not parse back"
        );
    }
}

/// A WebSocket made of two channels: what the fuzzer sends, and what the session writes back.
struct ChannelWs {
    incoming: futures::channel::mpsc::UnboundedReceiver<tokio_tungstenite::tungstenite::Message>,
    outgoing: futures::channel::mpsc::UnboundedSender<tokio_tungstenite::tungstenite::Message>,
}

impl futures::Stream for ChannelWs {
    type Item =
        Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::pin::Pin::new(&mut self.incoming)
            .poll_next(cx)
            .map(|m| m.map(Ok))
    }
}

impl futures::Sink<tokio_tungstenite::tungstenite::Message> for ChannelWs {
    type Error = tokio_tungstenite::tungstenite::Error;

    fn poll_ready(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn start_send(
        self: std::pin::Pin<&mut Self>,
        item: tokio_tungstenite::tungstenite::Message,
    ) -> Result<(), Self::Error> {
        // The peer (the fuzzer) may be gone: what we write then goes nowhere.
        let _ = self.outgoing.unbounded_send(item);
        Ok(())
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Set by the panic hook [`qmux_websocket`] installs: a panic in any task (qmux runs its own).
static PANICKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The relay's side of a QMux-over-WebSocket session fed arbitrary peer messages: the frame
/// decoder of the qmux crate and its session state machine (flow control, stream limits,
/// resets), as the relay runs them. `data[0]` picks the subprotocol (qmux-01 with records,
/// qmux-00 with bare frames, the legacy framing); the rest is messages, each a 2-byte
/// big-endian length and that many bytes (a length with its top bit set is a text message).
/// The peer's streams are accepted and read to their end, as a session would.
///
/// Checks that no task panics. The run is cut off 2 s after the input: qmux 0.5.3 sometimes
/// leaves a session open after its peer's WebSocket ended (a race: three empty messages and
/// the end of the stream hang it about every other run). In the relay such a session is ended
/// by the handshake deadline before SETUP, and by the WebSocket keep-alive after it.
pub fn qmux_websocket(data: &[u8]) {
    use tokio_tungstenite::tungstenite::Message;
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.store(true, std::sync::atomic::Ordering::SeqCst);
            previous(info);
        }));
    });
    let Some((&which, mut rest)) = data.split_first() else {
        return;
    };
    let subprotocol = match which % 3 {
        0 => Some("qmux-01.moq-lite-06"),
        1 => Some("qmux-00.moq-lite-05"),
        _ => None,
    };
    let (peer_tx, incoming) = futures::channel::mpsc::unbounded();
    let (outgoing, _peer_rx) = futures::channel::mpsc::unbounded();
    while rest.len() >= 2 {
        let header = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(header & 0x7fff).min(rest.len() - 2);
        let body = bytes::Bytes::copy_from_slice(&rest[2..2 + len]);
        rest = &rest[2 + len..];
        let message = match header & 0x8000 {
            0 => Message::Binary(body),
            _ => Message::Text(String::from_utf8_lossy(&body).into_owned().into()),
        };
        let _ = peer_tx.unbounded_send(message);
    }
    drop(peer_tx); // the peer closes after its last message
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let counters = moq_io::ByteCounters::default();
        let ws =
            crate::over_tcp::BinaryOnly::new(ChannelWs { incoming, outgoing }, counters.clone());
        let mut upgraded = qmux::ws::Upgraded::new(ws);
        if let Some(subprotocol) = subprotocol {
            upgraded = upgraded.with_alpn(subprotocol);
        }
        let session = moq_io::Session::from(moq_io::QmuxSession::new(
            upgraded.accept(),
            moq_io::Kind::WebSocket,
            counters,
        ));
        let reader = {
            let session = session.clone();
            async move {
                let mut tasks = tokio::task::JoinSet::new();
                loop {
                    let mut recv = tokio::select! {
                        uni = session.accept_uni() => match uni { Ok(r) => r, Err(_) => break },
                        bi = session.accept_bi() => match bi { Ok((_, r)) => r, Err(_) => break },
                    };
                    tasks.spawn(
                        async move { while let Ok(Some(_)) = recv.read_chunk(65536).await {} },
                    );
                }
                while tasks.join_next().await.is_some() {}
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), reader).await;
        session.close(0, b"");
    });
    drop(runtime);
    assert!(
        !PANICKED.swap(false, std::sync::atomic::Ordering::SeqCst),
        "a task panicked on this input"
    );
}
