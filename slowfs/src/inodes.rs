//! The inode table: which path in the backing directory each FUSE node id stands for.
//!
//! Invariants:
//! - Node id 1 (FUSE's root) is the backing directory itself: always known, never
//!   forgotten, never renamed.
//! - Every other node id names one backing inode, keyed by its `(st_dev, st_ino)`, while
//!   the kernel holds lookups on it: each reply that hands the kernel an entry (lookup,
//!   create, mkdir, symlink, link) counts one, `forget` takes them back, and at zero the
//!   node is dropped. Hard links of one file are one node, as they are one inode.
//! - A node id is the backing `st_ino` when that is free (so `stat` and `readdir` agree on
//!   inode numbers), else one from a spare range above [`SPARE_BASE`].
//! - A node's paths are the names the kernel looked it up by (a file's hard links are
//!   several), the first the one operations use: rename moves them (and, for a directory,
//!   every path below it), removing a name (unlink, rmdir, rename over it) drops it. A
//!   node without names answers ENOENT to operations by path (never reaching a new file of
//!   the same name); operations on a handle it has open still work. When the backing inode
//!   lost its last link its key is freed too, so a new file that reuses the backing
//!   `st_ino` gets a new node, never the old one's cached attributes.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use fuser::{Errno, INodeNo};

/// A backing inode: `(st_dev, st_ino)`.
pub type Key = (u64, u64);

/// Node ids at and above this are handed out when the backing `st_ino` is taken.
pub const SPARE_BASE: u64 = 1 << 62;

#[derive(Debug)]
struct Node {
    paths: Vec<PathBuf>,
    key: Key,
    lookups: u64,
}

#[derive(Debug)]
struct Table {
    nodes: HashMap<u64, Node>,
    by_key: HashMap<Key, u64>,
    next_spare: u64,
}

/// The table, shared by the session's threads.
#[derive(Debug)]
pub struct Inodes {
    table: Mutex<Table>,
}

impl Inodes {
    /// A table that knows the root: `root` (the backing directory) with its key.
    pub fn new(root: PathBuf, root_key: Key) -> Inodes {
        let mut nodes = HashMap::new();
        nodes.insert(
            INodeNo::ROOT.0,
            Node {
                paths: vec![root],
                key: root_key,
                lookups: 1,
            },
        );
        let mut by_key = HashMap::new();
        by_key.insert(root_key, INodeNo::ROOT.0);
        Inodes {
            table: Mutex::new(Table {
                nodes,
                by_key,
                next_spare: SPARE_BASE,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic elsewhere never leaves the table half changed (each change is one
        // insert or remove), so a poisoned lock's table is still whole.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The backing path of `ino`; ENOENT when it is unknown or has no name left.
    pub fn path(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        self.lock()
            .nodes
            .get(&ino.0)
            .and_then(|n| n.paths.first().cloned())
            .ok_or(Errno::ENOENT)
    }

    /// The backing path of `name` in directory `parent`. A name the kernel never sends
    /// (empty, `.`, `..`, with a slash or a NUL) is EINVAL, never a path outside.
    pub fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
            return Err(Errno::EINVAL);
        }
        if bytes.contains(&0) {
            return Err(Errno::EINVAL);
        }
        Ok(self.path(parent)?.join(name))
    }

    /// Counts one lookup of the inode `key` found at `path`; its node id.
    pub fn remember(&self, path: &Path, key: Key) -> u64 {
        let mut t = self.lock();
        if let Some(&id) = t.by_key.get(&key) {
            if let Some(node) = t.nodes.get_mut(&id) {
                node.lookups = node.lookups.saturating_add(1);
                if id != INodeNo::ROOT.0 && !node.paths.iter().any(|p| p == path) {
                    node.paths.push(path.to_path_buf());
                }
                return id;
            }
        }
        let st_ino = key.1;
        let id =
            if st_ino > INodeNo::ROOT.0 && st_ino < SPARE_BASE && !t.nodes.contains_key(&st_ino) {
                st_ino
            } else {
                loop {
                    let candidate = t.next_spare;
                    t.next_spare = t.next_spare.checked_add(1).unwrap_or(SPARE_BASE);
                    if !t.nodes.contains_key(&candidate) {
                        break candidate;
                    }
                }
            };
        t.nodes.insert(
            id,
            Node {
                paths: vec![path.to_path_buf()],
                key,
                lookups: 1,
            },
        );
        t.by_key.insert(key, id);
        id
    }

    /// The kernel forgets `n` lookups of `ino`; at none left the node is dropped.
    pub fn forget(&self, ino: INodeNo, n: u64) {
        if ino == INodeNo::ROOT {
            return;
        }
        let mut t = self.lock();
        let Some(node) = t.nodes.get_mut(&ino.0) else {
            return;
        };
        node.lookups = node.lookups.saturating_sub(n);
        if node.lookups > 0 {
            return;
        }
        let key = node.key;
        t.nodes.remove(&ino.0);
        if t.by_key.get(&key) == Some(&ino.0) {
            t.by_key.remove(&key);
        }
    }

    /// Name `path` of inode `key` was removed; `last_name` when it had no other link.
    pub fn removed(&self, path: &Path, key: Key, last_name: bool) {
        let mut t = self.lock();
        let Some(&id) = t.by_key.get(&key) else {
            return;
        };
        if id == INodeNo::ROOT.0 {
            return;
        }
        if let Some(node) = t.nodes.get_mut(&id) {
            node.paths.retain(|p| p != path);
        }
        if last_name {
            t.by_key.remove(&key);
        }
    }

    /// `from` was renamed to `to` (whatever `to` named before was [`Inodes::removed`]
    /// first): the node there and every path below it move.
    pub fn renamed(&self, from: &Path, to: &Path) {
        let mut t = self.lock();
        for (&id, node) in t.nodes.iter_mut() {
            if id == INodeNo::ROOT.0 {
                continue;
            }
            for p in node.paths.iter_mut() {
                if let Some(moved) = moved(p, from, to) {
                    *p = moved;
                }
            }
        }
    }

    /// `a` and `b` were exchanged (RENAME_EXCHANGE): each takes the other's paths.
    pub fn exchanged(&self, a: &Path, b: &Path) {
        let mut t = self.lock();
        for (&id, node) in t.nodes.iter_mut() {
            if id == INodeNo::ROOT.0 {
                continue;
            }
            for p in node.paths.iter_mut() {
                if let Some(moved) = moved(p, a, b).or_else(|| moved(p, b, a)) {
                    *p = moved;
                }
            }
        }
    }
}

/// Where `path` is once `from` is called `to`; `None` when it is not at or below `from`.
fn moved(path: &Path, from: &Path, to: &Path) -> Option<PathBuf> {
    let rest = path.strip_prefix(from).ok()?;
    if rest.as_os_str().is_empty() {
        Some(to.to_path_buf())
    } else {
        Some(to.join(rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_move_subtrees_and_removed_names_free_their_keys() {
        let table = Inodes::new(PathBuf::from("/b"), (1, 2));
        let dir = table.remember(Path::new("/b/d"), (1, 10));
        let file = table.remember(Path::new("/b/d/f"), (1, 11));
        assert_eq!((dir, file), (10, 11));
        table.renamed(Path::new("/b/d"), Path::new("/b/e"));
        assert_eq!(table.path(INodeNo(11)), Ok(PathBuf::from("/b/e/f")));
        assert_eq!(table.path(INodeNo::ROOT), Ok(PathBuf::from("/b")));

        table.removed(Path::new("/b/e/f"), (1, 11), true);
        assert_eq!(table.path(INodeNo(11)), Err(Errno::ENOENT));
        // The backing st_ino reused by a new file: a new node id, not the old one.
        let reused = table.remember(Path::new("/b/e/g"), (1, 11));
        assert!(reused >= SPARE_BASE);
        table.forget(INodeNo(11), 1);
        assert_eq!(table.path(INodeNo(reused)), Ok(PathBuf::from("/b/e/g")));
        assert_eq!(
            table.child(INodeNo(10), OsStr::new("..")),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            table.child(INodeNo(10), OsStr::new("a/b")),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn exchange_swaps_paths_and_root_st_ino_is_never_a_node_id() {
        let table = Inodes::new(PathBuf::from("/b"), (1, 2));
        let a = table.remember(Path::new("/b/a"), (1, 1));
        assert!(a >= SPARE_BASE);
        let b = table.remember(Path::new("/b/b"), (1, 5));
        table.exchanged(Path::new("/b/a"), Path::new("/b/b"));
        assert_eq!(table.path(INodeNo(a)), Ok(PathBuf::from("/b/b")));
        assert_eq!(table.path(INodeNo(b)), Ok(PathBuf::from("/b/a")));
        table.forget(INodeNo(b), 1);
        assert_eq!(table.path(INodeNo(b)), Err(Errno::ENOENT));
    }

    #[test]
    fn a_hard_link_keeps_its_node_reachable_when_the_other_name_goes() {
        let table = Inodes::new(PathBuf::from("/b"), (1, 2));
        let first = table.remember(Path::new("/b/x"), (1, 7));
        let second = table.remember(Path::new("/b/y"), (1, 7));
        assert_eq!(first, second);
        table.removed(Path::new("/b/x"), (1, 7), false);
        assert_eq!(table.path(INodeNo(first)), Ok(PathBuf::from("/b/y")));
        assert_eq!(table.remember(Path::new("/b/y"), (1, 7)), first);
    }
}
