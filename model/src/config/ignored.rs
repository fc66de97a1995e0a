//! Keys a file holds that this release does not know (issue 50, item 4): node.toml, the
//! zone file and the member list of the signed zone document are read for the keys this
//! release knows, and every other key is ignored and handed to the caller, who logs one
//! warning line per key. A newer `activate` or owner's tool may write a key an older
//! member does not know; refusing the whole file would stop that member for a key it has
//! no use for (Kubernetes' field validation "Warn" does the same for its objects).
//!
//! What is still refused: a known key's bad value, a missing required key, and every
//! unknown key of `[settings]`, `[backup]` and `[access]`, whose own parsers refuse them
//! on purpose (a security-sensitive key must never be silently dropped): those tables
//! are read whole as values here, so no key of theirs is ever ignored by this module.
//!
//! Invariants: a file read with [`read`] gives the value it gave when unknown keys were
//! refused, for every file that was accepted then; every key left unread is in the list,
//! named by its path in the file (`external.cert_file`, `etcd #2 peer_prot`); an
//! [`Ignored`] never takes part in a value's equality (two reads of one zone are the same
//! zone whatever a newer release added beside it).

use std::fmt;

/// A key this release does not know, ignored where it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    /// Where it is: a file's path, or the document and where it came from.
    pub file: String,
    /// Its path in the file: `cert_file`, `external.cert_file`, `etcd #2 peer_prot`.
    pub key: String,
    /// How the owner makes it go away: "remove it from node.toml".
    pub remove: String,
}

impl UnknownKey {
    /// The warning line: the file, the key, what it may be and both fixes. `release` is
    /// the release reading it.
    pub fn line(&self, release: &str) -> String {
        format!(
            "{}: {}: unknown key, ignored: either a key of a newer zone-etcd release than this one ({release}; which release introduced it, this one cannot tell) or a typo (fix: {}, or upgrade this node's zone-etcd to the release that wrote it)",
            self.file, self.key, self.remove
        )
    }
}

impl fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: unknown key, ignored", self.file, self.key)
    }
}

/// The keys one read ignored, in the order met. Never compared: see the module's
/// invariants.
#[derive(Debug, Clone, Default)]
pub struct Ignored(Vec<UnknownKey>);

impl PartialEq for Ignored {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Ignored {}

impl Ignored {
    /// The keys at `paths` (as [`read`] gives them) of `file`, removed as `remove` says.
    pub fn of(file: &str, remove: &str, paths: Vec<String>) -> Ignored {
        Ignored(
            paths
                .into_iter()
                .map(|key| UnknownKey {
                    file: file.to_string(),
                    key,
                    remove: remove.to_string(),
                })
                .collect(),
        )
    }

    pub fn keys(&self) -> &[UnknownKey] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The same keys, said to be in `file` (a document's reader knows where it came from).
    pub fn in_file(mut self, file: &str) -> Ignored {
        for key in &mut self.0 {
            key.file = file.to_string();
        }
        self
    }

    pub fn extend(&mut self, other: Ignored) {
        self.0.extend(other.0);
    }
}

/// Deserialises a `T` from `deserializer`, returning it and the path of every key it
/// left unread but those in `accepted` (top-level keys a format carries for others, read
/// by no one here, never worth a warning).
pub fn read<'de, T, D>(deserializer: D, accepted: &[&str]) -> Result<(T, Vec<String>), D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    let mut paths = Vec::new();
    let value = serde_ignored::deserialize(deserializer, |path| {
        let key = render(&path);
        if !accepted.contains(&key.as_str()) {
            paths.push(key);
        }
    })?;
    Ok((value, paths))
}

/// A path as the error lines name keys: tables joined by `.`, list entries counted from
/// 1 (`etcd #2`), an entry's key after a space (`etcd #2 peer_port`, as member
/// validation names it).
fn render(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{} #{}", render(parent), index + 1),
        Path::Map { parent, key } => {
            let parent_text = render(parent);
            if parent_text.is_empty() {
                key.clone()
            } else if in_list(parent) {
                format!("{parent_text} {key}")
            } else {
                format!("{parent_text}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => render(parent),
    }
}

/// Whether `path` is a list's entry (through options and newtypes).
fn in_list(path: &serde_ignored::Path) -> bool {
    use serde_ignored::Path;
    match path {
        Path::Seq { .. } => true,
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => in_list(parent),
        Path::Root | Path::Map { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Outer {
        name: Option<String>,
        list: Option<Vec<Inner>>,
        table: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Inner {
        port: Option<u16>,
    }

    #[test]
    fn every_unread_key_is_named_by_its_path_and_the_rest_reads_as_before() {
        let text = "name = \"a\"\nextra = 1\ntype = \"zone\"\n[[list]]\nport = 1\n[[list]]\nprot = 2\n[table]\nport = 3\nnew = { a = 1 }\n";
        let (value, paths): (Outer, _) =
            read(toml::Deserializer::parse(text).unwrap(), &["type"]).unwrap();
        assert_eq!(paths, ["extra", "list #2 prot", "table.new"]);
        assert_eq!(value.name.as_deref(), Some("a"));
        assert_eq!(value.list.unwrap()[0].port, Some(1));
        assert_eq!(value.table.unwrap().port, Some(3));
        // A bad value of a known key is still refused.
        let bad = read::<Outer, _>(
            toml::Deserializer::parse("[table]\nport = -1\n").unwrap(),
            &[],
        );
        assert!(bad.is_err());
    }

    #[test]
    fn the_line_names_the_file_the_key_both_causes_and_both_fixes() {
        let ignored = Ignored::of(
            "/etc/zone-etcd/node.toml",
            "remove it from /etc/zone-etcd/node.toml",
            vec!["cert_file".into()],
        );
        let line = ignored.keys()[0].line("0.1.0");
        assert!(
            line.starts_with("/etc/zone-etcd/node.toml: cert_file: unknown key, ignored: "),
            "{line}"
        );
        for part in [
            "newer zone-etcd release",
            "(0.1.0;",
            "or a typo",
            "fix: remove it from /etc/zone-etcd/node.toml",
            "upgrade this node's zone-etcd",
        ] {
            assert!(line.contains(part), "{part}: {line}");
        }
        assert!(!line.contains('\n'));
        // Never part of equality.
        assert_eq!(ignored, Ignored::default());
    }
}
