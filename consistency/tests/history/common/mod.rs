//! Test helpers: a simulated etcd that records correct histories, and the bugs injected
//! into them.
#![allow(dead_code)]

pub mod inject;
pub mod sim;
