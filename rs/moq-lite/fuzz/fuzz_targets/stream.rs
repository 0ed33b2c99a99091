//! Fuzz target: see `moq_lite::coding::fuzz::stream`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moq_lite::coding::fuzz::stream(data));
