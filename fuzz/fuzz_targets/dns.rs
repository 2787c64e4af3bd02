//! Fuzz target `dns`: see `switchyard_tests::fuzz_dns::dns` for the input format
//! and the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard_tests::fuzz_dns::dns(data));
