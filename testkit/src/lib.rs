//! zone-testkit: the fixtures zone-etcd's integration tests (`tests/zone/`) and its
//! benchmark program (`bench/`) share, so both run the real servers they need the same
//! way: [`seaweed`], SeaweedFS as the S3 store of backups.
//!
//! Layer: a tool, above the app (it builds the app's S3 targets). Only tests and tools
//! depend on it; the product's crates never do (`tests/module_circles/layers.rs`).
//!
//! Every fixture fails with one line (`Err(String)`: what is missing and how to get it),
//! never a panic: a test unwraps it (the test fails, never passes), the benchmark says it
//! and stops. Every process a fixture starts is killed by its PID when it is dropped.

pub mod seaweed;
