//! `GET /certificate.sha256` over plain HTTP/1.1 (hyper): the server side for `http://` dev
//! URLs, and the client that fetches it.
//!
//! spec §1.3: for `http://` URLs the client fetches the hash over TCP, pins it and connects to
//! the same host and port with WebTransport.

use std::{convert::Infallible, time::Duration};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{header, Method, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, task::JoinSet};
use url::Url;

use crate::{Error, HttpError};

/// The path serving the certificate fingerprint.
pub const FINGERPRINT_PATH: &str = "/certificate.sha256";

/// Time the server allows a connection for its one exchange.
const SERVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest request head the server reads (hyper's smallest buffer); a larger one is answered
/// 431.
const MAX_REQUEST: usize = 8 * 1024;

/// Serve `GET /certificate.sha256` (body: hex fingerprint) over plain HTTP/1.1 on TCP, for
/// `http://` dev URLs. Runs until the future is dropped.
///
/// Every other path is 404, other methods than GET and HEAD 405. Responses carry
/// `Access-Control-Allow-Origin: *` because browser pages fetch the hash cross-origin. Each
/// connection serves one request, within five seconds, and is handled in a task owned by this
/// future. Accept errors (such as running out of file descriptors) are logged and retried, so
/// it currently never returns.
pub async fn serve_fingerprint(listener: TcpListener, fingerprint: String) -> std::io::Result<()> {
    let fingerprint = Bytes::from(fingerprint);
    let mut connections = JoinSet::new();

    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let fingerprint = fingerprint.clone();
                    let service = hyper::service::service_fn(move |request| {
                        std::future::ready(Ok::<_, Infallible>(respond(&request, &fingerprint)))
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .keep_alive(false)
                        .max_buf_size(MAX_REQUEST)
                        .serve_connection(TokioIo::new(stream), service);
                    connections.spawn(async move {
                        match tokio::time::timeout(SERVE_TIMEOUT, conn).await {
                            Ok(Ok(())) => {}
                            Ok(Err(err)) => tracing::debug!(%peer, %err, "fingerprint request failed"),
                            Err(_) => tracing::debug!(%peer, "fingerprint request timed out"),
                        }
                    });
                }
                Err(err) => {
                    tracing::warn!(%err, "fingerprint listener accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next() => {}
        }
    }
}

/// The answer to one request (hyper leaves the body out for HEAD).
fn respond<B>(request: &hyper::Request<B>, fingerprint: &Bytes) -> hyper::Response<Full<Bytes>> {
    let (status, body) = match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, FINGERPRINT_PATH) => (StatusCode::OK, fingerprint.clone()),
        (&Method::GET | &Method::HEAD, _) => (StatusCode::NOT_FOUND, Bytes::new()),
        _ => (StatusCode::METHOD_NOT_ALLOWED, Bytes::new()),
    };
    let mut response = hyper::Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// Time allowed for the client's whole fetch: connect, request and response.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest fingerprint response body the client accepts (a fingerprint is 64 hex digits; a few
/// separators or a trailing newline fit easily).
pub(crate) const MAX_FINGERPRINT_BODY: usize = 4 * 1024;

/// Fetch the fingerprint of an `http://host:port/...` URL's server from
/// `http://host:port/certificate.sha256` (TCP, same host and port). Returns it as lowercase hex.
///
/// Bounded in time (five seconds for connect, request and response: [`Error::Timeout`]) and in
/// size (a 4 KiB body); another status than 200 or a failed exchange is [`Error::Http`], a body
/// that is not a fingerprint [`Error::Certificate`].
pub async fn fetch_fingerprint(url: &Url) -> Result<String, Error> {
    let mut source = url.clone();
    source.set_path(FINGERPRINT_PATH);
    source.set_query(None);
    source.set_fragment(None);

    let body = match crate::http_get(source.as_str(), MAX_FINGERPRINT_BODY, FETCH_TIMEOUT).await {
        Ok(body) => body,
        Err(HttpError::Timeout { url, after }) => {
            return Err(Error::Timeout {
                what: format!("fetching {url}"),
                after,
            })
        }
        Err(err) => return Err(err.into()),
    };
    let fingerprint = parse_body(&body)
        .map_err(|err| Error::certificate(format!("invalid fingerprint from {source}"), err))?;
    Ok(crate::tls::hex(&fingerprint))
}

/// The fingerprint in a `/certificate.sha256` response body: 64 hex digits, with `:`
/// separators, surrounding white space and any case allowed (non-UTF-8 bytes make it invalid).
pub(crate) fn parse_body(body: &[u8]) -> Result<Vec<u8>, Error> {
    crate::tls::parse_fingerprint(&String::from_utf8_lossy(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    #[test]
    fn bodies_parse_to_fingerprints() {
        let hex = "ab".repeat(32);
        let expected = vec![0xab; 32];
        assert_eq!(parse_body(hex.as_bytes()).unwrap(), expected);
        assert_eq!(
            parse_body(format!("{}\n", hex.to_uppercase()).as_bytes()).unwrap(),
            expected
        );
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_body(colons.as_bytes()).unwrap(), expected);
        let multibyte = "é".repeat(32);
        let bad: [&[u8]; 4] = [b"hello", b"", &[0xff; 64], multibyte.as_bytes()];
        for bad in bad {
            assert!(parse_body(bad).is_err(), "{bad:?}");
        }
    }

    /// A one-connection HTTP server on loopback answering `response` to the first request.
    async fn server(response: &[u8]) -> Url {
        crate::http::tests::server(response.to_vec(), usize::MAX, false)
            .await
            .parse()
            .unwrap()
    }

    #[tokio::test]
    async fn fetch_sorts_its_failures() {
        let url = server(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").await;
        let err = fetch_fingerprint(&url).await.unwrap_err();
        assert!(
            matches!(err, Error::Http(HttpError::Status { status: 404, .. })),
            "{err}"
        );

        let url = server(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").await;
        let err = fetch_fingerprint(&url).await.unwrap_err();
        assert!(matches!(err, Error::Certificate { .. }), "{err}");
        let chain = format!("{:#}", anyhow::Error::from(err));
        assert!(chain.contains("64 hex digits"), "{chain}");

        let body = "0".repeat(MAX_FINGERPRINT_BODY + 1);
        let response = format!("HTTP/1.1 200 OK\r\n\r\n{body}");
        let url = server(response.as_bytes()).await;
        let err = fetch_fingerprint(&url).await.unwrap_err();
        assert!(
            matches!(err, Error::Http(HttpError::TooLarge { .. })),
            "{err}"
        );
    }

    #[tokio::test]
    async fn serves_the_fingerprint_and_404_elsewhere() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hex = "AB".repeat(32);
        let serving = tokio::spawn(serve_fingerprint(listener, hex.clone()));

        let url: Url = format!("http://127.0.0.1:{port}/any/path?jwt=x")
            .parse()
            .unwrap();
        assert_eq!(fetch_fingerprint(&url).await.unwrap(), hex.to_lowercase());

        let other = format!("http://127.0.0.1:{port}/other");
        let response = crate::http_get_response(&other, 1024, FETCH_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(response.status, 404);
        assert_eq!(response.headers["access-control-allow-origin"], "*");

        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream
            .write_all(b"HEAD /certificate.sha256 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("\r\n\r\n"), "no body: {response}");

        serving.abort();
        assert!(serving.await.unwrap_err().is_cancelled());
        assert!(
            fetch_fingerprint(&url).await.is_err(),
            "listener closed with the future"
        );
    }
}
