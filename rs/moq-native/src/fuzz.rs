//! Fuzz-target bodies, shared by the cargo-fuzz crate (`fuzz/fuzz_targets/*.rs`) and the corpus
//! replay test (`tests/fuzz_corpus.rs`), so a committed crash input is checked by `cargo test`.
//!
//! Each function feeds arbitrary bytes to one parser and panics only when it finds a bug in it:
//! the parser panicking, or breaking one of the properties listed on the function.

use crate::fingerprint::{parse_response, MAX_RESPONSE, MAX_RESPONSE_BODY};

/// Prefix checks are quadratic; skip them for inputs longer than this.
const PREFIX_CHECK_LIMIT: usize = 4096;

/// The fingerprint client's HTTP/1.1 response parser, given `data` as the bytes received so far
/// (connection open) and as the whole response (connection closed). Checks that:
/// - a closed connection never leaves it waiting for more bytes;
/// - a body it returns is within the body limit;
/// - past the overall limit it never waits for more bytes;
/// - a response complete while the connection is open reads the same once it has closed;
/// - every strict prefix of a complete response needs more bytes or gives the same body, never
///   an error or another body (for inputs up to 4 KiB).
pub fn http_response(data: &[u8]) {
    let open = parse_response(data, false);
    let closed = parse_response(data, true);

    assert!(
        !matches!(closed, Ok(None)),
        "waits for more bytes after the connection closed"
    );
    for body in [&open, &closed].into_iter().flatten().flatten() {
        assert!(
            body.len() <= MAX_RESPONSE_BODY,
            "a body of {} bytes",
            body.len()
        );
    }
    if data.len() > MAX_RESPONSE {
        assert!(!matches!(open, Ok(None)), "waits past the overall limit");
    }
    let Ok(Some(body)) = open else {
        return;
    };
    assert_eq!(
        closed.as_ref().ok().and_then(Option::as_ref),
        Some(&body),
        "the close changed a complete response"
    );
    if data.len() <= PREFIX_CHECK_LIMIT {
        for cut in 0..data.len() {
            match parse_response(&data[..cut], false) {
                Ok(None) => {}
                Ok(Some(prefix_body)) => assert_eq!(prefix_body, body, "prefix of {cut} bytes"),
                Err(err) => panic!("prefix of {cut} bytes of a valid response: {err}"),
            }
        }
    }
}
