//! Links to other relays (`[cluster]`, spec §13.1): each `--cluster-connect` URL is dialed as an
//! ordinary client session at `/` that publishes this relay's whole origin and subscribes to the
//! peer's, redialed forever with jittered backoff. The session carries this relay's origin (hop)
//! id, so moq-lite's hop chains keep the routes loop-free and split-horizon.
//!
//! A URL whose host is a name, not an IP literal, is a set of peers: the name is resolved every
//! `--cluster-resolve-interval` and each address gets a link of its own (a Kubernetes headless
//! Service, a DNS round robin), dialed at that address under the name (TLS, CONNECT). This
//! relay's own addresses are left out, and a link that reaches this relay anyway is refused by
//! it at SETUP (same origin id, [`SELF_LINK`]).
//!
//! ```text
//!   connect URL ──(IP literal)──────────────────────────► link ──► session, redial, ...
//!        └─(name)─► discover: every interval, resolve ──► diff ──► link per address
//!                                                              └─► abort links of gone addresses
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use url::{Host, Url};

use crate::relay::{lock, LinkStatus, Relay};

/// The longest wait between two dials of a peer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The first wait after a link fails.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// A link that stayed up this long starts its backoff afresh when it fails.
const STABLE: Duration = Duration::from_secs(30);
/// A name lookup that takes longer fails (the links stay as they are until the next one).
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// The most addresses of one name that get a link (the lowest, in address order). It bounds the
/// link tasks and the per-link metric series (`peer`, `address` labels) a DNS answer can create.
pub const MAX_ADDRESSES: usize = 64;
/// The close code (application code 1, on the wire 65) with which a relay refuses a session
/// carrying its own origin id: a link to itself. The dialing side stops redialing that address.
pub const SELF_LINK: moq_lite::Error = moq_lite::Error::App(1);

/// One peer to link to: where, and what the URL said for us only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The URL dialed (without `cost`, with `jwt` when a cluster token is set).
    pub url: Url,
    /// The link's price (`?cost=N`): on lite-06 it is added to the cost of every route learned
    /// over the link and declared to the peer in SETUP Cost. `None` when absent: the peer's
    /// SETUP Cost applies, else 1.
    pub cost: Option<u64>,
}

impl Peer {
    /// Parse a `--cluster-connect` URL: `cost` is taken out, `token` (if any) goes in as `jwt`.
    pub fn parse(url: &str, token: Option<&str>) -> anyhow::Result<Self> {
        let mut url = Url::parse(url).with_context(|| format!("invalid cluster URL {url:?}"))?;
        anyhow::ensure!(
            matches!(
                url.scheme(),
                "https" | "http" | "moql" | "ws" | "wss" | "moql+tcp"
            ),
            "cluster URL {url}: the scheme must be https, http, moql, ws, wss or moql+tcp"
        );
        let mut cost = None;
        let mut kept = Vec::new();
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "cost" => {
                    cost =
                        Some(value.parse().with_context(|| {
                            format!("cluster URL {url}: invalid cost {value:?}")
                        })?)
                }
                _ => kept.push((key.into_owned(), value.into_owned())),
            }
        }
        if let Some(token) = token {
            kept.retain(|(key, _)| key != "jwt");
            kept.push(("jwt".to_string(), token.to_string()));
        }
        url.set_query(None);
        if !kept.is_empty() {
            url.query_pairs_mut().extend_pairs(kept);
        }
        Ok(Self { url, cost })
    }

    /// The URL as logs show it: the token hidden.
    pub fn display(&self) -> String {
        let mut url = self.url.clone();
        if url.query_pairs().any(|(k, _)| k == "jwt") {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| match k.as_ref() {
                    "jwt" => (k.into_owned(), "…".to_string()),
                    _ => (k.into_owned(), v.into_owned()),
                })
                .collect();
            url.set_query(None);
            url.query_pairs_mut().extend_pairs(pairs);
        }
        url.to_string()
    }
}

/// Where the links of one `--cluster-connect` URL dial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An IP literal: one link, to that address.
    Address(SocketAddr),
    /// A host name: one link per address it resolves to (at this port).
    Name(String, u16),
}

impl Target {
    /// The target of `url`: its host and port (or the scheme's default, 443 for `moql`).
    pub fn of(url: &Url) -> anyhow::Result<Self> {
        let port = url.port_or_known_default().unwrap_or(443);
        match url.host() {
            // An IP literal stays a domain in a URL of a non-special scheme (`moql://1.2.3.4/`).
            Some(Host::Domain(name)) => match name.parse::<IpAddr>() {
                Ok(ip) => Ok(Self::Address(SocketAddr::new(ip, port))),
                Err(_) => Ok(Self::Name(name.to_string(), port)),
            },
            Some(Host::Ipv4(ip)) => Ok(Self::Address(SocketAddr::new(IpAddr::V4(ip), port))),
            Some(Host::Ipv6(ip)) => Ok(Self::Address(SocketAddr::new(IpAddr::V6(ip), port))),
            None => anyhow::bail!("cluster URL {url}: no host"),
        }
    }
}

/// What a new DNS answer changes: the addresses to dial and those whose links to drop.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// In the answer, without a link yet.
    pub dial: Vec<SocketAddr>,
    /// Linked, and gone from the answer.
    pub drop: Vec<SocketAddr>,
}

impl Change {
    /// From the `linked` addresses to the `wanted` ones (both in address order).
    pub fn between(linked: &BTreeSet<SocketAddr>, wanted: &BTreeSet<SocketAddr>) -> Self {
        Self {
            dial: wanted.difference(linked).copied().collect(),
            drop: linked.difference(wanted).copied().collect(),
        }
    }
}

/// The addresses of a DNS answer to link to: this relay's own left out (see [`is_own`]),
/// duplicates merged, at most [`MAX_ADDRESSES`], in address order.
pub fn wanted(
    answer: impl IntoIterator<Item = SocketAddr>,
    listen: &[SocketAddr],
    is_local: impl Fn(IpAddr) -> bool,
) -> BTreeSet<SocketAddr> {
    let all: BTreeSet<SocketAddr> = answer
        .into_iter()
        // An IPv4-mapped IPv6 address is the IPv4 one (rebuilt only then: that would drop an
        // IPv6 address's scope id).
        .map(|a| match a.ip().to_canonical() {
            IpAddr::V4(v4) if a.is_ipv6() => SocketAddr::new(v4.into(), a.port()),
            _ => a,
        })
        .filter(|a| !is_own(*a, listen, &is_local))
        .collect();
    all.into_iter().take(MAX_ADDRESSES).collect()
}

/// Whether `addr` reaches this relay, listening on `listen`: the same port, and the same IP or,
/// for a wildcard listener (`[::]`, `0.0.0.0`), an IP of this host (`is_local`).
pub fn is_own(addr: SocketAddr, listen: &[SocketAddr], is_local: impl Fn(IpAddr) -> bool) -> bool {
    listen.iter().any(|own| {
        own.port() == addr.port()
            && (own.ip().to_canonical() == addr.ip().to_canonical()
                || (own.ip().is_unspecified() && is_local(addr.ip())))
    })
}

/// Whether `ip` is an address of this host: the kernel sends a datagram to one of its own
/// addresses from that same address (it does for loopback and for every interface's address).
/// No datagram is sent.
pub fn is_local_ip(ip: IpAddr) -> bool {
    let unspecified: IpAddr = match ip {
        IpAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    };
    let Ok(socket) = std::net::UdpSocket::bind((unspecified, 0)) else {
        return false;
    };
    socket.connect((ip, 9)).is_ok() && socket.local_addr().is_ok_and(|local| local.ip() == ip)
}

/// Keep the links of `peer` up for as long as the relay runs: one [`link`] for an IP literal,
/// [`discover`] for a host name. `listen` is where this relay itself listens (never dialed).
pub async fn connect(
    relay: Arc<Relay>,
    client: moq_native::QuicClient,
    peer: Peer,
    resolve_interval: Duration,
    listen: Vec<SocketAddr>,
) {
    match Target::of(&peer.url) {
        Ok(Target::Address(addr)) => link(relay, client, peer, addr, false).await,
        Ok(Target::Name(name, port)) => {
            let lookup = |name: String, port: u16| async move {
                tokio::net::lookup_host((name.as_str(), port))
                    .await
                    .map(|addrs| addrs.collect::<Vec<_>>())
            };
            discover(
                relay,
                client,
                peer,
                (name, port),
                resolve_interval,
                listen,
                lookup,
            )
            .await
        }
        Err(err) => tracing::error!(peer = %peer.display(), %err, "cannot link to cluster peer"),
    }
}

/// A spawned link, aborted (its session closed, its status removed) when dropped.
struct LinkTask(tokio::task::JoinHandle<()>);

impl Drop for LinkTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Link to every address of `name` (as `resolve` answers, [`wanted`] of it), resolving it
/// again every `interval`: a new address gets a [`link`], the link of a vanished one is aborted.
/// A failed lookup leaves the links as they are. Returns when the relay shuts down, aborting
/// every link.
pub async fn discover<F, R>(
    relay: Arc<Relay>,
    client: moq_native::QuicClient,
    peer: Peer,
    (name, port): (String, u16),
    interval: Duration,
    listen: Vec<SocketAddr>,
    resolve: R,
) where
    R: Fn(String, u16) -> F,
    F: Future<Output = std::io::Result<Vec<SocketAddr>>>,
{
    let shown = peer.display();
    let mut links: BTreeMap<SocketAddr, LinkTask> = BTreeMap::new();
    let mut shutdown = relay.shutdown.subscribe();
    // The last answer had no address for us (warned about).
    let mut empty = false;
    loop {
        match tokio::time::timeout(RESOLVE_TIMEOUT, resolve(name.clone(), port)).await {
            Ok(Ok(answer)) => {
                let wanted = wanted(answer, &listen, is_local_ip);
                let linked = links.keys().copied().collect();
                let change = Change::between(&linked, &wanted);
                for addr in change.drop {
                    tracing::info!(peer = %shown, %addr, "cluster peer address gone: dropping its link");
                    links.remove(&addr);
                }
                for addr in change.dial {
                    tracing::info!(peer = %shown, %addr, "cluster peer address found: linking");
                    let task = link(relay.clone(), client.clone(), peer.clone(), addr, true);
                    links.insert(addr, LinkTask(tokio::spawn(task)));
                }
                // When it happens, not at every lookup.
                if wanted.is_empty() && !empty {
                    tracing::warn!(peer = %shown, %name, "no address of the cluster peer to link to");
                }
                empty = wanted.is_empty();
            }
            Ok(Err(err)) => {
                tracing::warn!(peer = %shown, %name, %err, "cannot resolve the cluster peer")
            }
            Err(_) => {
                tracing::warn!(peer = %shown, %name, timeout = ?RESOLVE_TIMEOUT, "resolving the cluster peer timed out")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|down| *down) => return,
        }
    }
}

/// The name of the link to `peer` at `addr` in [`Relay::links`]: the display URL, followed by
/// the address when the URL's host is a name (`resolved`).
pub fn link_name(peer: &Peer, addr: SocketAddr, resolved: bool) -> String {
    match resolved {
        true => format!("{} ({addr})", peer.display()),
        false => peer.display(),
    }
}

/// Removes a link's status when its task ends or is aborted.
struct Listed<'a> {
    relay: &'a Relay,
    name: &'a str,
}

impl Drop for Listed<'_> {
    fn drop(&mut self) {
        self.relay.remove_link(self.name);
    }
}

/// Keep a link to `peer` at `addr` up for as long as the relay runs (or the task is aborted):
/// dial, publish our whole origin and subscribe to the peer's, and when the session ends, wait
/// (jittered, doubling up to [`MAX_BACKOFF`]) and dial again. `resolved` when `addr` is one of
/// the addresses of the URL's host name: it is then dialed under that name. A peer that
/// refuses us as itself ([`SELF_LINK`]) is not dialed again. Returns when the relay shuts down.
pub async fn link(
    relay: Arc<Relay>,
    client: moq_native::QuicClient,
    peer: Peer,
    addr: SocketAddr,
    resolved: bool,
) {
    let mut backoff = moq_native::Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    let mut shutdown = relay.shutdown.subscribe();
    let display = peer.display();
    let name = link_name(&peer, addr, resolved);
    lock(&relay.links).insert(name.clone(), LinkStatus::connecting(&display, Some(addr)));
    let _listed = Listed {
        relay: &relay,
        name: &name,
    };
    let dial = resolved.then_some(addr);
    loop {
        let started = tokio::time::Instant::now();
        relay.set_link(&name, |s| {
            s.state = "connecting";
            s.version = None;
        });
        let dialed = tokio::select! {
            dialed = dial_session(&relay, &client, &peer, dial, &name) => dialed,
            _ = shutdown.wait_for(|down| *down) => return,
        };
        // Not raced with shutdown once up: `Relay::run_link` drains the link then.
        let result = match dialed {
            Ok(session) => Ok(run(&relay, session, &name).await),
            Err(err) => Err(err),
        };
        let error = match result {
            Ok(err) if err == SELF_LINK => {
                tracing::warn!(peer = %name, "the cluster peer is this relay: not linking to it");
                relay.set_link(&name, |s| {
                    s.state = "self";
                    s.version = None;
                    s.last_error = Some("the peer is this relay (same origin id)".into());
                });
                let _ = shutdown.wait_for(|down| *down).await;
                return;
            }
            Ok(err) => {
                tracing::warn!(peer = %name, %err, "cluster link closed");
                err.to_string()
            }
            Err(err) => {
                let err = format!("{err:#}");
                tracing::warn!(peer = %name, %err, "cluster link failed");
                err
            }
        };
        if *shutdown.borrow() {
            return;
        }
        relay.set_link(&name, |s| {
            s.state = "down";
            s.version = None;
            s.last_error = Some(error);
        });
        if started.elapsed() >= STABLE {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        tracing::info!(peer = %name, ?delay, "redialing cluster peer");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|down| *down) => return,
        }
    }
}

/// Dial `peer` (at `dial` if given) and set up the session; while up, it is in the link's status
/// for its counters.
async fn dial_session(
    relay: &Relay,
    client: &moq_native::QuicClient,
    peer: &Peer,
    dial: Option<SocketAddr>,
    name: &str,
) -> anyhow::Result<Arc<moq_lite::Session>> {
    let connection = match dial {
        Some(addr) => client.connect_any_to(peer.url.clone(), addr).await?,
        None => client.connect_any(peer.url.clone()).await?,
    };
    let session = moq_lite::Client::new()
        .with_origin_id(relay.origin_id)
        .with_link_cost(peer.cost)
        .with_stats(relay.stats.clone())
        .with_setup_path(connection.setup_path)
        .publish(relay.origin.consume())
        .subscribe(relay.origin.clone())
        .connect(connection.session)
        .await
        .context("cluster session set-up")?;
    let session = Arc::new(session);
    tracing::info!(peer = %name, version = %session.version(), "cluster link up");
    relay.set_link(name, |s| {
        s.state = "up";
        s.version = Some(session.version().to_string());
        s.sessions += 1;
        s.session = Some(session.clone());
    });
    Ok(session)
}

/// Run an established link until it ends (its close reason); its byte and ANNOUNCE counts are
/// then added to the link's.
async fn run(relay: &Relay, session: Arc<moq_lite::Session>, name: &str) -> moq_lite::Error {
    let err = relay.run_link(session.clone()).await;
    let transport = session.transport_stats();
    let announces = session.stats().get(moq_lite::Metric::AnnounceMessagesIn);
    relay.set_link(name, |s| {
        s.session = None;
        s.ended_bytes_in += transport.bytes_received;
        s.ended_bytes_out += transport.bytes_sent;
        s.ended_announce_messages += announces;
    });
    err
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn addrs(list: &[&str]) -> BTreeSet<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn a_new_answer_dials_the_new_addresses_and_drops_the_gone_ones() {
        let linked = addrs(&["10.0.0.1:4443", "10.0.0.2:4443"]);
        let wanted = addrs(&["10.0.0.2:4443", "10.0.0.3:4443", "[fd00::1]:4443"]);
        let change = Change::between(&linked, &wanted);
        assert_eq!(
            change.dial,
            Vec::from_iter(addrs(&["10.0.0.3:4443", "[fd00::1]:4443"]))
        );
        assert_eq!(change.drop, Vec::from_iter(addrs(&["10.0.0.1:4443"])));
        assert_eq!(Change::between(&wanted, &wanted), Change::default());
        let everything = Change::between(&BTreeSet::new(), &linked);
        assert_eq!((everything.dial.len(), everything.drop.len()), (2, 0));
    }

    #[test]
    fn our_own_addresses_are_not_wanted() {
        let local = |ip: IpAddr| ip.is_loopback() || ip == "10.0.0.9".parse::<IpAddr>().unwrap();
        let answer = addrs(&[
            "10.0.0.9:4443",          // this host, wildcard listener: us
            "10.0.0.1:4443",          // another pod
            "127.0.0.1:4443",         // this host
            "10.0.0.9:5000",          // this host, another port: another relay
            "[::ffff:10.0.0.1]:4443", // the same as 10.0.0.1 (merged)
        ]);
        let wildcard: SocketAddr = "[::]:4443".parse().unwrap();
        assert_eq!(
            wanted(answer.iter().copied(), &[wildcard], local),
            addrs(&["10.0.0.1:4443", "10.0.0.9:5000"])
        );
        // A listener on one address is only that address.
        let one: SocketAddr = "127.0.0.1:4443".parse().unwrap();
        assert_eq!(
            wanted(answer.iter().copied(), &[one], local),
            addrs(&["10.0.0.1:4443", "10.0.0.9:4443", "10.0.0.9:5000"])
        );
        // A huge answer is cut.
        let many = (0..200u16).map(|n| SocketAddr::from(([10, 1, (n >> 8) as u8, n as u8], 4443)));
        assert_eq!(wanted(many, &[], |_| false).len(), MAX_ADDRESSES);
    }

    #[test]
    fn ip_literals_are_addresses_and_names_are_resolved() {
        let target = |url: &str| Target::of(&Url::parse(url).unwrap()).unwrap();
        let addr = |a: &str| Target::Address(a.parse().unwrap());
        assert_eq!(target("moql://127.0.0.1:9/"), addr("127.0.0.1:9"));
        assert_eq!(target("https://127.0.0.1:9/"), addr("127.0.0.1:9"));
        assert_eq!(target("moql://[::1]:9/"), addr("[::1]:9"));
        assert_eq!(target("https://[::1]/"), addr("[::1]:443"));
        assert_eq!(
            target("https://relay.ns.svc:4443/"),
            Target::Name("relay.ns.svc".into(), 4443)
        );
        assert_eq!(target("moql://relay/"), Target::Name("relay".into(), 443));
    }

    #[test]
    fn loopback_is_local_and_a_documentation_address_is_not() {
        assert!(is_local_ip("127.0.0.1".parse().unwrap()));
        assert!(!is_local_ip("203.0.113.7".parse().unwrap()));
    }

    /// The discovery loop against a scripted resolver: links follow the answers, a failed
    /// lookup keeps them, our own address never gets one, shutdown ends them all.
    #[tokio::test]
    async fn links_follow_the_dns_answers() {
        let relay = Arc::new(crate::relay::Relay::new(
            crate::auth::Auth::new(None, Some("")).unwrap(),
            10,
        ));
        let client = moq_native::QuicClient::new(moq_native::QuicClientConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            connect_timeout_ms: 100,
            ..Default::default()
        })
        .unwrap();
        // Ports nothing answers on: the links only try.
        let silent: Vec<std::net::UdpSocket> = (0..4)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let at = |n: usize| silent[n].local_addr().unwrap();
        let own = at(3);
        let answer: Arc<Mutex<std::io::Result<Vec<SocketAddr>>>> =
            Arc::new(Mutex::new(Ok(vec![at(0), at(1), own])));
        let resolve = {
            let answer = answer.clone();
            move |_: String, _: u16| {
                let now = match &*answer.lock().unwrap() {
                    Ok(list) => Ok(list.clone()),
                    Err(err) => Err(std::io::Error::new(err.kind(), err.to_string())),
                };
                async move { now }
            }
        };
        let peer = Peer::parse("https://relays.test:4443/", None).unwrap();
        let task = tokio::spawn(discover(
            relay.clone(),
            client,
            peer.clone(),
            ("relays.test".into(), 4443),
            Duration::from_millis(20),
            vec![own],
            resolve,
        ));
        let names = |list: &[SocketAddr]| -> Vec<String> {
            list.iter().map(|a| link_name(&peer, *a, true)).collect()
        };
        let linked = || -> Vec<String> { lock(&relay.links).keys().cloned().collect() };
        let wait_for = |want: Vec<String>| {
            let linked = &linked;
            async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                while linked() != want {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "{:?} != {want:?}",
                        linked()
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        };

        let mut want = names(&[at(0), at(1)]);
        want.sort();
        wait_for(want).await;
        let status = lock(&relay.links)[&link_name(&peer, at(0), true)].clone();
        assert_eq!(status.peer, "https://relays.test:4443/");
        assert_eq!(status.address, Some(at(0)));

        *answer.lock().unwrap() = Ok(vec![at(1), at(2)]);
        let mut want = names(&[at(1), at(2)]);
        want.sort();
        wait_for(want.clone()).await;

        *answer.lock().unwrap() = Err(std::io::ErrorKind::NotFound.into());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(linked(), want, "a failed lookup keeps the links");

        relay.shutdown.send_replace(true);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("discovery ends at shutdown")
            .unwrap();
        wait_for(Vec::new()).await;
    }

    #[test]
    fn cost_is_read_and_token_goes_in_as_jwt() {
        let peer = Peer::parse("https://a.example:4443/?cost=5&x=1", Some("T")).unwrap();
        assert_eq!(peer.cost, Some(5));
        assert_eq!(peer.url.as_str(), "https://a.example:4443/?x=1&jwt=T");
        assert_eq!(peer.display(), "https://a.example:4443/?x=1&jwt=%E2%80%A6");
        let plain = Peer::parse("moql://b:1/", None).unwrap();
        assert_eq!((plain.cost, plain.url.as_str()), (None, "moql://b:1/"));
        assert!(Peer::parse("ftp://c/", None).is_err());
        assert!(Peer::parse("https://c/?cost=x", None).is_err());
        assert!(Peer::parse("not a url", None).is_err());
    }
}
