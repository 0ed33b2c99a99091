//! `ServerConfig::workers`: several endpoints on one port (SO_REUSEPORT), each on its own thread.

mod common;

use std::collections::HashSet;

use common::*;
use moq_native::{Server, ServerConfig, ServerTlsConfig};

fn server_with_workers(workers: usize) -> Server {
    Server::new(ServerConfig {
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
        let err = Server::new(ServerConfig {
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
        assert!(format!("{err:#}").contains("bind"), "{err:#}");
    }
}
