//! SeaweedFS as the backup tests' S3 store: zone-testkit's fixture, the one the benchmark
//! program uses too (`testkit/src/seaweed.rs`). Tests run it on 127.0.96.x and 127.0.97.x
//! (the address registry's SeaweedFS blocks) and unwrap its errors: a missing `weed`
//! fails the test, it never passes.

pub use zone_testkit::seaweed::{Seaweed, BUCKET};
