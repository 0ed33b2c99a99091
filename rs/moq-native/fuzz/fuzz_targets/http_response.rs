//! Fuzz target: see `moq_native::fuzz::http_response`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moq_native::fuzz::http_response(data));
