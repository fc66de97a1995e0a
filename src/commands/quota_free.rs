//! `zone-etcd quota free`: the keys under a prefix of this node's service (or of the node's
//! own prefix) deleted by a member (issue 69, item 3). A tenant its quota stopped reads
//! only, so etcd refuses its deletes too; a member's identity endpoint deletes for it, as
//! etcd's root, where the policy gave it write ([`zone_node::identities::free`]), and the
//! leader's keeper gives its write back once it is under nine tenths of its budgets.
//!
//! Invariants: the node proves its name as for an identity (its node CA's leaf, made for
//! the call); a member's refusal is the one line printed; nothing is deleted on this node.

use std::path::Path;

use zone_io::Error;

use zone_node::identities::client::{each_member, post, Failure};
use zone_node::identities::wire::FREE_PATH;
use zone_node::node::Node;

pub fn run(config: &Path, service: Option<&str>, prefix: &str) -> Result<(), Error> {
    let node = Node::load(config)?;
    if node.identities.is_none() {
        return Err(Error::new(format!(
            "zone {} has no [access] policy, so it keeps no quotas",
            node.zone
        ))
        .file(config)
        .fix("delete the keys with etcdctl and this node's client certificate (zone-etcd env)"));
    }
    let (said, url) = each_member(&node, |url, tls| {
        post(url, tls, FREE_PATH, service, prefix).map_err(|f| match f {
            // A member whose etcd did not delete: the next one may.
            Failure::NotYet(why) => Failure::Failed(why),
            other => other,
        })
    })
    .map_err(|e| e.file(config))?;
    println!("{} ({url})", said.trim());
    Ok(())
}
