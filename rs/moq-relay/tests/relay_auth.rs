//! Who may do what on the real relay binary: tokens made with `moq_token` (and forged by hand),
//! the anonymous public prefix, and paths that try to leave their scope. A WebTransport refusal is
//! an HTTP 401; a raw QUIC refusal an `unauthorized` (6) close; each is logged with its reason.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::*;
use moq_lite::coding::SubscribeResponse;
use moq_lite::{BroadcastProducer, Client, Error, OriginProducer, Track, TrackInfo};
use moq_token::{Algorithm, Claims, Key};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Whoever hands out tokens: the signing key, and the public half given to the relay.
struct Issuer {
    key: Key,
    public: String,
}

impl Issuer {
    fn new(alg: Algorithm) -> Self {
        let key = Key::generate(alg, None).unwrap();
        let public = key.to_public().unwrap().encode_string().unwrap();
        Self { key, public }
    }

    fn token(&self, root: &str, put: &[&str], get: &[&str], exp: Option<u64>) -> String {
        sign(&self.key, root, put, get, exp)
    }

    /// A relay verifying this issuer's tokens, with an optional anonymous prefix.
    async fn relay(&self, public: Option<&str>) -> Relay {
        let mut args = vec!["--auth-key", "{dir}/public.jwk"];
        if let Some(prefix) = public {
            args.extend(["--auth-public", prefix]);
        }
        Relay::start(RelayArgs::new(&args).file("public.jwk", &self.public)).await
    }

    /// An HS256 token whose HMAC secret is the relay's public key file: a verifier that let the
    /// token pick the algorithm would check it with those bytes and accept it.
    fn confused(&self, root: &str) -> String {
        let jwk = format!(
            r#"{{"kty":"oct","alg":"HS256","k":"{}"}}"#,
            B64.encode(self.public.as_bytes())
        );
        sign(&Key::decode_str(&jwk).unwrap(), root, &[""], &[""], None)
    }
}

fn sign(key: &Key, root: &str, put: &[&str], get: &[&str], exp: Option<u64>) -> String {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    let claims = Claims {
        root: root.into(),
        publish: strings(put),
        subscribe: strings(get),
        expires: exp,
        ..Default::default()
    };
    key.sign(&claims).unwrap()
}

/// `alg: none`: a header and claims, and an empty signature.
fn unsigned(root: &str) -> String {
    let header = B64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = B64.encode(format!(r#"{{"root":"{root}","put":[""],"get":[""]}}"#));
    format!("{header}.{claims}.")
}

/// The same token with one signature character changed (in the middle, so real signature bits
/// change, not base64 padding bits).
fn tampered(token: &str) -> String {
    let sig_start = token.rfind('.').unwrap() + 1;
    let i = sig_start + 10;
    let mut bytes = token.as_bytes().to_vec();
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

/// The transports a refusal is checked over: WebTransport and WebSocket (HTTP 401 before the
/// session), raw QUIC (the `unauthorized` close code). Not plain TCP: the relay refuses it with
/// the same close, but the peer does not get QMux's close frame before the connection ends (it
/// sees the end of stream: qmux 0.5.3 loses the frame, between bare qmux sessions too), so
/// the code cannot be checked there.
const REFUSED_OVER: [Via; 3] = [Via::WebTransport, Via::Quic, Via::WebSocket];

/// Check the outcome of a connection attempt the relay must refuse.
async fn check_refused(
    relay: &Relay,
    via: Via,
    what: &str,
    result: anyhow::Result<moq_lite::Session>,
) {
    match (via, result) {
        (Via::WebTransport | Via::WebSocket, Err(err)) => assert!(
            format!("{err:#}").contains("401"),
            "{what}: expected HTTP 401, got: {err:#}"
        ),
        (Via::Quic | Via::Tcp, Err(err)) => assert_eq!(
            err.downcast_ref::<Error>(),
            Some(&Error::Unauthorized),
            "{what}: {err:#}"
        ),
        (Via::Quic | Via::Tcp, Ok(session)) => {
            // lite-05 clients do not wait for the relay's SETUP: the refusal is the close.
            let err = tokio::time::timeout(TIMEOUT, session.closed())
                .await
                .unwrap_or_else(|_| {
                    panic!("{what}: accepted over raw QUIC\n{}", relay.log_tail(10))
                });
            assert_eq!(
                err,
                Error::Unauthorized,
                "{what}: closed with the wrong code"
            );
        }
        (Via::WebTransport | Via::WebSocket, Ok(_)) => {
            panic!("{what}: accepted over {via:?}\n{}", relay.log_tail(10))
        }
    }
}

/// Connecting to `path_and_query` over `via` is refused, and the relay logs `reason`.
async fn assert_refused(relay: &Relay, via: Via, path_and_query: &str, reason: &str) {
    let before = relay.log_count(reason);
    let client = Client::new().subscribe(OriginProducer::new());
    let result = relay
        .try_connect(&relay.client(), via, path_and_query, client)
        .await;
    check_refused(
        relay,
        via,
        &format!("{path_and_query} over {via:?}"),
        result,
    )
    .await;
    relay.wait_log(reason, before).await;
}

/// A raw QUIC SETUP Path sent verbatim is refused, and the relay logs `reason`.
async fn assert_setup_path_refused(relay: &Relay, setup_path: &str, reason: &str) {
    let before = relay.log_count(reason);
    let result = relay
        .try_connect_setup_path(setup_path, Client::new().subscribe(OriginProducer::new()))
        .await;
    check_refused(
        relay,
        Via::Quic,
        &format!("SETUP path {setup_path}"),
        result,
    )
    .await;
    relay.wait_log(reason, before).await;
}

/// Publish `name` with a track `video` holding one group, into `origin`.
fn publish(origin: &OriginProducer, name: &str) -> (BroadcastProducer, moq_lite::TrackProducer) {
    let broadcast = BroadcastProducer::new();
    let track = broadcast.create_track(Track::new("video"), TrackInfo::default());
    track.write_frame(0, payload(name, 0, 0, 20)).unwrap();
    origin
        .publish_broadcast(&path(name), broadcast.consume())
        .unwrap();
    (broadcast, track)
}

/// The broadcasts `origin` has right now (its announcement snapshot).
fn announced_now(origin: &OriginProducer) -> Vec<String> {
    let mut consumer = origin.consume();
    let mut out = Vec::new();
    while let Some(a) = consumer.try_announced() {
        if a.broadcast.is_some() {
            out.push(a.path.to_string());
        }
    }
    out.sort();
    out
}

/// Read `name/video`'s first group through a viewer origin.
async fn read_first(origin: &OriginProducer, name: &str) -> Vec<bytes::Bytes> {
    let mut track = wait_broadcast(origin, name)
        .await
        .subscribe_track(&Track::new("video"));
    read_group(next_group(&mut track).await).await.unwrap()
}

/// A token's `put` limits what its holder may announce: an announcement outside it is dropped by
/// the relay (a viewer allowed everything never sees it), one inside it reaches viewers.
#[tokio::test]
async fn tokens_scope_publishing_to_put_and_viewing_to_get() {
    let issuer = Issuer::new(Algorithm::ES256);
    let relay = issuer.relay(Some("anon")).await;
    let alice = issuer.token("demo", &["alice"], &[], None);
    let viewer = issuer.token("demo", &[], &[""], None);

    // bob/cam is live in alice's origin before she connects (her announce snapshot), alice/cam only
    // after: the relay reads them in that order, so once a viewer sees alice/cam, bob/cam was decided.
    let origin = OriginProducer::new();
    let _bob = publish(&origin, "bob/cam");
    let before = relay.log_count("cannot publish remote broadcast");
    let _alice = relay
        .publisher(Via::WebTransport, &format!("/demo?jwt={alice}"), &origin)
        .await;
    relay
        .wait_log("cannot publish remote broadcast", before)
        .await;
    let (_viewer, seen) = relay
        .subscriber(Via::Quic, &format!("/demo?jwt={viewer}"))
        .await;
    let _cam = publish(&origin, "alice/cam");
    assert_eq!(
        read_first(&seen, "alice/cam").await,
        vec![payload("alice/cam", 0, 0, 20)]
    );
    assert_eq!(
        announced_now(&seen),
        vec!["alice/cam".to_string()],
        "bob/cam is outside alice's put"
    );

    let metrics = relay.metrics().await;
    assert_eq!(
        metrics.value("moq_relay_announcements"),
        1.0,
        "{}",
        metrics.text
    );
    let (status, body) = relay
        .http_get(&format!("/announced?jwt={viewer}"))
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "demo/alice/cam\n"));
    // A token without `get` sees nothing over HTTP either.
    let (status, body) = relay
        .http_get(&format!("/announced?jwt={alice}"))
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, ""));
}

/// A token's `get` limits what its holder may discover and subscribe to: a broadcast outside it is
/// not announced, and a SUBSCRIBE for it by name is answered NotFound (13).
#[tokio::test]
async fn subscribing_outside_get_is_not_found() {
    let issuer = Issuer::new(Algorithm::ES256);
    let relay = issuer.relay(None).await;
    let publisher = issuer.token("demo", &[""], &[], None);
    let viewer = issuer.token("demo", &[], &["alice"], None);
    let origin = OriginProducer::new();
    let _alice = publish(&origin, "alice/cam");
    let _bob = publish(&origin, "bob/cam");
    let _publisher = relay
        .publisher(Via::Quic, &format!("/demo?jwt={publisher}"), &origin)
        .await;
    relay
        .wait_metrics("both broadcasts", |m| {
            m.value("moq_relay_announcements") == 2.0
        })
        .await;

    for via in Via::ALL {
        let (_session, seen) = relay.subscriber(via, &format!("/demo?jwt={viewer}")).await;
        assert_eq!(
            read_first(&seen, "alice/cam").await,
            vec![payload("alice/cam", 0, 0, 20)]
        );
        assert_eq!(
            announced_now(&seen),
            vec!["alice/cam".to_string()],
            "{via:?}: bob/cam is outside get"
        );
    }

    let raw = raw_peer(&relay, Some(&format!("/demo?jwt={viewer}"))).await;
    assert_eq!(
        reset_code(&raw, &subscribe_bytes(1, "bob/cam", "video")).await,
        Error::NotFound.code(),
        "SUBSCRIBE outside get"
    );
    assert_eq!(
        reset_code(&raw, &subscribe_bytes(2, "alice/../bob/cam", "video")).await,
        Error::NotFound.code(),
        "SUBSCRIBE with .."
    );
    // The same session may subscribe inside its scope.
    let (mut send, recv) = raw.open_bi().await.unwrap();
    send.write_all(&subscribe_bytes(3, "alice/cam", "video"))
        .await
        .unwrap();
    let response: SubscribeResponse = Wire::new(recv).next().await;
    assert!(
        matches!(response, SubscribeResponse::Start { group: 0 }),
        "{response:?}"
    );
}

/// Forged, foreign, unsigned, algorithm-confused, expired and garbage tokens are refused on both
/// transports, each for its own reason; the genuine token next to them works.
#[tokio::test]
async fn forged_foreign_and_expired_tokens_are_refused() {
    let issuer = Issuer::new(Algorithm::ES256);
    let relay = issuer.relay(Some("anon")).await;
    let good = issuer.token("demo", &[""], &[""], None);
    let stranger = Issuer::new(Algorithm::ES256);

    // The genuine token: a publisher and a viewer on each transport meet.
    let origin = OriginProducer::new();
    let _cam = publish(&origin, "cam");
    let _publisher = relay
        .publisher(Via::WebTransport, &format!("/demo?jwt={good}"), &origin)
        .await;
    for via in REFUSED_OVER {
        let (_session, seen) = relay.subscriber(via, &format!("/demo?jwt={good}")).await;
        assert_eq!(
            read_first(&seen, "cam").await,
            vec![payload("cam", 0, 0, 20)],
            "{via:?}"
        );
    }

    let cases = [
        ("tampered signature", tampered(&good), "bad signature"),
        (
            "signed by another key",
            stranger.token("demo", &[""], &[""], None),
            "bad signature",
        ),
        ("alg none", unsigned("demo"), "wrong algorithm"),
        (
            "HS256 keyed with the public key",
            issuer.confused("demo"),
            "wrong algorithm",
        ),
        (
            "expired a minute ago",
            issuer.token("demo", &[""], &[""], Some(now() - 60)),
            "expired",
        ),
        ("not a JWT", "not-a-token".to_string(), "malformed token"),
    ];
    for (what, token, reason) in &cases {
        for via in REFUSED_OVER {
            let before = relay.log_count(reason);
            let result = relay
                .try_connect(
                    &relay.client(),
                    via,
                    &format!("/demo?jwt={token}"),
                    Client::new().subscribe(OriginProducer::new()),
                )
                .await;
            check_refused(&relay, via, &format!("{what} over {via:?}"), result).await;
            relay.wait_log(reason, before).await;
        }
    }
    // The HTTP listener applies the same check.
    let (status, _) = relay
        .http_get(&format!("/announced?jwt={}", unsigned("")))
        .await
        .unwrap();
    assert_eq!(status, 401);
    let metrics = relay.metrics().await;
    assert_eq!(
        metrics.value("moq_relay_sessions"),
        1.0,
        "only the publisher is left\n{}",
        metrics.text
    );
}

/// `exp` holds for the whole session: a session whose token expires is closed as unauthorized
/// then, not at connect and not never.
#[tokio::test]
async fn a_token_expiring_during_the_session_closes_it() {
    let issuer = Issuer::new(Algorithm::ES256);
    let relay = issuer.relay(None).await;
    let origin = OriginProducer::new();
    let _cam = publish(&origin, "cam");
    let _publisher = relay
        .publisher(
            Via::Quic,
            &format!("/demo?jwt={}", issuer.token("demo", &[""], &[], None)),
            &origin,
        )
        .await;

    let issued = Instant::now();
    let expiring = issuer.token("demo", &[], &[""], Some(now() + 2));
    let mut sessions = Vec::new();
    for via in Via::ALL {
        let (session, seen) = relay
            .subscriber(via, &format!("/demo?jwt={expiring}"))
            .await;
        assert_eq!(
            read_first(&seen, "cam").await,
            vec![payload("cam", 0, 0, 20)],
            "{via:?}: accepted while valid"
        );
        sessions.push((via, session));
    }
    for (via, session) in sessions {
        let err = tokio::time::timeout(Duration::from_secs(4), session.closed())
            .await
            .unwrap_or_else(|_| panic!("{via:?}: still open 4 s after the token expired"));
        // Over QMux (WebSocket, TCP) the close code does not reach the peer: see REFUSED_OVER.
        if matches!(via, Via::WebTransport | Via::Quic) {
            assert_eq!(err, Error::Unauthorized, "{via:?}");
        }
        // exp is whole seconds: at least one second was left when it was issued.
        assert!(
            issued.elapsed() >= Duration::from_millis(900),
            "{via:?}: closed after only {:?}",
            issued.elapsed()
        );
    }
    relay.wait_log("token expired", 1).await;
}

/// The URL path cannot leave the token's root: `demo2` is not under `demo`, `.` and `..` segments
/// are refused however they are spelt, and repeated slashes collapse to the same root.
#[tokio::test]
async fn paths_cannot_escape_the_token_root() {
    let issuer = Issuer::new(Algorithm::ES256);
    let relay = issuer.relay(Some("anon")).await;
    let token = issuer.token("demo", &[""], &[""], None);

    for via in REFUSED_OVER {
        assert_refused(
            &relay,
            via,
            &format!("/demo2?jwt={token}"),
            "grants nothing under /demo2",
        )
        .await;
        assert_refused(
            &relay,
            via,
            &format!("/other?jwt={token}"),
            "grants nothing under /other",
        )
        .await;
    }
    // URL parsing would resolve these before they leave the client: send them verbatim in SETUP.
    for raw in [
        "/demo/../x",
        "/demo/..",
        "/demo/./x",
        "/demo/%2e%2e/x",
        "/demo/%2E%2e",
        "/demo/.%2E/anon",
        "/anon/%2e%2e/demo",
    ] {
        assert_setup_path_refused(&relay, &format!("{raw}?jwt={token}"), "invalid path").await;
    }
    // An encoded slash hides `..` from URL parsing, but not from the relay.
    assert_refused(
        &relay,
        Via::WebTransport,
        &format!("/demo/%2e%2e%2fother?jwt={token}"),
        "invalid path",
    )
    .await;
    assert_refused(
        &relay,
        Via::WebTransport,
        "/anon/%2e%2e%2fdemo",
        "invalid path",
    )
    .await;

    // `//demo//` is `demo`: what is published there is seen at `/demo`, and the other way round.
    let origin = OriginProducer::new();
    let _cam = publish(&origin, "cam");
    let _publisher = relay
        .publisher(Via::WebTransport, &format!("//demo//?jwt={token}"), &origin)
        .await;
    let (_viewer, seen) = relay
        .subscriber(Via::Quic, &format!("/demo?jwt={token}"))
        .await;
    assert_eq!(
        read_first(&seen, "cam").await,
        vec![payload("cam", 0, 0, 20)]
    );
    let seen = OriginProducer::new();
    let _raw_viewer = relay
        .try_connect_setup_path(
            &format!("//demo///?jwt={token}"),
            Client::new().subscribe(seen.clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        read_first(&seen, "cam").await,
        vec![payload("cam", 0, 0, 20)]
    );
}

/// Without a token, the public prefix is open for publishing and viewing, the relay root shows only
/// what is under it, and everything else is refused; a relay without a public prefix refuses every
/// session without a token.
#[tokio::test]
async fn without_a_token_only_the_public_prefix_is_open() {
    let issuer = Issuer::new(Algorithm::ES256);
    let relay = issuer.relay(Some("anon")).await;

    let anon = OriginProducer::new();
    let _cam = publish(&anon, "cam");
    let _anon_publisher = relay.publisher(Via::Quic, "/anon", &anon).await;
    let secret = OriginProducer::new();
    let _secret = publish(&secret, "secret");
    let _secret_publisher = relay
        .publisher(
            Via::WebTransport,
            &format!("/demo?jwt={}", issuer.token("demo", &[""], &[], None)),
            &secret,
        )
        .await;
    relay
        .wait_metrics("both broadcasts", |m| {
            m.value("moq_relay_announcements") == 2.0
        })
        .await;

    for via in REFUSED_OVER {
        let (_session, seen) = relay.subscriber(via, "/anon").await;
        assert_eq!(
            read_first(&seen, "cam").await,
            vec![payload("cam", 0, 0, 20)],
            "{via:?}"
        );
        // At the relay root an anonymous viewer sees the public prefix and nothing else.
        let (_session, seen) = relay.subscriber(via, "/").await;
        assert_eq!(
            read_first(&seen, "anon/cam").await,
            vec![payload("cam", 0, 0, 20)],
            "{via:?}"
        );
        assert_eq!(
            announced_now(&seen),
            vec!["anon/cam".to_string()],
            "{via:?}"
        );

        assert_refused(&relay, via, "/demo", "grants nothing under /demo").await;
        assert_refused(&relay, via, "/anon2", "grants nothing under /anon2").await;
    }
    let (status, body) = relay.http_get("/announced").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "anon/cam\n"));

    // Only a key: no anonymous access at all. (EdDSA this time, algorithm confusion included.)
    let issuer = Issuer::new(Algorithm::EdDSA);
    let closed = issuer.relay(None).await;
    for via in REFUSED_OVER {
        assert_refused(&closed, via, "/anon", "a token is required").await;
        assert_refused(&closed, via, "/", "a token is required").await;
        assert_refused(
            &closed,
            via,
            &format!("/anon?jwt={}", issuer.confused("anon")),
            "wrong algorithm",
        )
        .await;
        let origin = OriginProducer::new();
        let _cam = publish(&origin, "cam");
        let token = issuer.token("anon", &[""], &[""], None);
        let _publisher = closed
            .publisher(via, &format!("/anon?jwt={token}"), &origin)
            .await;
        let (_viewer, seen) = closed.subscriber(via, &format!("/anon?jwt={token}")).await;
        assert_eq!(
            read_first(&seen, "cam").await,
            vec![payload("cam", 0, 0, 20)],
            "{via:?}"
        );
    }
    let (status, _) = closed.http_get("/announced").await.unwrap();
    assert_eq!(status, 401);
}

/// Tokens with `exp` at the edges of u64 (signed by the real key): the relay never panics. A time
/// the clock can hold or not (i64::MAX, 2^63, u64::MAX seconds) is a token that does not expire
/// in practice, so the session is served; `exp: 0` expired long ago and is refused. (Adding
/// u64::MAX seconds to the epoch used to panic the connection's task.)
#[tokio::test]
async fn tokens_with_extreme_expiry_times_get_a_verdict_not_a_panic() {
    let issuer = Issuer::new(Algorithm::ES256);
    let relay = issuer.relay(None).await;
    let origin = OriginProducer::new();
    let _cam = publish(&origin, "cam");
    let _publisher = relay
        .publisher(
            Via::Quic,
            &format!("/demo?jwt={}", issuer.token("demo", &[""], &[], None)),
            &origin,
        )
        .await;

    let mut sessions = Vec::new();
    for exp in [i64::MAX as u64, 1 << 63, u64::MAX] {
        let token = issuer.token("demo", &[], &[""], Some(exp));
        for via in REFUSED_OVER {
            let (session, seen) = relay.subscriber(via, &format!("/demo?jwt={token}")).await;
            assert_eq!(
                read_first(&seen, "cam").await,
                vec![payload("cam", 0, 0, 20)],
                "exp {exp} over {via:?}"
            );
            sessions.push(session);
        }
        let (status, _) = relay
            .http_get(&format!("/announced/demo?jwt={token}"))
            .await
            .unwrap();
        assert_eq!(status, 200, "exp {exp} on the HTTP listener");
    }
    for via in REFUSED_OVER {
        assert_refused(
            &relay,
            via,
            &format!("/demo?jwt={}", issuer.token("demo", &[], &[""], Some(0))),
            "expired",
        )
        .await;
    }
    // The publisher and a viewer per expiry time and transport.
    let expected = (1 + 3 * REFUSED_OVER.len()) as f64;
    relay
        .wait_metrics("the publisher and the viewers", |m| {
            m.value("moq_relay_sessions") == expected
        })
        .await;
    let log = relay.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains("token expired: closing session"), "{log}");
    drop(sessions);
}
