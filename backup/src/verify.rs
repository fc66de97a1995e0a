//! Checking a chain as stored: every manifest verified (signature, zone CA), the links in
//! order ([`check_links`]), and every object present with the size and SHA-256 its
//! manifest names. Shared by both drills; blocking.

use std::collections::BTreeMap;

use zone_pki::CertInfo;

use super::chain::{check_links, manifest_seq, Verified};
use super::destination::Target;
use super::local::{LocalChain, MAX_MANIFEST_BYTES};
use super::manifest;

/// Reads and verifies every manifest of a target, in chain order. A failure names the
/// object at fault. Late links (a writer's that is out, see [`super::fork`]) are left out,
/// and the log names each.
pub fn target_links(
    target: &dyn Target,
    zone: Option<&str>,
    roots: &[CertInfo],
) -> Result<(Vec<Verified>, BTreeMap<String, u64>), String> {
    let listed = target.list("").map_err(|e| e.to_string())?;
    let sizes: BTreeMap<String, u64> = listed.into_iter().map(|o| (o.name, o.size)).collect();
    let mut names: Vec<&String> = sizes.keys().filter(|n| manifest_seq(n).is_some()).collect();
    names.sort_by_key(|n| manifest_seq(n));
    let mut links = Vec::with_capacity(names.len());
    let mut zone = zone.map(str::to_string);
    for name in names {
        let Some(bytes) = target
            .get(name, MAX_MANIFEST_BYTES)
            .map_err(|e| e.to_string())?
        else {
            // Pruned since the listing (retention removes the oldest links first); a link
            // gone from the middle still breaks the chain in `check_links`.
            continue;
        };
        let stored = manifest::stored(name, bytes);
        let z = match &zone {
            Some(z) => z.clone(),
            None => {
                // The owner's drill learns the zone from the chain, then verifies every
                // link against the owner's CA.
                let z = manifest::body_unverified(&stored.bytes)
                    .map_err(|p| format!("{name}: {p}"))?
                    .zone;
                zone = Some(z.clone());
                z
            }
        };
        links.push(manifest::verify(&stored, &z, roots).map_err(|p| format!("{name}: {p}"))?);
    }
    let split = super::fork::split_late(links);
    for v in &split.late {
        tracing::warn!(
            "{}: {} is a late link of writer {} (session {}): it reached the target after the next writer took over, and nothing continues it; left out of the chain",
            target.url(),
            v.name,
            v.link.writer,
            v.link.session
        );
    }
    let links = split.chain;
    if let Some(z) = &zone {
        check_links(z, &links).map_err(|b| b.to_string())?;
    }
    Ok((links, sizes))
}

/// Reads and verifies the local chain's manifests, in chain order.
pub fn local_links(
    local: &LocalChain,
    zone: &str,
    roots: &[CertInfo],
) -> Result<Vec<Verified>, String> {
    super::torn::readable(local, zone, roots)?;
    let mut links = Vec::new();
    for name in local.manifests().map_err(|e| e.to_string())? {
        let stored = local.read_manifest(&name).map_err(|e| e.to_string())?;
        links.push(manifest::verify(&stored, zone, roots).map_err(|p| format!("{name}: {p}"))?);
    }
    check_links(zone, &links).map_err(|b| b.to_string())?;
    Ok(links)
}

/// Checks that `target` holds every link of `links` and its object: listed with the size
/// the manifest names; and for `deep` links, fetched and byte-identical (the manifest's
/// SHA-256 and the local copy's).
pub fn target_holds(
    target: &dyn Target,
    local: &LocalChain,
    links: &[Verified],
    deep: &[&Verified],
) -> Result<usize, String> {
    let listed: BTreeMap<String, u64> = target
        .list("")
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|o| (o.name, o.size))
        .collect();
    for v in links {
        if !listed.contains_key(&v.name) {
            return Err(format!("{}: {} is missing", target.url(), v.name));
        }
        if let Some(object) = &v.link.object {
            match listed.get(object) {
                None => return Err(format!("{}: {object} is missing", target.url())),
                Some(&size) if size != v.link.object_size => {
                    return Err(format!(
                        "{}: {object} holds {size} bytes, its manifest says {}",
                        target.url(),
                        v.link.object_size
                    ))
                }
                Some(_) => {}
            }
        }
    }
    for v in deep {
        let stored = local.read_manifest(&v.name).map_err(|e| e.to_string())?;
        let remote = target
            .get(&v.name, MAX_MANIFEST_BYTES)
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        if remote != stored.bytes {
            return Err(format!(
                "{}: {} differs from what was uploaded",
                target.url(),
                v.name
            ));
        }
        if let Some(object) = &v.link.object {
            let tmp = tempfile::NamedTempFile::new_in(local.root()).map_err(|e| e.to_string())?;
            target
                .get_to_file(object, tmp.path())
                .map_err(|e| e.to_string())?;
            let (_, sha) = zone_io::sha256_file(tmp.path()).map_err(|e| e.to_string())?;
            if zone_io::hex(&sha) != v.link.object_sha256 {
                return Err(format!(
                    "{}: {object} differs from what was uploaded (its SHA-256 is not its manifest's)",
                    target.url()
                ));
            }
        }
    }
    Ok(links.len())
}
