//! The duty of serving the member's identity endpoint ([`zone_node::identities::endpoint`]):
//! bound as soon as its port is free (the keeper of a member restarted a moment ago may
//! still hold it for a second); once it serves, its handle is in the [`Slot`] the access
//! keeper tells each policy that comes into force, and the duty is over (the endpoint's
//! threads serve until the process ends with its etcd).

use std::time::Duration;

use super::duty::{Duty, Round};
use zone_node::identities::endpoint::{Endpoint, Slot};
use zone_node::node::Node;

/// Between two attempts to bind the endpoint's port.
const RETRY: Duration = Duration::from_millis(500);

pub struct Serve {
    node: Node,
    slot: Slot,
}

impl Serve {
    /// The duty for `node`, or `None` when its member runs no identity endpoint.
    pub fn new(node: Node) -> Option<Serve> {
        Endpoint::wanted(&node).then(|| Serve {
            node,
            slot: Slot::default(),
        })
    }

    /// Where the endpoint's handle will be once it serves.
    pub fn slot(&self) -> Slot {
        self.slot.clone()
    }
}

impl Duty for Serve {
    fn name(&self) -> String {
        "identity endpoint".into()
    }

    fn pause(&self) -> Duration {
        RETRY
    }

    async fn round(&mut self) -> Result<Round, String> {
        let endpoint = Endpoint::bind(&self.node).map_err(|e| e.to_string())?;
        let line = format!("identity endpoint on {:?}", endpoint.local_addrs());
        self.slot.fill(endpoint.spawn());
        Ok(Round::Done(Some(line)))
    }
}
