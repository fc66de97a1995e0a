//! The flags of the commands around zone-etcd itself: the local demo zone, and the shell
//! completions and man pages generated from this command line. Each command's about
//! text is its variant's in [`super::Cmd`].

use std::path::PathBuf;

use clap::Args;

/// `zone-etcd demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// Where the demo keeps its CA, bundles, data and logs.
    #[arg(long, value_name = "DIR", default_value = "zone-demo")]
    pub dir: PathBuf,
}

/// `zone-etcd completions`.
#[derive(Args)]
pub struct CompletionsArgs {
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `zone-etcd man` (internal, for packaging).
#[derive(Args)]
pub struct ManArgs {
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}
