//! Fuzz target: see `check_msgpack` in tests/fuzz_support/mod.rs.
#![no_main]

#[path = "../../tests/fuzz_support/mod.rs"]
mod fuzz_support;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_support::check_msgpack(data));
