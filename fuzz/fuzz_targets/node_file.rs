//! The node config parser (node.toml and the seed's JSON form with inline PEM).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zone_node::fuzzing::node_file(data));
