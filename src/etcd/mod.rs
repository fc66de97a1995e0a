//! etcd: its command line ([`args`]), the table of versions and their flags ([`version`]),
//! where the binary is and which etcd it is ([`binary`]), and etcdutl beside it
//! ([`etcdutl`]).

pub mod args;
pub mod binary;
pub mod etcdutl;
pub mod version;

pub use args::{args, env_lines, EtcdPlan};
pub use binary::{find_binary, find_tool, identify, last_stderr_line, Remember};
pub use version::{CorruptCheck, Profile, TlsFloor, Version};
