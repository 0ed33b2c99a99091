//! Fuzz target: see `moq_lite::coding::fuzz::setup`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moq_lite::coding::fuzz::setup(data));
