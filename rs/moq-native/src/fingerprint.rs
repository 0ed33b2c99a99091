//! `GET /certificate.sha256` over plain HTTP/1.1: the server side for `http://` dev URLs,
//! and the minimal client that fetches it.
//!
//! spec §1.3: for `http://` URLs the client fetches the hash over TCP, pins it and connects to
//! the same host and port with WebTransport.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinSet,
};
use url::{Host, Url};

/// The path serving the certificate fingerprint.
pub const FINGERPRINT_PATH: &str = "/certificate.sha256";

/// Time the server allows a connection for its one exchange.
const SERVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest request head the server reads.
const MAX_REQUEST: usize = 8 * 1024;

/// Serve `GET /certificate.sha256` (body: hex fingerprint) over plain HTTP/1.1 on TCP, for
/// `http://` dev URLs. Runs until the future is dropped.
///
/// Every other path is 404. Responses carry `Access-Control-Allow-Origin: *` because browser
/// pages fetch the hash cross-origin. Each connection serves one request, within five
/// seconds, and is handled in a task owned by this future. Accept errors (such as running
/// out of file descriptors) are logged and retried, so it currently never returns.
pub async fn serve_fingerprint(listener: TcpListener, fingerprint: String) -> std::io::Result<()> {
    let fingerprint: Arc<str> = fingerprint.into();
    let mut connections = JoinSet::new();

    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let fingerprint = fingerprint.clone();
                    connections.spawn(async move {
                        match tokio::time::timeout(SERVE_TIMEOUT, respond(stream, &fingerprint)).await {
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

/// Answer one request on `stream`.
async fn respond(mut stream: TcpStream, fingerprint: &str) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let head_len = loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            break end;
        }
        if buf.len() >= MAX_REQUEST {
            return write_response(&mut stream, "431 Request Header Fields Too Large", "", true)
                .await;
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };

    let head = String::from_utf8_lossy(&buf[..head_len]);
    let mut parts = head.lines().next().unwrap_or_default().split(' ');
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let path = target.split('?').next().unwrap_or_default();

    match (method, path) {
        ("GET", FINGERPRINT_PATH) => write_response(&mut stream, "200 OK", fingerprint, true).await,
        ("HEAD", FINGERPRINT_PATH) => {
            write_response(&mut stream, "200 OK", fingerprint, false).await
        }
        ("GET" | "HEAD", _) => write_response(&mut stream, "404 Not Found", "", true).await,
        _ => write_response(&mut stream, "405 Method Not Allowed", "", true).await,
    }
}

async fn write_response(
    stream: &mut TcpStream,
    status: &str,
    body: &str,
    with_body: bool,
) -> std::io::Result<()> {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nAccess-Control-Allow-Origin: *\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{}",
        body.len(),
        if with_body { body } else { "" },
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Time allowed for the client's whole fetch: connect, request and response.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest response head (status line and headers) the client accepts.
pub(crate) const MAX_RESPONSE_HEAD: usize = 8 * 1024;

/// Most response headers the client accepts.
const MAX_RESPONSE_HEADERS: usize = 32;

/// Largest response body the client accepts, after chunked decoding (a fingerprint is 64 hex
/// digits; a few separators or a trailing newline fit easily).
pub(crate) const MAX_RESPONSE_BODY: usize = 4 * 1024;

/// Most chunks in a chunked body.
pub(crate) const MAX_RESPONSE_CHUNKS: usize = 64;

/// Most bytes the client reads in all: the head, the body and its chunk framing (size lines,
/// extensions, trailers). Bounds what an endless or padded response costs.
pub(crate) const MAX_RESPONSE: usize = MAX_RESPONSE_HEAD + 2 * MAX_RESPONSE_BODY;

/// Why a fingerprint response was refused. Each is the server's fault (or the path's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ResponseError {
    /// The status line or headers are not HTTP/1.x.
    #[error("malformed response head: {0}")]
    Head(&'static str),
    /// The head did not end within [`MAX_RESPONSE_HEAD`] bytes.
    #[error("response head larger than {MAX_RESPONSE_HEAD} bytes")]
    HeadTooLarge,
    /// Not a 200.
    #[error("unexpected status {0}")]
    Status(u16),
    /// A `Content-Length` that is not a number, or two that disagree.
    #[error("invalid Content-Length")]
    ContentLength,
    /// A `Transfer-Encoding` other than `chunked` (and `identity`).
    #[error("unsupported Transfer-Encoding")]
    TransferEncoding,
    /// The body (declared, a chunk, or read so far) exceeds [`MAX_RESPONSE_BODY`].
    #[error("response body larger than {MAX_RESPONSE_BODY} bytes")]
    BodyTooLarge,
    /// More than [`MAX_RESPONSE_CHUNKS`] chunks.
    #[error("more than {MAX_RESPONSE_CHUNKS} chunks")]
    TooManyChunks,
    /// A chunk size line that is not hex (or overflows 64 bits), or a chunk not followed by CRLF.
    #[error("invalid chunked encoding")]
    Chunked,
    /// More than [`MAX_RESPONSE`] bytes without a complete response.
    #[error("response larger than {MAX_RESPONSE} bytes")]
    TooLarge,
    /// The connection closed before the response was complete.
    #[error("connection closed before the response ended")]
    Truncated,
}

/// Fetch the fingerprint of an `http://host:port/...` URL's server from
/// `http://host:port/certificate.sha256` (TCP, same host and port). Returns it as lowercase hex.
///
/// Bounded in time (five seconds for connect, request and response) and in size (see
/// [`MAX_RESPONSE`] and the limits next to it); anything else the server sends is an error.
pub async fn fetch_fingerprint(url: &Url) -> anyhow::Result<String> {
    fetch(url, FETCH_TIMEOUT).await
}

async fn fetch(url: &Url, timeout: Duration) -> anyhow::Result<String> {
    let port = url.port_or_known_default().unwrap_or(80);
    let host = match url.host().with_context(|| format!("no host in {url}"))? {
        Host::Domain(domain) => domain.to_string(),
        Host::Ipv4(ip) => ip.to_string(),
        Host::Ipv6(ip) => ip.to_string(),
    };
    let authority = format!("{}:{port}", url.host_str().unwrap_or_default());

    let fetch = async {
        // Tries each resolved address in turn; TCP refusals are immediate.
        let mut stream = TcpStream::connect((host.as_str(), port)).await?;
        let request =
            format!("GET {FINGERPRINT_PATH} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: moq-native\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;

        let mut buf = Vec::with_capacity(1024);
        loop {
            let mut chunk = [0u8; 2048];
            let n = stream.read(&mut chunk).await?;
            buf.extend_from_slice(&chunk[..n]);
            if let Some(body) = parse_response(&buf, n == 0)? {
                return anyhow::Ok(body);
            }
            // parse_response refuses anything longer; kept here so the loop is bounded on its own.
            if buf.len() > MAX_RESPONSE {
                return Err(ResponseError::TooLarge.into());
            }
        }
    };

    let source = format!("http://{authority}{FINGERPRINT_PATH}");
    let body = tokio::time::timeout(timeout, fetch)
        .await
        .map_err(|_| anyhow::anyhow!("timed out after {timeout:?}"))
        .and_then(|result| result)
        .with_context(|| format!("failed to fetch {source}"))?;

    let text = String::from_utf8_lossy(&body);
    let fingerprint = crate::tls::parse_fingerprint(&text)
        .with_context(|| format!("invalid fingerprint from {source}"))?;
    Ok(crate::tls::hex(&fingerprint))
}

/// Parse an HTTP/1.x response to the fingerprint request from the bytes received so far.
///
/// `Ok(None)`: need more bytes; `Ok(Some(body))`: a complete 200 response (the body dechunked,
/// bytes after it ignored); `Err`: anything else. `eof` says the connection has closed, so no
/// more bytes will come. Pure and bounded: every size it reads from the response is checked
/// against the `MAX_RESPONSE*` limits before it is used, and it never panics.
pub(crate) fn parse_response(buf: &[u8], eof: bool) -> Result<Option<Vec<u8>>, ResponseError> {
    let more = |limit_hit: bool| {
        if limit_hit {
            Err(ResponseError::TooLarge)
        } else if eof {
            Err(ResponseError::Truncated)
        } else {
            Ok(None)
        }
    };

    let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len > MAX_RESPONSE_HEAD => {
            return Err(ResponseError::HeadTooLarge)
        }
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_RESPONSE_HEAD => {
            return Err(ResponseError::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => return more(false),
        Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::HeadTooLarge),
        Err(err) => return Err(ResponseError::Head(head_error(err))),
    };
    let status = response.code.ok_or(ResponseError::Head("no status"))?;
    if status != 200 {
        return Err(ResponseError::Status(status));
    }

    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or(ResponseError::ContentLength)?;
            // Checked before use: a length past the limit is refused, not awaited.
            if value > MAX_RESPONSE_BODY as u64 {
                return Err(ResponseError::BodyTooLarge);
            }
            let value = value as usize;
            if content_length.is_some_and(|previous| previous != value) {
                return Err(ResponseError::ContentLength);
            }
            content_length = Some(value);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            for coding in header.value.split(|b| *b == b',') {
                match coding.trim_ascii() {
                    c if c.eq_ignore_ascii_case(b"chunked") => chunked = true,
                    c if c.eq_ignore_ascii_case(b"identity") || c.is_empty() => {}
                    _ => return Err(ResponseError::TransferEncoding),
                }
            }
        }
    }

    let body = &buf[head_len..];
    // RFC 9112 §6.3: chunked wins over Content-Length.
    if chunked {
        return match decode_chunked(body)? {
            Some(body) => Ok(Some(body)),
            None => more(buf.len() > MAX_RESPONSE),
        };
    }
    match content_length {
        Some(len) if body.len() >= len => Ok(Some(body[..len].to_vec())),
        Some(_) => more(false),
        // No length: the body runs to the end of the connection.
        None if body.len() > MAX_RESPONSE_BODY => Err(ResponseError::BodyTooLarge),
        None if eof => Ok(Some(body.to_vec())),
        None => Ok(None),
    }
}

fn head_error(err: httparse::Error) -> &'static str {
    match err {
        httparse::Error::Status => "invalid status",
        httparse::Error::Version => "not HTTP/1.x",
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        _ => "invalid",
    }
}

/// Decode a chunked body: `Ok(None)` = need more bytes. Trailers after the last chunk are not
/// awaited (the request asked the server to close).
fn decode_chunked(mut buf: &[u8]) -> Result<Option<Vec<u8>>, ResponseError> {
    let mut body = Vec::new();
    for _ in 0..MAX_RESPONSE_CHUNKS {
        let (line_len, size) = match httparse::parse_chunk_size(buf) {
            Ok(httparse::Status::Complete(parsed)) => parsed,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::InvalidChunkSize) => return Err(ResponseError::Chunked),
        };
        // Checked before use: `size` is up to 2^64 - 1 from the wire.
        let room = MAX_RESPONSE_BODY - body.len();
        if size > room as u64 {
            return Err(ResponseError::BodyTooLarge);
        }
        let size = size as usize;
        let rest = &buf[line_len..];
        if size == 0 {
            return Ok(Some(body));
        }
        let Some((data, after)) = rest.split_at_checked(size) else {
            return Ok(None);
        };
        match after {
            [b'\r', b'\n', ..] => {}
            [] | [b'\r'] => return Ok(None),
            _ => return Err(ResponseError::Chunked),
        }
        body.extend_from_slice(data);
        buf = &after[2..];
    }
    Err(ResponseError::TooManyChunks)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_chunked_and_close_delimited() {
        let fixed = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef";
        assert_eq!(parse_response(fixed, false).unwrap().unwrap(), b"abc");
        assert!(parse_response(&fixed[..30], false).unwrap().is_none());

        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n1;x=y\r\nc\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked, false).unwrap().unwrap(), b"abc");
        for cut in 0..chunked.len() - 5 {
            assert!(
                parse_response(&chunked[..cut], false).unwrap().is_none(),
                "cut at {cut}"
            );
        }

        let close = b"HTTP/1.0 200 OK\r\n\r\nabc";
        assert!(parse_response(close, false).unwrap().is_none());
        assert_eq!(parse_response(close, true).unwrap().unwrap(), b"abc");
    }

    #[test]
    fn rejects_errors_and_truncation() {
        let refused = |bytes: &[u8], eof| parse_response(bytes, eof).unwrap_err();
        assert_eq!(
            refused(b"HTTP/1.1 404 Not Found\r\n\r\n", false),
            ResponseError::Status(404)
        );
        assert_eq!(
            refused(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab", true),
            ResponseError::Truncated
        );
        assert_eq!(refused(b"HTTP/1.1 200", true), ResponseError::Truncated);
        assert!(matches!(
            refused(b"SSH-2.0-OpenSSH\r\n\r\n", false),
            ResponseError::Head(_)
        ));
        assert_eq!(
            refused(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false),
            ResponseError::TransferEncoding
        );
        assert_eq!(
            refused(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
                false
            ),
            ResponseError::ContentLength
        );
    }

    /// The chunk size that used to overflow `size + 2`, and every other size past the limit:
    /// refused as soon as its line is read, without waiting for the data.
    #[test]
    fn hostile_chunk_sizes_are_errors() {
        let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let with = |chunks: &[u8]| [head.as_slice(), chunks].concat();
        for size in [
            "ffffffffffffffff",
            "FFFFFFFFFFFFFFFE",
            "8000000000000000",
            "1001",
        ] {
            let response = with(format!("{size}\r\nab").as_bytes());
            for eof in [false, true] {
                assert_eq!(
                    parse_response(&response, eof),
                    Err(ResponseError::BodyTooLarge),
                    "{size}"
                );
            }
        }
        // 17 hex digits overflow 64 bits; httparse refuses them.
        assert_eq!(
            parse_response(&with(b"1ffffffffffffffff\r\n"), false),
            Err(ResponseError::Chunked)
        );
        assert_eq!(
            parse_response(&with(b"zz\r\n"), false),
            Err(ResponseError::Chunked)
        );
        assert_eq!(
            parse_response(&with(b"2\r\nabXY0\r\n\r\n"), false),
            Err(ResponseError::Chunked),
            "chunk data not followed by CRLF"
        );
        // Chunks that add up past the limit.
        let many = "800\r\n".to_string() + &"a".repeat(0x800) + "\r\n";
        let twice = with((many.clone() + &many + "1\r\n").as_bytes());
        assert_eq!(
            parse_response(&twice, false),
            Err(ResponseError::BodyTooLarge)
        );
        let tiny = with("1\r\na\r\n".repeat(MAX_RESPONSE_CHUNKS + 1).as_bytes());
        assert_eq!(
            parse_response(&tiny, false),
            Err(ResponseError::TooManyChunks)
        );
    }

    #[test]
    fn size_limits_hold_before_the_bytes_arrive() {
        let big_length = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_RESPONSE_BODY + 1
        );
        assert_eq!(
            parse_response(big_length.as_bytes(), false),
            Err(ResponseError::BodyTooLarge)
        );
        assert_eq!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                false
            ),
            Err(ResponseError::ContentLength)
        );
        let long_head = format!(
            "HTTP/1.1 200 OK\r\nX: {}\r\n",
            "a".repeat(MAX_RESPONSE_HEAD)
        );
        assert_eq!(
            parse_response(long_head.as_bytes(), false),
            Err(ResponseError::HeadTooLarge)
        );
        let many_headers = "HTTP/1.1 200 OK\r\n".to_string() + &"X: y\r\n".repeat(100) + "\r\n";
        assert_eq!(
            parse_response(many_headers.as_bytes(), false),
            Err(ResponseError::HeadTooLarge)
        );
        let endless = "HTTP/1.1 200 OK\r\n\r\n".to_string() + &"a".repeat(MAX_RESPONSE_BODY + 1);
        assert_eq!(
            parse_response(endless.as_bytes(), false),
            Err(ResponseError::BodyTooLarge)
        );
        // A chunk extension that never ends.
        let padded = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_string()
            + &"x".repeat(MAX_RESPONSE);
        assert_eq!(
            parse_response(padded.as_bytes(), false),
            Err(ResponseError::TooLarge)
        );
    }

    /// A one-connection HTTP server on loopback that reads the request head and answers with
    /// `response`, sent in pieces of `piece` bytes, then closes (or, with `hold`, keeps the
    /// connection open without another byte). Returns the URL to fetch.
    async fn server(response: Vec<u8>, piece: usize, hold: bool) -> Url {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            while find(&request, b"\r\n\r\n").is_none() {
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
        format!("http://127.0.0.1:{port}/anon").parse().unwrap()
    }

    fn error_text(result: anyhow::Result<String>) -> String {
        format!("{:#}", result.expect_err("the fetch must fail"))
    }

    #[tokio::test]
    async fn fetch_refuses_a_chunk_size_of_2_to_the_64_minus_1() {
        let response =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc\r\n"
                .to_vec();
        let url = server(response, usize::MAX, true).await;
        let err = error_text(fetch(&url, FETCH_TIMEOUT).await);
        assert!(err.contains("larger than 4096"), "{err}");
    }

    #[tokio::test]
    async fn fetch_refuses_oversized_headers_and_endless_bodies() {
        // An endless header line, held open: refused at the limit, not at the timeout.
        let head = "HTTP/1.1 200 OK\r\nX-Pad: ".to_string() + &"a".repeat(4 * MAX_RESPONSE);
        let url = server(head.into_bytes(), 1000, true).await;
        let err = error_text(fetch(&url, Duration::from_secs(60)).await);
        assert!(err.contains("head larger than"), "{err}");

        // A body without a length that never ends.
        let endless = "HTTP/1.1 200 OK\r\n\r\n".to_string() + &"f".repeat(4 * MAX_RESPONSE);
        let url = server(endless.into_bytes(), 1000, true).await;
        let err = error_text(fetch(&url, Duration::from_secs(60)).await);
        assert!(err.contains("body larger than"), "{err}");

        // Endless tiny chunks.
        let chunks = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_string()
            + &"1\r\na\r\n".repeat(1000);
        let url = server(chunks.into_bytes(), 7, true).await;
        let err = error_text(fetch(&url, Duration::from_secs(60)).await);
        assert!(err.contains("more than 64 chunks"), "{err}");
    }

    #[tokio::test]
    async fn fetch_times_out_when_the_server_never_answers() {
        // Accepts the connection and reads the request, then says nothing.
        let url = server(Vec::new(), 1, true).await;
        let timeout = Duration::from_millis(300);
        let start = tokio::time::Instant::now();
        let err = error_text(fetch(&url, timeout).await);
        assert!(err.contains("timed out"), "{err}");
        assert!(start.elapsed() >= timeout);
    }

    #[tokio::test]
    async fn fetch_accepts_valid_responses_in_any_pieces() {
        let hex = "ab".repeat(32);
        let chunked = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n20;note=x\r\n{}\r\n20\r\n{}\r\n0\r\n\r\n",
            &hex[..32],
            &hex[32..]
        );
        let fixed = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 65\r\nConnection: close\r\n\r\n{}\n",
            hex.to_uppercase()
        );
        let close = format!("HTTP/1.0 200 OK\r\n\r\n{hex}");
        for response in [chunked, fixed, close] {
            for piece in [1, 5, usize::MAX] {
                let url = server(response.clone().into_bytes(), piece, false).await;
                assert_eq!(
                    fetch(&url, FETCH_TIMEOUT).await.unwrap(),
                    hex,
                    "{response:?} in pieces of {piece}"
                );
            }
        }
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

        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream
            .write_all(b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 404"), "{response}");

        serving.abort();
        assert!(serving.await.unwrap_err().is_cancelled());
        assert!(
            fetch_fingerprint(&url).await.is_err(),
            "listener closed with the future"
        );
    }
}
