//! `moq-relay`: the moq-lite relay binary. See `docs/relay.md`.

mod auth;
mod cluster;
mod config;
mod metrics;
mod relay;
mod web;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::auth::Auth;
use crate::config::Config;
use crate::relay::Relay;

/// mimalloc, which asks Linux for transparent huge pages for its arenas (when THP is `madvise` or
/// `always`): the fan-out walks the state of every viewer's connection for every frame, and with
/// 2 MiB pages that walk misses the TLB far less (what it buys and costs, measured:
/// docs/performance-notebook.md). `MIMALLOC_ALLOW_THP=0` in the environment turns the huge pages off (most of the gain goes
/// with them: it is the pages, not the allocator). Built without the `mimalloc` feature, the relay
/// uses the system allocator (for heap profilers).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = match Config::load_from(std::env::args_os()) {
        Ok(config) => config,
        // --help, --version, or a malformed flag or variable: clap prints it and exits.
        Err(err) => match err.downcast::<clap::Error>() {
            Ok(usage) => usage.exit(),
            Err(err) => return Err(err),
        },
    };
    moq_native::Log {
        level: config.log.level,
    }
    .init();
    // Not to leave an earlier run's addresses in place while binding (a waiter should still give
    // a path that does not exist yet: it may look before this line runs).
    if let Some(path) = &config.port_file {
        match std::fs::remove_file(path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(err)
                    .with_context(|| format!("cannot remove --port-file {}", path.display()))
            }
            _ => {}
        }
    }

    let key = match &config.auth.key {
        Some(path) => Some(
            moq_token::Key::from_file(path)
                .with_context(|| format!("cannot load --auth-key {}", path.display()))?,
        ),
        None => None,
    };
    let auth = Auth::new(key, config.auth.public.as_deref())?;
    let quic = &config.server;
    let streams = (quic.quic_initial_streams > 0).then_some(moq_lite::StreamWindow {
        initial: quic.quic_initial_streams,
        max_uni: quic.quic_max_streams_uni,
        max_bidi: quic.quic_max_streams_bidi,
    });

    let mut relay = Relay::new(auth, config.limits.max_sessions)
        .with_stream_window(streams)
        .with_handshake_timeout(config.limits.handshake_timeout);
    if let Some(id) = config.cluster.id {
        relay.origin_id = id;
    }
    relay.node = config.cluster.node.clone();
    let peers = cluster_peers(&config.cluster)?;
    let mut server = moq_native::QuicServer::new(moq_native::QuicServerConfig {
        bind: quic.bind,
        tls: moq_native::ServerTlsConfig {
            cert: quic.tls.cert.clone(),
            key: quic.tls.key.clone(),
            generate: quic.tls.generate.clone(),
        },
        protocols: quic.protocols.clone(),
        workers: quic.workers,
        quic: moq_native::QuicConfig {
            idle_timeout_ms: quic.quic_idle_timeout,
            ack_threshold: quic.quic_ack_threshold,
            socket_buffer: quic.quic_socket_buffer,
            max_streams_uni: quic.quic_max_streams_uni,
            max_streams_bidi: quic.quic_max_streams_bidi,
            initial_streams: quic.quic_initial_streams,
            max_mtu: quic.quic_max_mtu,
            congestion: quic.quic_congestion,
            gso: quic.quic_gso.unwrap_or(true),
            ..Default::default()
        },
        handshake_timeout: config.limits.handshake_timeout,
        connection_limit: Some(relay.connections.clone()),
    })?;
    let relay = Arc::new(relay.with_workers(server.workers()));
    let addr = server.local_addr()?;
    let fingerprint = server.fingerprints().first().cloned().unwrap_or_default();
    tracing::info!(%addr, origin_id = relay.origin_id, %fingerprint, workers = server.workers(), "listening for QUIC (WebTransport and raw)");

    let mut bound = Bound {
        quic: addr,
        http: None,
        internal: None,
        tcp: None,
        https: None,
    };
    // One router for the HTTP and HTTPS listeners: the endpoints and, unless --web-ws false,
    // WebSocket sessions at every path.
    let websocket = config
        .web
        .http
        .ws
        .unwrap_or(true)
        .then(|| web::WebSocket::new(relay.clone(), &server_protocols(&quic.protocols)));
    let router = web::router(
        relay.clone(),
        fingerprint.clone(),
        config.web.root.clone(),
        websocket.clone(),
    );
    if let Some(root) = &config.web.root {
        tracing::info!(root = %root.display(), "serving static files");
    }
    if let Some(listen) = config.web.http.listen {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot bind --web-http-listen {listen}"))?;
        let addr = listener.local_addr()?;
        bound.http = Some(addr);
        tracing::info!(%addr, websocket = websocket.is_some(), "listening for HTTP");
        let router = router
            .clone()
            .into_make_service_with_connect_info::<SocketAddr>();
        // A WebSocket session's unsent bytes wait in its QMux queue, not the kernel's buffer.
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp: &mut tokio::net::TcpStream| moq_native::tune_tcp(tcp));
        tokio::spawn(async move { axum::serve(listener, router).await });
    }
    if let Some(listen) = config.web.https.listen {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot bind --web-https-listen {listen}"))?;
        let addr = listener.local_addr()?;
        bound.https = Some(addr);
        tracing::info!(%addr, websocket = websocket.is_some(), "listening for HTTPS");
        tokio::spawn(serve_https(
            listener,
            router,
            server.https_config(),
            config.limits.handshake_timeout,
        ));
    }
    if let Some(listen) = quic.tcp_listen {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot bind --tcp-listen {listen}"))?;
        let addr = listener.local_addr()?;
        bound.tcp = Some(addr);
        tracing::info!(%addr, "listening for moq over TCP (QMux)");
        tokio::spawn(serve_tcp(
            relay.clone(),
            listener,
            Arc::new(server_protocols(&quic.protocols)),
        ));
    }
    if let Some(listen) = config.internal.listen {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot bind --internal-listen {listen}"))?;
        let addr = listener.local_addr()?;
        bound.internal = Some(addr);
        tracing::info!(%addr, "listening for metrics");
        let router = web::internal_router(relay.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
    }
    if let Some(path) = &config.port_file {
        bound
            .write(path)
            .with_context(|| format!("cannot write --port-file {}", path.display()))?;
        tracing::info!(path = %path.display(), "wrote the bound addresses");
    }

    if !peers.is_empty() {
        let client = cluster_client(&config.cluster)?;
        for peer in peers {
            tracing::info!(peer = %peer.display(), cost = ?peer.cost, origin_id = relay.origin_id, "linking to cluster peer");
            let interval = config.cluster.resolve_interval;
            tokio::spawn(cluster::connect(
                relay.clone(),
                client.clone(),
                peer,
                interval,
                vec![addr],
            ));
        }
    }

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            request = server.accept() => match request {
                // On the worker that accepted it: the session's tasks share its connection's thread.
                Some(request) => { request.runtime().clone().spawn(relay.clone().handle(request)); }
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
        }
    }
    tracing::info!(timeout = ?quic.shutdown_timeout, "shutting down: GOAWAY, then draining sessions");
    relay.drain(quic.shutdown_timeout).await;
    server.close();
    // Exiting now would drop the close frames still queued for the peers, leaving them to time out.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), server.wait_idle()).await;
    Ok(())
}

/// The `--cluster-connect` peers, with the `--cluster-token` (if any) in their URLs.
fn cluster_peers(config: &config::Cluster) -> anyhow::Result<Vec<cluster::Peer>> {
    let token = match &config.token {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --cluster-token {}", path.display()))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    config
        .connect
        .iter()
        .filter(|url| !url.trim().is_empty())
        .map(|url| cluster::Peer::parse(url.trim(), token.as_deref()))
        .collect()
}

/// The QUIC client the cluster links dial with: keep-alives well inside any peer's idle timeout
/// (the reference's is 10 s), so links never idle out.
fn cluster_client(config: &config::Cluster) -> anyhow::Result<moq_native::QuicClient> {
    let client = moq_native::QuicClientConfig {
        disable_verify: config.connect_tls_insecure.unwrap_or(false),
        fingerprints: config.connect_tls_fingerprint.clone(),
        quic: moq_native::QuicConfig {
            keep_alive_ms: moq_native::CLIENT_KEEP_ALIVE_MS,
            idle_timeout_ms: moq_native::CLIENT_IDLE_TIMEOUT_MS,
            ..Default::default()
        },
        ..Default::default()
    };
    Ok(moq_native::QuicClient::new(client)?)
}

/// The addresses the relay's listeners are bound to, as `--port-file` reports them: the ports the
/// system chose where the configuration said 0.
#[derive(serde::Serialize)]
struct Bound {
    /// QUIC (WebTransport and raw QUIC), UDP.
    quic: SocketAddr,
    /// The public HTTP listener (`--web-http-listen`), TCP.
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<SocketAddr>,
    /// The internal listener (`--internal-listen`: /metrics, /health), TCP.
    #[serde(skip_serializing_if = "Option::is_none")]
    internal: Option<SocketAddr>,
    /// moq over plain TCP (`--tcp-listen`).
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp: Option<SocketAddr>,
    /// The public HTTPS listener (`--web-https-listen`), TCP.
    #[serde(skip_serializing_if = "Option::is_none")]
    https: Option<SocketAddr>,
}

/// Serve `router` over TLS: each connection gets `timeout` for its TLS handshake, then HTTP/1.1
/// with upgrades (WebSocket sessions), on its own task.
async fn serve_https(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    tls: Arc<tokio_rustls::rustls::ServerConfig>,
    timeout: std::time::Duration,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(%err, "HTTPS accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        moq_native::tune_tcp(&stream);
        let acceptor = acceptor.clone();
        // The peer's address for the handlers, as `into_make_service_with_connect_info` gives it.
        let router = router
            .clone()
            .layer(axum::Extension(axum::extract::ConnectInfo(remote)));
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => return tracing::debug!(%remote, %err, "TLS handshake failed"),
                Err(_) => return tracing::debug!(%remote, "TLS handshake timed out"),
            };
            let service = hyper::service::service_fn(move |request| {
                use tower::ServiceExt;
                router.clone().oneshot(request)
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .with_upgrades();
            if let Err(err) = connection.await {
                tracing::debug!(%remote, %err, "HTTPS connection ended");
            }
        });
    }
}

/// The moq protocols the relay speaks (`--server-protocol`, or moq-native's defaults).
fn server_protocols(configured: &[String]) -> Vec<String> {
    match configured.is_empty() {
        true => moq_native::DEFAULT_PROTOCOLS
            .iter()
            .map(|p| p.to_string())
            .collect(),
        false => configured.to_vec(),
    }
}

/// Accept moq-over-TCP connections: each takes a `--max-sessions` slot (none left: the
/// connection is closed at once) and runs on its own task.
async fn serve_tcp(
    relay: Arc<Relay>,
    listener: tokio::net::TcpListener,
    protocols: Arc<Vec<String>>,
) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // EMFILE and the like: wait instead of spinning.
                tracing::warn!(%err, "TCP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = relay.connections.clone().try_acquire_owned() else {
            tracing::warn!(%remote, "refusing TCP connection: --max-sessions reached");
            continue;
        };
        tokio::spawn(relay.clone().handle_tcp(stream, protocols.clone(), permit));
    }
}

impl Bound {
    /// Write as JSON to `PATH.tmp`, then rename it to `path`: a reader that sees the file sees all
    /// of it.
    fn write(&self, path: &Path) -> anyhow::Result<()> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, serde_json::to_vec(self)?)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}
