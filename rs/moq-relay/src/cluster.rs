//! Links to other relays (`[cluster]`, spec §13.1): each `--cluster-connect` URL is dialed as an
//! ordinary client session at `/` that publishes this relay's whole origin and subscribes to the
//! peer's, redialed forever with jittered backoff. The session carries this relay's origin (hop)
//! id, so moq-lite's hop chains keep the routes loop-free and split-horizon.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use url::Url;

use crate::relay::Relay;

/// The longest wait between two dials of a peer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The first wait after a link fails.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// A link that stayed up this long starts its backoff afresh when it fails.
const STABLE: Duration = Duration::from_secs(30);

/// One peer to link to: where, and what the URL said for us only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The URL dialed (without `cost`, with `jwt` when a cluster token is set).
    pub url: Url,
    /// The link's price (`?cost=N`; 1 when absent). Read, not used for routing yet.
    pub cost: u64,
}

impl Peer {
    /// Parse a `--cluster-connect` URL: `cost` is taken out, `token` (if any) goes in as `jwt`.
    pub fn parse(url: &str, token: Option<&str>) -> anyhow::Result<Self> {
        let mut url = Url::parse(url).with_context(|| format!("invalid cluster URL {url:?}"))?;
        anyhow::ensure!(
            matches!(url.scheme(), "https" | "http" | "moql"),
            "cluster URL {url}: the scheme must be https, http or moql"
        );
        let mut cost = 1;
        let mut kept = Vec::new();
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "cost" => {
                    cost = value
                        .parse()
                        .with_context(|| format!("cluster URL {url}: invalid cost {value:?}"))?
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

/// Keep a link to `peer` up for as long as the relay runs: dial, publish our whole origin and
/// subscribe to the peer's, and when the session ends, wait (jittered, doubling up to
/// [`MAX_BACKOFF`]) and dial again. Returns when the relay shuts down.
pub async fn link(relay: Arc<Relay>, client: moq_native::QuicClient, peer: Peer) {
    let mut backoff = moq_native::Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    let mut shutdown = relay.shutdown.subscribe();
    let name = peer.display();
    loop {
        let started = tokio::time::Instant::now();
        relay.set_link(&name, |s| {
            s.state = "connecting";
            s.version = None;
        });
        let dialed = tokio::select! {
            dialed = dial(&relay, &client, &peer, &name) => dialed,
            _ = shutdown.wait_for(|down| *down) => return,
        };
        let error = match dialed {
            // Not raced with shutdown: `Relay::run_link` drains the link then.
            Ok(session) => {
                let err = relay.run_link(session).await;
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

/// Dial `peer` and set up the session.
async fn dial(
    relay: &Relay,
    client: &moq_native::QuicClient,
    peer: &Peer,
    name: &str,
) -> anyhow::Result<moq_lite::Session> {
    let connection = client.connect(peer.url.clone()).await?;
    let session = moq_lite::Client::new()
        .with_origin_id(relay.origin_id)
        .with_stats(relay.stats.clone())
        .with_setup_path(connection.setup_path)
        .publish(relay.origin.consume())
        .subscribe(relay.origin.clone())
        .connect(connection.session)
        .await
        .context("cluster session set-up")?;
    tracing::info!(peer = %name, version = %session.version(), "cluster link up");
    relay.set_link(name, |s| {
        s.state = "up";
        s.version = Some(session.version().to_string());
        s.sessions += 1;
    });
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_read_and_token_goes_in_as_jwt() {
        let peer = Peer::parse("https://a.example:4443/?cost=5&x=1", Some("T")).unwrap();
        assert_eq!(peer.cost, 5);
        assert_eq!(peer.url.as_str(), "https://a.example:4443/?x=1&jwt=T");
        assert_eq!(peer.display(), "https://a.example:4443/?x=1&jwt=%E2%80%A6");
        let plain = Peer::parse("moql://b:1/", None).unwrap();
        assert_eq!((plain.cost, plain.url.as_str()), (1, "moql://b:1/"));
        assert!(Peer::parse("ftp://c/", None).is_err());
        assert!(Peer::parse("https://c/?cost=x", None).is_err());
        assert!(Peer::parse("not a url", None).is_err());
    }
}
