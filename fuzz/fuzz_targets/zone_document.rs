//! The nameservice document verifier, against the fixed test root fuzz/root.crt (whose
//! key is not kept: the seed document was signed once with it).
#![no_main]

use std::sync::LazyLock;

use zone_pki::CertInfo;

static ROOTS: LazyLock<Vec<CertInfo>> = LazyLock::new(|| {
    vec![CertInfo::parse_pem(include_str!("../root.crt")).expect("fuzz/root.crt parses")]
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| zone_node::fuzzing::zone_document(data, &ROOTS));
