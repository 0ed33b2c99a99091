//! A small plain-HTTP/1.1 GET on hyper, bounded in time and size: the `http://` fingerprint
//! fetch, and the scrapes of a relay's `/metrics` and other plain-HTTP endpoints by tools and
//! tests.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Body;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::BoxError;

/// Largest response head (status line and headers) [`http_get`] reads: hyper's smallest
/// read buffer.
const MAX_HEAD: usize = 8 * 1024;

/// Why an [`http_get`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// Not an `http://` URL with a host (this client speaks plain HTTP/1.1 only).
    #[error("{url:?}: not an http:// URL with a host")]
    Url {
        /// The URL.
        url: String,
    },

    /// The TCP connection failed: refused, unreachable, or the name did not resolve.
    #[error("cannot connect to {url}")]
    Connect {
        /// The URL.
        url: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The HTTP exchange failed: a response that is not HTTP/1.x, a head larger than 8 KiB,
    /// invalid chunked encoding, the connection closed before the response ended.
    #[error("HTTP GET {url} failed")]
    Protocol {
        /// The URL.
        url: String,
        /// hyper's error.
        #[source]
        source: BoxError,
    },

    /// The server answered with another status than 200.
    #[error("GET {url}: status {status}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },

    /// The body (declared or received so far) is larger than the limit.
    #[error("GET {url}: response body larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit, in bytes.
        limit: usize,
    },

    /// No complete response within the time allowed.
    #[error("GET {url} timed out after {after:?}")]
    Timeout {
        /// The URL.
        url: String,
        /// The time allowed.
        after: Duration,
    },
}

/// A response of [`http_get_response`]: any status.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: hyper::HeaderMap,
    /// The whole body (dechunked).
    pub body: Bytes,
}

/// GET `url` (`http://host[:port]/path?query`) over plain HTTP/1.1 and return the body of a
/// 200 response; any other status is [`HttpError::Status`].
///
/// Reads at most `max_body` bytes of body (a larger declared or received body is
/// [`HttpError::TooLarge`]) and an 8 KiB head, and gives up after `timeout` for the whole
/// exchange: connect, request and response.
///
/// The path goes out as written: unlike a [`url::Url`], which resolves `..` and `%2e%2e`
/// segments, a URL string here can test how a server handles them.
pub async fn http_get(url: &str, max_body: usize, timeout: Duration) -> Result<Bytes, HttpError> {
    let response = http_get_response(url, max_body, timeout).await?;
    match response.status {
        200 => Ok(response.body),
        status => Err(HttpError::Status {
            url: url.to_string(),
            status,
        }),
    }
}

/// [`http_get`], returning the response whatever its status, with its headers.
pub async fn http_get_response(
    url: &str,
    max_body: usize,
    timeout: Duration,
) -> Result<HttpResponse, HttpError> {
    tokio::time::timeout(timeout, get(url, max_body))
        .await
        .unwrap_or_else(|_| {
            Err(HttpError::Timeout {
                url: url.to_string(),
                after: timeout,
            })
        })
}

async fn get(url: &str, max_body: usize) -> Result<HttpResponse, HttpError> {
    let bad_url = || HttpError::Url {
        url: url.to_string(),
    };
    let uri: hyper::Uri = url.parse().map_err(|_| bad_url())?;
    if uri.scheme_str() != Some("http") {
        return Err(bad_url());
    }
    let authority = uri.authority().ok_or_else(bad_url)?.clone();
    let port = authority.port_u16().unwrap_or(80);
    // An IPv6 literal is bracketed in a URL, not in a socket address.
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.is_empty() {
        return Err(bad_url());
    }
    let protocol = |source: hyper::Error| HttpError::Protocol {
        url: url.to_string(),
        source: source.into(),
    };

    // Tries each resolved address in turn; TCP refusals are immediate.
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|source| HttpError::Connect {
            url: url.to_string(),
            source,
        })?;
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(MAX_HEAD)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(protocol)?;

    let target = uri.path_and_query().map_or("/", |target| target.as_str());
    let request = hyper::Request::get(target)
        .header(hyper::header::HOST, authority.as_str())
        .header(hyper::header::USER_AGENT, "moq-native")
        .body(Empty::<Bytes>::new())
        .map_err(|err| HttpError::Protocol {
            url: url.to_string(),
            source: err.into(),
        })?;

    let exchange = async {
        let response = sender.send_request(request).await.map_err(protocol)?;
        let too_large = || HttpError::TooLarge {
            url: url.to_string(),
            limit: max_body,
        };
        // A declared length past the limit is refused before any of the body is read.
        if response.body().size_hint().lower() > max_body as u64 {
            return Err(too_large());
        }
        let status = response.status().as_u16();
        let (head, body) = response.into_parts();
        let body = Limited::new(body, max_body)
            .collect()
            .await
            .map_err(
                |err| match err.downcast::<http_body_util::LengthLimitError>() {
                    Ok(_) => too_large(),
                    Err(source) => HttpError::Protocol {
                        url: url.to_string(),
                        source,
                    },
                },
            )?
            .to_bytes();
        Ok(HttpResponse {
            status,
            headers: head.headers,
            body,
        })
    };

    // The connection is driven here, not in a task of its own, so it ends with the exchange
    // (or its timeout). Its errors reach the exchange too, so its result is not needed.
    let mut conn = std::pin::pin!(conn);
    let mut exchange = std::pin::pin!(exchange);
    let mut driving = true;
    loop {
        tokio::select! {
            result = &mut exchange => return result,
            _ = &mut conn, if driving => driving = false,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-connection HTTP server on loopback that reads the request head and answers with
    /// `response` (sent in pieces of `piece` bytes), then closes, or with `hold` keeps the
    /// connection open without another byte. Returns the URL to fetch.
    pub(crate) async fn server(response: Vec<u8>, piece: usize, hold: bool) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let mut buf = [0u8; 512];
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            for piece in response.chunks(piece.max(1)) {
                if stream.write_all(piece).await.is_err() {
                    return;
                }
            }
            if hold {
                // Until the client hangs up.
                let _ = stream.read(&mut [0u8; 1]).await;
            }
        });
        format!("http://127.0.0.1:{port}/path?q=1")
    }

    const LIMIT: usize = 4096;
    const LONG: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn reads_content_length_chunked_and_close_delimited_bodies_in_any_pieces() {
        let chunked =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;note=x\r\nab\r\n1\r\nc\r\n0\r\n\r\n";
        let fixed = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc";
        let close = "HTTP/1.0 200 OK\r\n\r\nabc";
        for response in [chunked, fixed, close] {
            for piece in [1, 5, usize::MAX] {
                let url = server(response.as_bytes().to_vec(), piece, false).await;
                let body = http_get(&url, LIMIT, LONG).await.unwrap();
                assert_eq!(&body[..], b"abc", "{response:?} in pieces of {piece}");
            }
        }
    }

    #[tokio::test]
    async fn other_statuses_are_errors_or_responses() {
        let response =
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nX-A: b\r\n\r\nnope".to_vec();
        let url = server(response.clone(), usize::MAX, false).await;
        let err = http_get(&url, LIMIT, LONG).await.unwrap_err();
        assert!(
            matches!(err, HttpError::Status { status: 404, .. }),
            "{err}"
        );

        let url = server(response, usize::MAX, false).await;
        let response = http_get_response(&url, LIMIT, LONG).await.unwrap();
        assert_eq!(response.status, 404);
        assert_eq!(response.headers["x-a"], "b");
        assert_eq!(&response.body[..], b"nope");
    }

    /// The chunk size that once overflowed our own decoder, and other bodies past the limit:
    /// refused at the limit, not at the timeout, though the server holds the connection open.
    #[tokio::test]
    async fn bodies_past_the_limit_are_refused_at_once() {
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let huge_chunk = format!("{head}ffffffffffffffff\r\n{}", "a".repeat(2 * LIMIT));
        let many_chunks = format!("{head}{}", "1\r\na\r\n".repeat(2 * LIMIT));
        let declared = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", LIMIT + 1);
        let endless = format!("HTTP/1.1 200 OK\r\n\r\n{}", "f".repeat(4 * LIMIT));
        for response in [huge_chunk, many_chunks, declared, endless] {
            let url = server(response.clone().into_bytes(), 1000, true).await;
            let err = http_get(&url, LIMIT, LONG).await.unwrap_err();
            assert!(
                matches!(err, HttpError::TooLarge { limit: LIMIT, .. }),
                "{response:.60?}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn malformed_and_oversized_heads_are_protocol_errors() {
        let long_head = "HTTP/1.1 200 OK\r\nX-Pad: ".to_string() + &"a".repeat(4 * MAX_HEAD);
        for response in [
            "SSH-2.0-OpenSSH_9.6\r\n\r\n".to_string(),
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_string(),
            "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab".to_string(),
            long_head,
        ] {
            let url = server(response.clone().into_bytes(), 1000, false).await;
            let err = http_get(&url, LIMIT, LONG).await.unwrap_err();
            assert!(
                matches!(err, HttpError::Protocol { .. }),
                "{response:.60?}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        // Accepts the connection and reads the request, then says nothing.
        let url = server(Vec::new(), 1, true).await;
        let timeout = Duration::from_millis(300);
        let start = tokio::time::Instant::now();
        let err = http_get(&url, LIMIT, timeout).await.unwrap_err();
        assert!(matches!(err, HttpError::Timeout { .. }), "{err}");
        assert!(start.elapsed() >= timeout);
    }

    #[tokio::test]
    async fn refused_connections_and_other_schemes_are_errors() {
        // Bound but not listening: connections to it are refused, and no other test takes it.
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket
            .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        let port = socket.local_addr().unwrap().as_socket().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/");
        let err = http_get(&url, LIMIT, LONG).await.unwrap_err();
        assert!(matches!(err, HttpError::Connect { .. }), "{err}");
        drop(socket);

        for url in [
            "https://127.0.0.1/",
            "http:///path",
            "127.0.0.1:80/",
            "not a url",
        ] {
            let err = http_get(url, LIMIT, LONG).await.unwrap_err();
            assert!(matches!(err, HttpError::Url { .. }), "{url}: {err}");
        }
    }
}
