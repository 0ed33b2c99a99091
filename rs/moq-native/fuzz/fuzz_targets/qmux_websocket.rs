//! Fuzz target: see `moq_native::fuzz::qmux_websocket`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moq_native::fuzz::qmux_websocket(data));
