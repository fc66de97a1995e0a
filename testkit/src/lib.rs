//! zone-testkit: the harness zone-etcd's integration tests (`tests/zone/`), its history
//! recorder (`recorder/`) and its benchmark program (`bench/`) share, so all run real
//! zones and servers the same way: [`zone`], a local zone made and launched with the real
//! zone-etcd binary; [`process`], a child held by its PID with its log; [`netns`],
//! machines as network namespaces on a switch; [`seaweed`], SeaweedFS as the S3 store of
//! backups; [`slowfs`], a slow disk (zone-slowfs: a FUSE mount whose syncs wait);
//! [`addresses`], the one registry of the address blocks they use.
//!
//! Layer: a tool, above the app (it builds the app's S3 targets). Only tests and tools
//! depend on it; the product's crates never do (`tests/module_circles/layers.rs`).
//!
//! Every fixture fails with one line (`Err(String)`: what is missing and how to get it),
//! never a panic: a test unwraps it (the test fails, never passes), the recorder and the
//! benchmark say it and stop. Every process a fixture starts is killed by its PID when it
//! is dropped, never by name.

pub mod addresses;
pub mod netns;
pub mod process;
pub mod seaweed;
pub mod slowfs;
pub mod zone;

pub use process::Process;
pub use zone::{Kind, Tools, Zone};
