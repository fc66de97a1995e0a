//! zone-slowfs's tests: the real binary mounted on a temporary directory (as root, with
//! /dev/fuse), each test with a mount of its own.
//!
//! - `syncs`: each fsync/fdatasync waits the delay and really reaches the backing
//!   directory; a sleeping sync holds up no read of another file; the command line.
//! - `files`: the passthrough of what etcd and a Rust program do on a data directory
//!   (modes, rename over a file, unlink, readdir, fallocate, ftruncate, flock, O_APPEND,
//!   O_TRUNC, links, errors), and the page cache coherence bbolt's read-only mmap needs.
//!
//! A real etcd member on the mount is the zone test's (`tests/zone/alerts/slow_disk.rs`:
//! a member's data directory on zone-slowfs, its WAL syncs seen in its own metrics).

mod files;
mod mounted;
mod syncs;
