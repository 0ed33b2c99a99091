//! Plain HTTP/1.1 GETs (the relay's `/certificate.sha256`, `/announced`, `/metrics`): a test's
//! view of `moq_native::http_get_response` (hyper), with the body as text.

use std::net::SocketAddr;
use std::time::Duration;

/// Upper bound for one request, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Largest body a test reads (a relay's `/metrics` with many sessions is well below).
pub const MAX_BODY: usize = 64 << 20;

/// A response: status and body (as text, lossily).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, decoded as UTF-8 with replacement characters.
    pub body: String,
}

impl Response {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// GET `path` from `addr` over HTTP/1.1, within [`TIMEOUT`], whatever the status.
pub async fn get(addr: SocketAddr, path: &str) -> std::io::Result<Response> {
    let url = format!("http://{addr}{path}");
    let response = moq_native::http_get_response(&url, MAX_BODY, TIMEOUT)
        .await
        .map_err(std::io::Error::other)?;
    let headers = response
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    Ok(Response {
        status: response.status,
        headers,
        body: String::from_utf8_lossy(&response.body).into_owned(),
    })
}

/// [`get`] from synchronous code (also from inside an async test: it runs on its own thread
/// with its own runtime).
pub fn get_blocking(addr: SocketAddr, path: &str) -> std::io::Result<Response> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(get(addr, path))
            })
            .join()
            .expect("the HTTP thread panicked")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A one-shot server answering `reply` verbatim (a chunked body, as the relay's are).
    fn serve_once(reply: &'static str) -> (SocketAddr, std::thread::JoinHandle<String>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "the client hung up mid-request");
                request.extend_from_slice(&buf[..n]);
            }
            stream.write_all(reply.as_bytes()).unwrap();
            String::from_utf8(request).unwrap()
        });
        (addr, thread)
    }

    #[test]
    fn chunked_body_and_headers() {
        let (addr, server) = serve_once(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab\n\r\n2\r\ncd\r\n0\r\n\r\n",
        );
        let response = get_blocking(addr, "/announced").unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, "ab\ncd");
        assert_eq!(response.header("content-type"), Some("text/plain"));
        let request = server.join().unwrap();
        assert!(
            request.starts_with("GET /announced HTTP/1.1\r\n"),
            "{request}"
        );
    }

    #[tokio::test]
    async fn from_async_code() {
        let (addr, server) = serve_once("HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope");
        let response = get(addr, "/x").await.unwrap();
        assert_eq!((response.status, response.body.as_str()), (404, "nope"));
        server.join().unwrap();
    }
}
