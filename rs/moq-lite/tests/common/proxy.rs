//! A userspace UDP proxy that limits the server → client rate, like a narrow access link: packets
//! queue up to a byte budget and leave at a fixed rate; past the budget they are dropped.
//! Deterministic: no randomness, only the rate and the queue size.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// A running proxy; dropping it stops it.
pub struct Proxy {
    pub addr: SocketAddr,
    _tasks: JoinSet<()>,
}

impl Proxy {
    /// Forward `127.0.0.1:<addr.port()>` ↔ `upstream`, server → client limited to `rate_bps` bits
    /// per second with a queue of at most `queue_bytes`.
    pub async fn start(upstream: SocketAddr, rate_bps: u64, queue_bytes: usize) -> Self {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        back.connect(upstream).await.unwrap();
        let addr = front.local_addr().unwrap();
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let queue: Arc<Mutex<(VecDeque<Vec<u8>>, usize)>> = Arc::default();
        let notify = Arc::new(Notify::new());
        let mut tasks = JoinSet::new();

        // client → server, unlimited.
        {
            let (front, back, client) = (front.clone(), back.clone(), client.clone());
            tasks.spawn(async move {
                let mut buf = vec![0u8; 65536];
                while let Ok((n, from)) = front.recv_from(&mut buf).await {
                    *client.lock().unwrap() = Some(from);
                    let _ = back.send(&buf[..n]).await;
                }
            });
        }
        // server → queue (tail drop past the budget).
        {
            let (back, queue, notify) = (back.clone(), queue.clone(), notify.clone());
            tasks.spawn(async move {
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = back.recv(&mut buf).await {
                    let mut q = queue.lock().unwrap();
                    if q.1 + n <= queue_bytes {
                        q.1 += n;
                        q.0.push_back(buf[..n].to_vec());
                    }
                    drop(q);
                    notify.notify_one();
                }
            });
        }
        // queue → client at the configured rate.
        {
            let (front, queue, notify, client) =
                (front.clone(), queue.clone(), notify.clone(), client.clone());
            tasks.spawn(async move {
                loop {
                    let packet = {
                        let mut q = queue.lock().unwrap();
                        let p = q.0.pop_front();
                        if let Some(p) = &p {
                            q.1 -= p.len();
                        }
                        p
                    };
                    let Some(packet) = packet else {
                        notify.notified().await;
                        continue;
                    };
                    let to = *client.lock().unwrap();
                    if let Some(to) = to {
                        let _ = front.send_to(&packet, to).await;
                    }
                    let nanos = packet.len() as u64 * 8 * 1_000_000_000 / rate_bps;
                    tokio::time::sleep(Duration::from_nanos(nanos)).await;
                }
            });
        }
        Self {
            addr,
            _tasks: tasks,
        }
    }
}
