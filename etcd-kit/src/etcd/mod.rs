//! etcd: its command line ([`mod@args`]), a release's number ([`release`]), the table of
//! versions and their flags ([`version`]), their known vulnerabilities ([`advisories`]),
//! the steps between releases etcd allows ([`path`]), where the binary is and which etcd
//! it is ([`binary`]), the releases on this machine ([`shelf`]), the next one a member
//! moves to on the owner's way ([`step`]), and etcdutl beside it ([`etcdutl`]).

pub mod advisories;
pub mod args;
pub mod binary;
pub mod etcdutl;
pub mod path;
pub mod release;
pub mod shelf;
pub mod step;
pub mod version;

pub use args::{args, env_lines, EtcdPlan};
pub use binary::{find_binary, find_tool, identify, last_stderr_line, Remember};
pub use release::Version;
pub use version::{CorruptCheck, Profile, TlsFloor};
