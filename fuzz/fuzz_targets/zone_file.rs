//! The zone file parser and member validation (TOML and the seed's JSON form).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zone_node::fuzzing::zone_file(data));
