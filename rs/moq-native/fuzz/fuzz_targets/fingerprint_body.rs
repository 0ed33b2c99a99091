//! Fuzz target: see `moq_native::fuzz::fingerprint_body`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moq_native::fuzz::fingerprint_body(data));
