//! The checker's tests, one binary: correct simulated histories pass (`generated`), each
//! injected anomaly is found by its rule (`injected`), and Jepsen's published etcd
//! histories are read and checked (`jepsen`).

mod common;

mod generated;
mod injected;
mod jepsen;
