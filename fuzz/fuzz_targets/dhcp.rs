//! Fuzz target `dhcp`: see `switchyard_tests::fuzz_dns::dhcp` for the input
//! format and the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard_tests::fuzz_dns::dhcp(data));
