//! Fuzz-target bodies, shared by the cargo-fuzz crate (`fuzz/fuzz_targets/*.rs`) and the corpus
//! replay test (`tests/fuzz_corpus.rs`), so a committed crash input is checked by `cargo test`.
//!
//! Each function feeds arbitrary bytes to one parser and panics only when it finds a bug in it:
//! the parser panicking, or breaking one of the properties listed on the function. HTTP itself
//! is hyper's (fuzzed upstream); what is left of ours is the body parser.

use crate::fingerprint::parse_body;

/// The parser of a `/certificate.sha256` response body. Checks that:
/// - a fingerprint it returns is 32 bytes (SHA-256);
/// - it accepts only bodies made of 64 hex digits, `:` separators and surrounding white space;
/// - the fingerprint printed as lowercase hex (with or without `:` separators, in upper case,
///   with a trailing newline) parses back to the same bytes.
pub fn fingerprint_body(data: &[u8]) {
    let Ok(fingerprint) = parse_body(data) else {
        return;
    };
    assert_eq!(
        fingerprint.len(),
        32,
        "a fingerprint of {} bytes",
        fingerprint.len()
    );

    let text = std::str::from_utf8(data).expect("accepted a body that is not UTF-8");
    let digits: Vec<u8> = text.trim().bytes().filter(|b| *b != b':').collect();
    assert!(
        digits.len() == 64 && digits.iter().all(u8::is_ascii_hexdigit),
        "accepted {text:?}"
    );

    let hex = crate::tls::hex(&fingerprint);
    let colons: Vec<String> = fingerprint.iter().map(|b| format!("{b:02X}")).collect();
    for printed in [hex.clone(), hex.to_uppercase() + "\n", colons.join(":")] {
        assert_eq!(
            parse_body(printed.as_bytes()).ok().as_ref(),
            Some(&fingerprint),
            "{printed:?} does not parse back"
        );
    }
}
