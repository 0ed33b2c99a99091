#![no_main]
//! Stateful: random operation sequences on a track and its consumers (fan-out invariants).
libfuzzer_sys::fuzz_target!(|data: &[u8]| moq_lite::model::fuzz::track_ops(data));
