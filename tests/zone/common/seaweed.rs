//! SeaweedFS as the backup tests' S3 store: zone-testkit's fixture, the one the benchmark
//! program uses too (`testkit/src/seaweed.rs`). Tests run it on the address registry's
//! SeaweedFS blocks (`addresses::SEAWEED_TARGETS`, `addresses::SEAWEED`: one address per
//! test) and unwrap its errors: a missing `weed` fails the test, it never passes.

pub use zone_testkit::seaweed::{Seaweed, BUCKET};
