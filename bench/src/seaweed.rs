//! The backup sections' S3 store: zone-testkit's SeaweedFS fixture, the one the tests use
//! (`testkit/src/seaweed.rs`: same command line, same readiness probe), on the bench's
//! own addresses (.100 of `addresses::BENCH_PITR`, `addresses::BENCH_TAKEOVER` and
//! `addresses::BENCH_BACKUP`: port slots from 700 on, so the bench never collides with a
//! test running beside it).

use zone_backup::destination::s3::{Options, S3Target};
pub use zone_testkit::seaweed::{Seaweed, ACCESS_KEY, BUCKET, SECRET_KEY};

use crate::support::Result;

/// The S3 target `s3://BUCKET/zones/ZONE` on `weed`, with its credentials.
pub fn s3_target(weed: &Seaweed, zone: &str) -> Result<S3Target> {
    weed.target(
        BUCKET,
        &format!("zones/{zone}"),
        SECRET_KEY,
        Options::default(),
    )
}
