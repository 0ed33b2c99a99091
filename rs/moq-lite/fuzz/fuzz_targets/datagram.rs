//! Fuzz target: see `moq_lite::coding::fuzz::datagram`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moq_lite::coding::fuzz::datagram(data));
