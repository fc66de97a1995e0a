//! `zone-etcd rotate`: new leaves with new keys from the node CA, swapped in while etcd
//! runs. etcd reads its certificate and key files on every new TLS handshake, so the new
//! set serves from the next connection on, with no restart. `--if-due` only renews what
//! launch would renew (for a timer).
//!
//! The swap is one rename of the `current` link (see [`zone_node::leaves`]): on disk a set is
//! always whole. etcd itself reads the certificate and then the key as two files; a
//! handshake whose two reads straddle the rename sees a mismatched pair and fails once
//! (measured: see the guide). No layout can close that window from outside etcd, as any
//! change of key must change both files; the guide says so.

use std::path::Path;

use time::format_description::well_known::Rfc3339;
use zone_io::Error;

use zone_node::leaves::{self, Outcome};
use zone_node::node::Node;

pub fn run(config: &Path, if_due: bool) -> Result<(), Error> {
    let node = Node::load(config)?;
    let identity = node.identity();
    node.check_node_ca_covers(&identity)
        .map_err(|e| e.file(config))?;
    if let Some(paths) = &node.external {
        let kinds = zone_node::leaves::kinds_for(&identity);
        zone_node::inspection::validate_external(&node, paths, kinds)?;
        if if_due {
            println!(
                "zone-etcd: the certificates of {} are external and valid; their PKI renews them",
                node.name
            );
            return Ok(());
        }
        return Err(Error::new(format!(
            "the certificates of {} are external ([external] in the node config): zone-etcd never rewrites them (they are valid now)",
            node.name
        ))
        .file(config)
        .field("external")
        .fix("renew them with the PKI that made them; etcd picks up new files on its next handshake"));
    }
    let what = if identity.member {
        "server, peer and client certificates"
    } else {
        "client certificate"
    };
    let reason = if if_due {
        match leaves::ensure(&node, &identity)?.1 {
            Outcome::Reused => {
                let next = leaves::next_renewal(&node, &identity)
                    .and_then(|t| t.format(&Rfc3339).ok())
                    .unwrap_or_else(|| "now".into());
                println!(
                    "zone-etcd: the {what} of {} are not due; next renewal after {next}",
                    node.name
                );
                return Ok(());
            }
            Outcome::Issued { reason } => reason,
        }
    } else {
        leaves::rotate(&node, &identity)?;
        "rotation requested".to_string()
    };
    println!(
        "zone-etcd: rotated the {what} of {} ({reason}); new connections use them, no restart needed",
        node.name
    );
    Ok(())
}
