//! The `hang` binary against hostile servers: every bad answer is an error exit with a message
//! naming the problem, never a panic.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// Serve `response` to every connection on a loopback TCP port, after reading the request head;
/// runs on a thread until the process ends. Returns the port.
fn hostile_server(response: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let _ = stream.write_all(response);
            // Dropping the stream closes it: the client must not need the close to decide.
        }
    });
    port
}

/// Run `hang subscribe --no-reconnect` (otherwise it would dial again, logging each failure) at
/// the hostile server and return its stderr, after checking it exited with a failure (within the
/// fetch's 5 s bound plus start-up) and did not panic.
fn subscribe_fails(tag: &str, response: &'static [u8]) -> String {
    let port = hostile_server(response);
    let mut run = Run::new(tag);
    let url = format!("http://127.0.0.1:{port}/anon");
    run.spawn(
        "subscribe",
        Command::new(env!("CARGO_BIN_EXE_hang"))
            .args(["subscribe", "--url", &url, "--name", "x", "--no-reconnect"])
            .stdout(std::process::Stdio::null()),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = run.child("subscribe").try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running\n{}", run.logs());
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = run.log("subscribe");
    assert!(!status.success(), "{status}\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        log.contains("certificate.sha256"),
        "names the request: {log}"
    );
    log
}

/// A chunk size of 2^64 - 1 once overflowed our own chunked decoder (a panic); hyper's reads the
/// chunk, and the close in the middle of it is the error.
#[test]
fn a_chunk_size_of_2_to_the_64_minus_1_is_an_error_exit() {
    let log = subscribe_fails(
        "hostile-chunk",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc\r\n",
    );
    assert!(log.contains("HTTP GET"), "{log}");
}

#[test]
fn a_response_that_is_not_a_fingerprint_is_an_error_exit() {
    let log = subscribe_fails(
        "hostile-body",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert!(log.contains("64 hex digits"), "{log}");
}
