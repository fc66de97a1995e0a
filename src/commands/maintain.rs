//! `zone-etcd maintain`: one maintenance of the zone's databases
//! ([`zone_node::maintenance::reclaim`]: compaction under NOSPACE, defragmentation, the alarm
//! disarmed), its report printed as text or JSON, then its verdict.

use std::path::Path;

use zone_io::Error;

use zone_node::maintenance::reclaim::reclaim;
use zone_node::maintenance::report::render;
use zone_node::node::Node;

pub fn run(config: &Path, json: bool, force: bool) -> Result<(), Error> {
    let node = Node::load(config)?;
    let done = reclaim(&node, force, false)?;
    if json {
        let text = serde_json::to_string_pretty(&done.report)
            .map_err(|e| Error::new(format!("cannot write the output: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", render(&done.report));
    }
    done.verdict(config)
}
