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

/// Time allowed for a whole exchange, on either side.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Largest request head the server reads.
const MAX_REQUEST: usize = 8 * 1024;

/// Largest response the client reads (a fingerprint is 64 bytes).
const MAX_RESPONSE: usize = 16 * 1024;

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
                        match tokio::time::timeout(TIMEOUT, respond(stream, &fingerprint)).await {
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

/// Fetch the fingerprint of an `http://host:port/...` URL's server from
/// `http://host:port/certificate.sha256` (TCP, same host and port; five-second timeout,
/// 16 KiB limit). Returns it as lowercase hex.
pub async fn fetch_fingerprint(url: &Url) -> anyhow::Result<String> {
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

        let mut buf = Vec::new();
        loop {
            let mut chunk = [0u8; 2048];
            let n = stream.read(&mut chunk).await?;
            buf.extend_from_slice(&chunk[..n]);
            anyhow::ensure!(
                buf.len() <= MAX_RESPONSE,
                "response larger than {MAX_RESPONSE} bytes"
            );
            if let Some(body) = parse_response(&buf, n == 0)? {
                return Ok(body);
            }
        }
    };

    let body = tokio::time::timeout(TIMEOUT, fetch)
        .await
        .map_err(|_| anyhow::anyhow!("timed out"))
        .and_then(|result| result)
        .with_context(|| format!("failed to fetch http://{authority}{FINGERPRINT_PATH}"))?;

    let text = String::from_utf8_lossy(&body);
    Ok(crate::tls::hex(&crate::tls::parse_fingerprint(&text)?))
}

/// Parse an HTTP/1.x response: `Ok(None)` = need more bytes, `Ok(Some(body))` for a 200.
fn parse_response(buf: &[u8], eof: bool) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(head_len) = find(buf, b"\r\n\r\n") else {
        anyhow::ensure!(!eof, "connection closed before the response headers ended");
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..head_len]).context("response headers are not UTF-8")?;
    let body = &buf[head_len + 4..];

    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line.split(' ').nth(1).unwrap_or_default();
    anyhow::ensure!(status == "200", "unexpected response {status_line:?}");

    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(value.parse::<usize>().context("invalid Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }

    if chunked {
        return decode_chunked(body, eof);
    }
    match content_length {
        Some(len) if body.len() >= len => Ok(Some(body[..len].to_vec())),
        Some(_) => {
            anyhow::ensure!(!eof, "connection closed before the body ended");
            Ok(None)
        }
        // No length: the body runs to the end of the connection.
        None => Ok(eof.then(|| body.to_vec())),
    }
}

/// Decode a chunked body: `Ok(None)` = need more bytes.
fn decode_chunked(mut buf: &[u8], eof: bool) -> anyhow::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(buf, b"\r\n") else {
            anyhow::ensure!(!eof, "connection closed inside a chunk");
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[..line_end]).context("invalid chunk size")?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).context("invalid chunk size")?;
        let rest = &buf[line_end + 2..];
        if size == 0 {
            return Ok(Some(body));
        }
        if rest.len() < size + 2 {
            anyhow::ensure!(!eof, "connection closed inside a chunk");
            return Ok(None);
        }
        body.extend_from_slice(&rest[..size]);
        buf = &rest[size + 2..];
    }
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
        assert!(parse_response(b"HTTP/1.1 404 Not Found\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab", true).is_err());
        assert!(parse_response(b"HTTP/1.1 200", true).is_err());
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
