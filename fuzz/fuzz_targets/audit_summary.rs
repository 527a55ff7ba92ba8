//! Fuzz target: see `check_audit_summary` in tests/fuzz_support/mod.rs.
#![no_main]

#[path = "../../tests/fuzz_support/mod.rs"]
mod fuzz_support;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_support::check_audit_summary(data));
