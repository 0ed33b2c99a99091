//! HTTP endpoints: the public listener (certificate fingerprint, announced broadcasts, fetching a
//! group, health) and the internal one (Prometheus metrics, health).

use std::collections::HashMap;
use std::fmt::Write;
use std::path::{Path as StdPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use moq_lite::{GroupConsumer, Path, Track};

use crate::metrics::Metrics;
use crate::relay::Relay;

/// How long /fetch waits for a broadcast's group before answering 404.
const FETCH_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct Web {
    relay: Arc<Relay>,
    fingerprint: String,
    root: Option<Arc<PathBuf>>,
}

/// Where the public router accepts WebSocket sessions: the subprotocols, most preferred first
/// (`moq_native::server_subprotocols`); `None` turns WebSocket sessions off.
#[derive(Clone)]
pub struct WebSocket {
    relay: Arc<Relay>,
    subprotocols: Arc<Vec<String>>,
}

impl WebSocket {
    /// Accept WebSocket sessions for the moq `protocols` (ALPN names, most preferred first).
    pub fn new(relay: Arc<Relay>, protocols: &[String]) -> Self {
        Self {
            relay,
            subprotocols: Arc::new(moq_native::server_subprotocols(protocols)),
        }
    }
}

/// The public HTTP router. Every GET answers with `Access-Control-Allow-Origin: *`. With `root`,
/// any other GET path is a static file below it (a web app such as the demo site). With
/// `websocket`, a WebSocket upgrade on any path starts a moq session (QMux over WebSocket,
/// spec §1.5) scoped to that path.
pub fn router(
    relay: Arc<Relay>,
    fingerprint: String,
    root: Option<PathBuf>,
    websocket: Option<WebSocket>,
) -> Router {
    let router = Router::new()
        .route("/certificate.sha256", get(certificate))
        .route("/health", get(health))
        .route("/announced", get(announced_root))
        .route("/announced/{*prefix}", get(announced))
        .route("/fetch/{*path}", get(fetch))
        .fallback(get(static_file))
        .layer(axum::middleware::map_response(cors))
        .with_state(Web {
            relay,
            fingerprint,
            root: root.map(Arc::new),
        });
    match websocket {
        Some(websocket) => router.layer(axum::middleware::from_fn_with_state(
            websocket,
            upgrade_websocket,
        )),
        None => router,
    }
}

/// A plain-text HTTP error answer.
fn refuse(status: StatusCode, text: impl Into<String>) -> Response {
    (status, text.into()).into_response()
}

/// A WebSocket upgrade on any path becomes a moq session there; other requests go on to the
/// routes. The upgrade is checked before it is answered: the subprotocol (400 when the client
/// offers only ones we do not speak), the token for the path (401), a `--max-sessions` slot
/// (503). Then the answer is 101 and the session runs on the upgraded connection.
async fn upgrade_websocket(
    State(ws): State<WebSocket>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = request.headers();
    let upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !upgrade {
        return next.run(request).await;
    }
    let remote = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v != "13")
    {
        return refuse(StatusCode::BAD_REQUEST, "WebSocket version 13 only");
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return refuse(StatusCode::BAD_REQUEST, "no Sec-WebSocket-Key");
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let offered = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let subprotocol = match moq_native::select_subprotocol(offered, &ws.subprotocols) {
        Ok(chosen) => chosen,
        Err(offered) => {
            tracing::info!(%remote, ?offered, "refusing WebSocket session: no subprotocol we speak");
            return refuse(
                StatusCode::BAD_REQUEST,
                format!(
                    "no supported subprotocol (we speak {})",
                    ws.subprotocols.join(", ")
                ),
            );
        }
    };
    let path = request.uri().path().to_string();
    let token = request.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "jwt")
            .map(|(_, v)| v.into_owned())
    });
    let scope = match ws.relay.auth.verify(&path, token.as_deref()) {
        Ok(scope) => scope,
        Err(err) => {
            tracing::warn!(%remote, %path, %err, "refusing WebSocket session: 401");
            return refuse(StatusCode::UNAUTHORIZED, err.to_string());
        }
    };
    let Ok(permit) = ws.relay.connections.clone().try_acquire_owned() else {
        tracing::warn!(%remote, "refusing WebSocket session: --max-sessions reached");
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "too many sessions");
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let relay = ws.relay.clone();
    let chosen = subprotocol.clone();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let io = hyper_util::rt::TokioIo::new(upgraded);
                let session = moq_native::accept_websocket(io, chosen.as_deref()).await;
                relay.handle_websocket(session, scope, remote, permit).await;
            }
            Err(err) => tracing::debug!(%remote, %err, "WebSocket upgrade failed"),
        }
    });
    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept);
    if let Some(subprotocol) = &subprotocol {
        response = response.header(header::SEC_WEBSOCKET_PROTOCOL, subprotocol);
    }
    response
        .body(Body::empty())
        .unwrap_or_else(|_| refuse(StatusCode::INTERNAL_SERVER_ERROR, "bad response"))
}

/// The internal router: metrics and health.
pub fn internal_router(relay: Arc<Relay>) -> Router {
    let cluster_relay = relay.clone();
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(Arc::new(Metrics::new(relay)))
        .merge(
            Router::new()
                .route("/cluster", get(cluster))
                .with_state(cluster_relay),
        )
}

/// `GET /cluster`: this relay's id and advertised address, its links to other relays (state,
/// version, since when, sessions so far, last error, round-trip time, bytes, routes and upstream
/// subscriptions over each) and, per broadcast it knows, the hop chain of the route in use
/// (`hops`) and of every route it holds (`routes`, the one in use first), as JSON
/// (docs/cluster.md).
async fn cluster(State(relay): State<Arc<Relay>>) -> Response {
    let links = relay.link_views();
    let routes: std::collections::BTreeMap<String, serde_json::Value> = relay
        .origin
        .consume()
        .routes()
        .into_iter()
        .map(|(path, chains)| {
            let view = serde_json::json!({ "hops": chains[0], "routes": chains });
            (path.to_string(), view)
        })
        .collect();
    let broadcasts: Vec<&String> = routes.keys().collect();
    let body = serde_json::json!({
        "id": relay.origin_id,
        "origin_id": relay.origin_id,
        "node": relay.node,
        "links": links,
        "routes": routes,
        "broadcasts": broadcasts,
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `/metrics`: OpenMetrics text (see [`crate::metrics`]).
async fn metrics(State(metrics): State<Arc<Metrics>>) -> Response {
    match metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode the metrics\n",
        )
            .into_response(),
    }
}

async fn cors(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

async fn certificate(State(web): State<Web>) -> impl IntoResponse {
    web.fingerprint
}

/// A file below the web root: `/` is `index.html`, a directory its `index.html`, and an
/// extension-less path that is not a file gets `.html` (`/watch` → `watch.html`). Paths with `..`
/// or hidden segments are refused; the root never escapes.
async fn static_file(State(web): State<Web>, uri: axum::http::Uri) -> Response {
    let Some(root) = web.root.as_deref() else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let Some(mut file) = static_path(root, uri.path()) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    if tokio::fs::metadata(&file).await.is_ok_and(|m| m.is_dir()) {
        file.push("index.html");
    } else if file.extension().is_none() && tokio::fs::metadata(&file).await.is_err() {
        file.set_extension("html");
    }
    match tokio::fs::read(&file).await {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, content_type(&file)),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

/// Map a URL path onto the web root, or `None` if it tries to leave it.
fn static_path(root: &StdPath, url: &str) -> Option<PathBuf> {
    let mut file = root.to_path_buf();
    for segment in url.split('/').filter(|s| !s.is_empty()) {
        if segment.starts_with('.') || segment.contains('\\') {
            return None;
        }
        file.push(segment);
    }
    Some(file)
}

fn content_type(file: &StdPath) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

async fn health() -> &'static str {
    "ok\n"
}

type Params = Query<HashMap<String, String>>;

fn scope(web: &Web, params: &Params) -> Result<moq_lite::OriginConsumer, (StatusCode, String)> {
    let scope = web
        .relay
        .auth
        .verify("/", params.get("jwt").map(String::as_str))
        .map_err(|err| (StatusCode::UNAUTHORIZED, format!("{err}\n")))?;
    web.relay
        .origin
        .consume()
        .consume_only(&scope.subscribe)
        .map_err(|err| (StatusCode::BAD_REQUEST, format!("{err}\n")))
}

async fn announced_root(state: State<Web>, params: Params) -> Response {
    list(&state, &params, "")
}

async fn announced(
    state: State<Web>,
    UrlPath(prefix): UrlPath<String>,
    params: Params,
) -> Response {
    list(&state, &params, &prefix)
}

/// The broadcasts live under `prefix`, one path (relative to it) per line.
fn list(web: &Web, params: &Params, prefix: &str) -> Response {
    let origin = match scope(web, params) {
        Ok(origin) => origin,
        Err(refused) => return refused.into_response(),
    };
    let Ok(prefix) = Path::new(prefix) else {
        return (StatusCode::BAD_REQUEST, "invalid prefix\n").into_response();
    };
    let Ok(mut under) = origin.with_prefix(&prefix) else {
        return (StatusCode::BAD_REQUEST, "invalid prefix\n").into_response();
    };
    let mut body = String::new();
    while let Some(announced) = under.try_announced() {
        if announced.broadcast.is_some() {
            let suffix = announced
                .path
                .strip_prefix(&prefix)
                .unwrap_or(announced.path);
            let _ = writeln!(body, "{suffix}");
        }
    }
    body.into_response()
}

/// `/fetch/<broadcast>/<track>[?group=N]`: the payloads of the latest (or the given) group,
/// concatenated, streamed as they arrive.
async fn fetch(state: State<Web>, UrlPath(path): UrlPath<String>, params: Params) -> Response {
    let origin = match scope(&state, &params) {
        Ok(origin) => origin,
        Err(refused) => return refused.into_response(),
    };
    let Some((broadcast, track)) = path.rsplit_once('/') else {
        return (
            StatusCode::BAD_REQUEST,
            "expected /fetch/<broadcast>/<track>\n",
        )
            .into_response();
    };
    let Ok(broadcast) = Path::new(broadcast) else {
        return (StatusCode::BAD_REQUEST, "invalid broadcast path\n").into_response();
    };
    let group = match params.get("group").map(|g| g.parse::<u64>()) {
        None => None,
        Some(Ok(g)) => Some(g),
        Some(Err(_)) => {
            return (StatusCode::BAD_REQUEST, "group must be a number\n").into_response()
        }
    };
    let Some(broadcast) = origin.consume_broadcast(&broadcast) else {
        return (StatusCode::NOT_FOUND, "no such broadcast\n").into_response();
    };
    let mut consumer = broadcast.subscribe_track(&Track::new(track));
    let found: Option<GroupConsumer> = match group {
        // A cached copy, or a FETCH to the publisher (lite-05) when the relay never had it.
        Some(sequence) => match broadcast.fetch_group(track, sequence) {
            Some(group) => {
                // Answer 404 rather than an empty 200 when the publisher does not have it either.
                let mut probe = group.clone();
                match tokio::time::timeout(FETCH_WAIT, probe.next_frame()).await {
                    Ok(Ok(_)) => Some(group),
                    _ => None,
                }
            }
            None => None,
        },
        None => tokio::time::timeout(FETCH_WAIT, consumer.next_group())
            .await
            .ok()
            .and_then(|r| r.ok().flatten()),
    };
    let Some(group) = found else {
        return (StatusCode::NOT_FOUND, "no such group\n").into_response();
    };
    let stream = futures::stream::unfold(
        (group, None::<moq_lite::FrameConsumer>),
        |(mut group, mut frame)| async move {
            loop {
                if let Some(current) = frame.as_mut() {
                    match current.read_chunk().await {
                        Ok(Some(chunk)) => {
                            return Some((Ok::<_, std::io::Error>(chunk), (group, frame)))
                        }
                        Ok(None) => {}
                        Err(err) => return Some((Err(std::io::Error::other(err)), (group, None))),
                    }
                }
                match group.next_frame().await {
                    Ok(Some(next)) => frame = Some(next),
                    Ok(None) => return None,
                    Err(err) => return Some((Err(std::io::Error::other(err)), (group, None))),
                }
            }
        },
    );
    // Keep the subscription alive while the body streams.
    let _keep = consumer;
    Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
