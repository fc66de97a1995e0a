//! A node's own chain as the source of history for `undo`: which revision a time names,
//! and the keys under a prefix at a revision etcd has compacted away. Blocking (a runtime
//! of its own for the scratch member).
//!
//! Invariants: only links verified up to the zone CA and checked whole are read; a time
//! maps to the last revision received at or before it (the revisions before the first
//! one received after it), never to a revision inside a gap; the history after the point
//! stops at the first gap (`through`), so a caller never takes a hole for "unchanged".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use zone_io::Error;

use super::point::{format_time, OldKey, Point, PrefixHistory};
use super::reach::{reach, stretches};
use super::rebuild::{rebuild, Tools};
use super::source::{open_target, Origin, Source};
use crate::chain::{Kind, Verified};
use crate::local::LocalChain;
use zone_etcd_kit::cluster_api::{self, range::read_prefix};

/// The node whose own chain is read, as the functions below need it (the app makes it
/// from its loaded node): the node.toml it was loaded from, its names, its state
/// directory (where the chain is), the zone CA its manifests verify up to, and where its
/// etcd tools are.
pub struct ChainNode<'a> {
    /// The node.toml the node was loaded from: what errors of its own chain name.
    pub path: &'a Path,
    pub name: &'a str,
    pub zone: &'a str,
    pub state_dir: &'a Path,
    /// The zone's root CA certificates (PEM) the node trusts.
    pub zone_ca_pem: &'a str,
    /// node.toml's `etcd_bin`: where etcdutl is looked for first.
    pub etcd_bin: Option<&'a Path>,
    /// The etcd binary a scratch member runs (the one the node's launch would choose),
    /// asked only once a chain needs replaying.
    pub etcd: &'a (dyn Fn() -> Result<PathBuf, Error> + Sync),
}

/// The node's chain, opened and checked.
struct Opened {
    source: Source,
    links: Vec<Verified>,
}

fn open(node: &ChainNode<'_>, origin: &Origin<'_>) -> Result<Opened, Error> {
    let config = node.path;
    if let Origin::Target(access) = origin {
        let (source, roots) = open_target(access)?;
        let links = source
            .links(&roots)
            .map_err(|p| target_error(access.url, p))?;
        if let Some(other) = links.iter().find(|v| v.link.zone != node.zone) {
            return Err(target_error(
                access.url,
                format!(
                    "holds the chain of zone {}, not of this node's zone {}",
                    other.link.zone, node.zone
                ),
            ));
        }
        return Ok(Opened { source, links });
    }
    if !node.state_dir.join("backup/chain/chain").is_dir() {
        return Err(chain_error(
            config,
            format!(
                "{} keeps none (only a node whose backup run wrote the chain keeps one)",
                node.name
            ),
        ));
    }
    let chain = LocalChain::open(node.state_dir)?;
    let roots = zone_model::config::trusted_roots(node.zone_ca_pem).map_err(|e| e.file(config))?;
    let source = Source::Local {
        chain,
        zone: node.zone.to_string(),
    };
    let links = source.links(&roots).map_err(|p| chain_error(config, p))?;
    Ok(Opened { source, links })
}

fn target_error(url: &str, problem: String) -> Error {
    Error::new(format!("the backup target {url}: {problem}"))
        .fix("check the target with `zone-etcd backup drill --from` it, with the same --ca and --identity")
}

/// What every problem of the node's own chain starts with.
const LOCAL_CHAIN: &str = "the local backup chain: ";

/// The problem of the node's own chain `error` is, if it is one.
pub fn local_chain_problem(error: &Error) -> Option<&str> {
    error.problem().strip_prefix(LOCAL_CHAIN)
}

fn chain_error(config: &Path, problem: String) -> Error {
    Error::new(format!("{LOCAL_CHAIN}{problem}"))
        .file(config)
        .fix(
        "see `zone-etcd backup status`; a broken chain is whole again after the next full snapshot",
    )
}

/// A private scratch directory for downloads and the scratch member, removed when
/// dropped: under the node's `backup/` when it has one (a writer's), else its state.
fn scratch_dir(node: &ChainNode<'_>) -> Result<tempfile::TempDir, Error> {
    let backup = node.state_dir.join("backup");
    let under = if backup.is_dir() {
        backup
    } else {
        node.state_dir.to_path_buf()
    };
    tempfile::Builder::new()
        .prefix(".undo-")
        .tempdir_in(&under)
        .map_err(|e| Error::io("make a scratch directory in", &under, &e))
}

/// A problem of the chain `origin` names.
fn origin_error(origin: &Origin<'_>, config: &Path, problem: String) -> Error {
    match origin {
        Origin::Local => chain_error(config, problem),
        Origin::Target(access) => target_error(access.url, problem),
    }
}

/// The last revision received at or before `time_ms`, from the chain's deltas.
pub fn revision_at(node: &ChainNode<'_>, origin: &Origin<'_>, time_ms: i64) -> Result<i64, Error> {
    let config = node.path;
    let opened = open(node, origin)?;
    let chain_error = |config: &Path, p: String| origin_error(origin, config, p);
    let deltas: Vec<&Verified> = opened
        .links
        .iter()
        .filter(|v| v.link.kind != Kind::Full)
        .collect();
    let Some(first) = deltas
        .iter()
        .find(|v| v.link.kind == Kind::Delta && v.link.first_revision <= v.link.last_revision)
    else {
        return Err(chain_error(config, "holds no changes yet".into()));
    };
    if first.link.first_time_ms > time_ms {
        return Err(chain_error(
            config,
            format!(
                "{} is before its oldest change ({}, revision {})",
                format_time(time_ms),
                format_time(first.link.first_time_ms),
                first.link.first_revision
            ),
        ));
    }
    let newest = deltas
        .iter()
        .map(|v| v.link.last_time_ms)
        .max()
        .unwrap_or(0);
    if time_ms > newest {
        return Err(chain_error(
            config,
            format!(
                "{} is after the newest point it holds ({}): backup run ships the newest changes every delta_every",
                format_time(time_ms),
                format_time(newest)
            ),
        ));
    }
    let scratch = scratch_dir(node)?;
    let work = scratch.path();
    let mut answer = None;
    for v in &deltas {
        let l = &v.link;
        if l.first_revision > l.last_revision || l.last_time_ms <= time_ms {
            answer = Some((l.last_revision, v));
            continue;
        }
        if l.first_time_ms > time_ms {
            answer = Some((l.first_revision - 1, v));
            break;
        }
        let revisions = opened
            .source
            .segment(v, node.zone, work)
            .map_err(|p| chain_error(config, p))?;
        let received = revisions.iter().take_while(|r| r.time_ms <= time_ms).last();
        answer = Some((received.map_or(l.first_revision - 1, |r| r.revision), v));
        break;
    }
    let Some((revision, _)) = answer else {
        return Err(chain_error(config, "holds no changes yet".into()));
    };
    if let Some(gap) = opened.links.iter().find(|v| {
        v.link.kind == Kind::Gap
            && (v.link.first_revision..=v.link.last_revision).contains(&revision)
    }) {
        return Err(chain_error(
            config,
            format!(
                "{} falls in a gap: revisions {}..{} were compacted before the backup saw them ({})",
                format_time(time_ms),
                gap.link.first_revision,
                gap.link.last_revision,
                gap.name
            ),
        ));
    }
    Ok(revision)
}

/// The keys under `prefix` at `revision`, rebuilt in a scratch etcd from the chain, and
/// their changes after it through the chain's newest revision (or the first gap).
pub fn prefix_history(
    node: &ChainNode<'_>,
    origin: &Origin<'_>,
    prefix: &[u8],
    revision: i64,
) -> Result<PrefixHistory, Error> {
    let config = node.path;
    let opened = open(node, origin)?;
    let chain_error = |config: &Path, p: String| origin_error(origin, config, p);
    let all = stretches(&opened.links);
    let stretch = reach(&all, &opened.links, Point::Revision(revision))
        .map_err(|p| chain_error(config, p))?;
    let etcd = (node.etcd)()?;
    let etcdutl = zone_etcd_kit::etcd::etcdutl::etcdutl(node.etcd_bin, config)?;
    let work = scratch_dir(node)?;
    let tools = Tools {
        etcd: &etcd,
        etcdutl: &etcdutl,
    };
    let keys = cluster_api::runtime()?
        .block_on(async {
            let rebuilt = rebuild(
                &opened.source,
                node.zone,
                stretch,
                Point::Revision(revision),
                &tools,
                work.path(),
            )
            .await?;
            let (_, keys) = read_prefix(&rebuilt.client, prefix, revision)
                .await
                .map_err(|f| f.to_string())?;
            Ok::<_, String>(
                keys.into_iter()
                    .map(|(key, (value, mod_revision))| {
                        (
                            key,
                            OldKey {
                                value,
                                mod_revision,
                            },
                        )
                    })
                    .collect::<BTreeMap<_, _>>(),
            )
        })
        .map_err(|p| chain_error(config, p))?;
    let mut history = PrefixHistory {
        revision,
        keys,
        changes: BTreeMap::new(),
        through: revision,
    };
    // The changes after the point, in chain order, through the first gap.
    for v in opened
        .links
        .iter()
        .filter(|v| v.link.kind != Kind::Full && v.link.last_revision > revision)
    {
        if v.link.kind == Kind::Gap || v.link.first_revision > history.through + 1 {
            break;
        }
        if v.link.first_revision > v.link.last_revision {
            continue;
        }
        let revisions = opened
            .source
            .segment(v, node.zone, work.path())
            .map_err(|p| chain_error(config, p))?;
        for r in revisions.iter().filter(|r| r.revision > revision) {
            for e in r.events.iter().filter(|e| e.key.starts_with(prefix)) {
                let seen = history.changes.entry(e.key.clone()).or_default();
                if seen.last() != Some(&r.revision) {
                    seen.push(r.revision);
                }
            }
        }
        history.through = history.through.max(v.link.last_revision);
    }
    Ok(history)
}
