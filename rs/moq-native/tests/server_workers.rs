//! `QuicServerConfig::workers`: several endpoints on one port (SO_REUSEPORT), each on its own thread.

mod common;

use std::collections::HashSet;

use common::*;
use moq_native::{QuicServer, QuicServerConfig, ServerTlsConfig};

fn server_with_workers(workers: usize) -> QuicServer {
    QuicServer::new(QuicServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        tls: ServerTlsConfig {
            generate: vec!["localhost".into(), "127.0.0.1".into()],
            ..Default::default()
        },
        workers,
        ..Default::default()
    })
    .unwrap()
}

/// Clients from separate sockets are spread over the workers; each request runs on its worker's
/// own runtime (its thread is the worker's), sessions work there, and closing the server ends
/// `accept`.
#[tokio::test]
async fn clients_spread_over_workers_each_served_on_its_own_thread() {
    const WORKERS: usize = 3;
    let mut server = server_with_workers(WORKERS);
    assert_eq!(server.workers(), WORKERS);
    let addr = server.local_addr().unwrap();
    assert_ne!(addr.port(), 0, "the first worker's socket picked the port");

    let mut workers = HashSet::new();
    let mut threads = HashSet::new();
    let mut sessions = Vec::new();
    // Each client has its own UDP port, which Linux hashes to one of the sockets: 48 clients all
    // missing a worker is a (2/3)^48 ≈ 4e-9 event.
    for i in 0..48 {
        let client = client(&server, &[]);
        let url: url::Url = format!("https://127.0.0.1:{}/w{i}", addr.port())
            .parse()
            .unwrap();
        let connect = tokio::spawn(async move {
            let connection = client.connect(url).await.unwrap();
            let session = connection.session;
            let echo = roundtrip(&session, format!("hello {i}").as_bytes()).await;
            (session, echo)
        });
        let request = next(&mut server).await;
        let worker = request.worker();
        assert!(worker < WORKERS, "worker {worker}");
        workers.insert(worker);
        let (thread_tx, thread_rx) = tokio::sync::oneshot::channel();
        request.runtime().clone().spawn(async move {
            let _ = thread_tx.send(std::thread::current().name().map(String::from));
            let session = request.ok().await.unwrap();
            echo_once(session).await;
        });
        let thread = thread_rx.await.unwrap().expect("worker threads are named");
        assert_eq!(
            thread,
            format!("moq-worker-{worker}"),
            "served on its worker's thread"
        );
        threads.insert(thread);
        let (session, echo) = tokio::time::timeout(TEST_TIMEOUT, connect)
            .await
            .expect("echo timed out")
            .unwrap();
        assert_eq!(echo, format!("hello {i}").into_bytes());
        sessions.push(session);
        if workers.len() == WORKERS && i >= 8 {
            break;
        }
    }
    assert_eq!(
        workers.len(),
        WORKERS,
        "every worker got clients: {workers:?}"
    );
    assert_eq!(threads.len(), WORKERS, "one thread per worker: {threads:?}");

    server.close();
    let end = tokio::time::timeout(TEST_TIMEOUT, server.accept())
        .await
        .expect("accept after close timed out");
    assert!(
        end.is_none(),
        "accept returns None once the server is closed"
    );
    tokio::time::timeout(TEST_TIMEOUT, server.wait_idle())
        .await
        .expect("connections closed");
}

/// Two servers cannot share a port by accident: only a server's own workers set SO_REUSEPORT on
/// it, and a second server asking for the same port fails to bind instead of stealing clients.
#[tokio::test]
async fn another_server_on_the_same_port_is_refused() {
    let server = server_with_workers(2);
    let port = server.local_addr().unwrap().port();
    for workers in [1, 2] {
        let err = QuicServer::new(QuicServerConfig {
            bind: format!("127.0.0.1:{port}").parse().unwrap(),
            tls: ServerTlsConfig {
                generate: vec!["localhost".into()],
                ..Default::default()
            },
            workers,
            ..Default::default()
        })
        .err()
        .unwrap_or_else(|| panic!("a second server with {workers} worker(s) bound port {port}"));
        assert!(matches!(err, moq_native::Error::Io { .. }), "{err}");
        assert!(err.to_string().contains("bind"), "{err}");
    }
}

/// A client whose address changes (here: `QuicClient::rebind` to a new socket) either stays on its
/// worker, where the connection migrates and keeps working, or lands on another worker, which
/// knows the workers' shared reset key: the client gets a stateless reset and learns at once
/// that the connection is gone, instead of waiting out its idle timeout.
#[tokio::test]
async fn a_client_moving_to_another_worker_is_reset_at_once() {
    let mut server = server_with_workers(2);
    let port = server.local_addr().unwrap().port();
    let client = client(&server, &[]);
    let url: url::Url = format!("https://127.0.0.1:{port}/move").parse().unwrap();
    let connect = {
        let client = client.clone();
        tokio::spawn(async move { client.connect(url).await.unwrap().session })
    };
    let request = next(&mut server).await;
    request.runtime().clone().spawn(async move {
        let session = request.ok().await.unwrap();
        // Echo every stream until the session ends.
        while let Ok((mut send, mut recv)) = session.accept_bi().await {
            tokio::spawn(async move {
                let data = recv.read_to_end(1024).await.unwrap_or_default();
                let _ = send.write_all(&data).await;
                let _ = send.finish();
            });
        }
    });
    let session = connect.await.unwrap();
    assert_eq!(roundtrip(&session, b"before").await, b"before");

    // Each new socket has a new port, hashed to either worker: 24 moves all staying put is a
    // 2^-24 event.
    for moves in 1..=24 {
        client.rebind("[::]:0".parse().unwrap()).unwrap();
        let echo = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            roundtrip_or_error(&session, b"after"),
        )
        .await;
        match echo {
            Ok(Ok(data)) => assert_eq!(data, b"after", "migrated on its own worker"),
            outcome => {
                // On another worker: the reset must already have closed the session (well
                // within the 10 s idle timeout the client would otherwise wait for).
                // (quinn logs "got stateless reset"; the session reports a closed connection).
                tokio::time::timeout(std::time::Duration::from_secs(2), session.closed())
                    .await
                    .unwrap_or_else(|_| {
                        panic!("move {moves}: no echo ({outcome:?}) and the session still open")
                    });
                return;
            }
        }
    }
    panic!("24 moves never reached the other worker");
}

/// Like `roundtrip`, but an error instead of a panic when the session is gone.
async fn roundtrip_or_error(
    session: &moq_native::web_transport_quinn::Session,
    data: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let (mut send, mut recv) = session.open_bi().await?;
    send.write_all(data).await?;
    send.finish()?;
    Ok(recv.read_to_end(64 * 1024).await?)
}

/// A worker count no machine needs is refused with the limit, not a thousand threads later.
#[tokio::test]
async fn too_many_workers_are_refused() {
    let err = QuicServer::new(QuicServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        tls: ServerTlsConfig {
            generate: vec!["localhost".into()],
            ..Default::default()
        },
        workers: moq_native::MAX_WORKERS + 1,
        ..Default::default()
    })
    .err()
    .expect("refused");
    assert!(matches!(err, moq_native::Error::Config { .. }), "{err}");
    assert!(err.to_string().contains("at most"), "{err}");
}
