//! The module tree of one crate read from its sources, each module's items, imports and
//! globs, and the paths written in it; and what a path names: the file that defines the
//! item, re-exports followed.
//!
//! Invariant: naming a module is no use of its file (only its items are); `mod x;` is no
//! use of `x`; a path that leaves the crate (std, another crate) names no file.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::tokens::{tokenize, Tok};

#[derive(Default)]
pub struct Module {
    file: PathBuf,
    parent: Option<usize>,
    children: HashMap<String, usize>,
    items: BTreeSet<String>,
    aliases: HashMap<String, Vec<String>>,
    globs: Vec<Vec<String>>,
}

pub struct Tree {
    pub root: PathBuf,
    pub modules: Vec<Module>,
    /// (module, path, file the path is written in)
    pub refs: Vec<(usize, Vec<String>, PathBuf)>,
}

fn id(t: Option<&Tok>) -> Option<&str> {
    match t {
        Some(Tok::Id(s)) => Some(s),
        _ => None,
    }
}

fn is(t: Option<&Tok>, p: &str) -> bool {
    matches!(t, Some(Tok::Punct(q)) if *q == p)
}

/// One use tree: every (path, alias) it imports; alias `*` for a glob.
pub fn use_tree(
    toks: &[Tok],
    mut i: usize,
    prefix: Vec<String>,
) -> (Vec<(Vec<String>, String)>, usize) {
    let mut path = prefix;
    let mut out = Vec::new();
    loop {
        match toks.get(i) {
            Some(Tok::Punct("{")) => {
                i += 1;
                while !is(toks.get(i), "}") && i < toks.len() {
                    let (sub, next) = use_tree(toks, i, path.clone());
                    out.extend(sub);
                    i = next;
                    if is(toks.get(i), ",") {
                        i += 1;
                    }
                }
                return (out, i + 1);
            }
            Some(Tok::Punct("*")) => {
                out.push((path, "*".into()));
                return (out, i + 1);
            }
            Some(Tok::Punct("::")) => i += 1,
            Some(Tok::Id(name)) => {
                path.push(name.clone());
                i += 1;
                if is(toks.get(i), "::") {
                    continue;
                }
                let mut alias = name.clone();
                if id(toks.get(i)) == Some("as") {
                    alias = id(toks.get(i + 1)).unwrap_or("_").to_string();
                    i += 2;
                }
                if path.last().map(String::as_str) == Some("self") && path.len() > 1 {
                    path.pop();
                    if alias == "self" {
                        alias = path.last().cloned().unwrap_or_default();
                    }
                }
                out.push((path, alias));
                return (out, i);
            }
            _ => return (out, i + 1),
        }
    }
}

impl Tree {
    pub fn load(&mut self, file: &Path, parent: Option<usize>, name: Option<&str>) -> usize {
        let text = std::fs::read_to_string(self.root.join(file))
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let index = self.modules.len();
        self.modules.push(Module {
            file: file.to_path_buf(),
            parent,
            ..Module::default()
        });
        if let (Some(parent), Some(name)) = (parent, name) {
            self.modules[parent]
                .children
                .insert(name.to_string(), index);
        }
        let toks = tokenize(&text);
        self.walk(index, file, &toks, 0);
        index
    }

    /// The file of `mod name;` declared in `file` (`#[path]` when given).
    fn child_file(&self, file: &Path, name: &str, attr_path: Option<&str>) -> PathBuf {
        let dir = file.parent().unwrap_or(Path::new(""));
        if let Some(p) = attr_path {
            return dir.join(p);
        }
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let dir = if ["mod", "lib", "main"].contains(&stem) {
            dir.to_path_buf()
        } else {
            dir.join(stem)
        };
        let flat = dir.join(format!("{name}.rs"));
        if self.root.join(&flat).exists() {
            flat
        } else {
            dir.join(name).join("mod.rs")
        }
    }

    /// Reads one module scope (a file, or an inline `mod x { … }`) up to its closing brace.
    fn walk(&mut self, module: usize, file: &Path, toks: &[Tok], mut i: usize) -> usize {
        let mut depth = 0usize;
        let mut attr_path: Option<String> = None;
        while i < toks.len() {
            let t = &toks[i];
            match t {
                Tok::Punct("{") => depth += 1,
                Tok::Punct("}") => {
                    if depth == 0 {
                        return i + 1;
                    }
                    depth -= 1;
                }
                Tok::Punct("#")
                    if is(toks.get(i + 1), "[")
                        && id(toks.get(i + 2)) == Some("path")
                        && is(toks.get(i + 3), "=") =>
                {
                    if let Some(Tok::Str(p)) = toks.get(i + 4) {
                        attr_path = Some(p.clone());
                    }
                }
                Tok::Id(kw) if kw == "mod" && depth == 0 => {
                    if let Some(name) = id(toks.get(i + 1)).map(str::to_string) {
                        self.modules[module].items.insert(name.clone());
                        if is(toks.get(i + 2), ";") {
                            let child = self.child_file(file, &name, attr_path.take().as_deref());
                            self.load(&child, Some(module), Some(&name));
                            i += 3;
                            continue;
                        }
                        if is(toks.get(i + 2), "{") {
                            let index = self.modules.len();
                            self.modules.push(Module {
                                file: file.to_path_buf(),
                                parent: Some(module),
                                ..Module::default()
                            });
                            self.modules[module].children.insert(name, index);
                            attr_path = None;
                            i = self.walk(index, file, toks, i + 3);
                            continue;
                        }
                    }
                }
                Tok::Id(kw) if kw == "use" => {
                    let (tree, next) = use_tree(toks, i + 1, Vec::new());
                    for (path, alias) in tree {
                        if alias == "*" {
                            self.modules[module].globs.push(path.clone());
                        } else {
                            self.modules[module].aliases.insert(alias, path.clone());
                        }
                        self.refs.push((module, path, file.to_path_buf()));
                    }
                    i = next;
                    continue;
                }
                Tok::Id(kw)
                    if depth == 0
                        && [
                            "fn", "struct", "enum", "trait", "type", "const", "static", "union",
                        ]
                        .contains(&kw.as_str()) =>
                {
                    let mut k = i + 1;
                    while matches!(
                        id(toks.get(k)),
                        Some("fn" | "unsafe" | "async" | "extern" | "mut")
                    ) || matches!(toks.get(k), Some(Tok::Str(_)))
                    {
                        k += 1;
                    }
                    if let Some(name) = id(toks.get(k)) {
                        self.modules[module].items.insert(name.to_string());
                    }
                }
                Tok::Id(kw) if kw == "macro_rules" && depth == 0 => {
                    if let Some(name) = id(toks.get(i + 2)) {
                        self.modules[module].items.insert(name.to_string());
                    }
                }
                Tok::Id(first)
                    if is(toks.get(i + 1), "::") && !(i > 0 && is(toks.get(i - 1), "::")) =>
                {
                    let mut path = vec![first.clone()];
                    let mut k = i + 1;
                    while is(toks.get(k), "::") {
                        match id(toks.get(k + 1)) {
                            Some(next) => path.push(next.to_string()),
                            None => break,
                        }
                        k += 2;
                    }
                    self.refs.push((module, path, file.to_path_buf()));
                    i = k;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        i
    }

    fn crate_root(&self, mut m: usize) -> usize {
        while let Some(p) = self.modules[m].parent {
            m = p;
        }
        m
    }

    fn parent(&self, m: usize) -> usize {
        self.modules[m].parent.unwrap_or(m)
    }

    /// The files defining what `path`, written in module `m`, names.
    pub fn resolve(
        &self,
        m: usize,
        path: &[String],
        seen: &mut BTreeSet<(usize, Vec<String>)>,
    ) -> BTreeSet<PathBuf> {
        if !seen.insert((m, path.to_vec())) {
            return BTreeSet::new();
        }
        let mut cur = m;
        let mut i = 0;
        match path.first().map(String::as_str) {
            Some("crate") => {
                cur = self.crate_root(m);
                i = 1;
            }
            Some("self") => i = 1,
            Some("super") => {
                cur = self.parent(m);
                i = 1;
            }
            _ => {}
        }
        while path.get(i).map(String::as_str) == Some("super") {
            cur = self.parent(cur);
            i += 1;
        }
        if i >= path.len() {
            return BTreeSet::new();
        }
        self.lookup(cur, &path[i..], seen)
    }

    fn lookup(
        &self,
        cur: usize,
        path: &[String],
        seen: &mut BTreeSet<(usize, Vec<String>)>,
    ) -> BTreeSet<PathBuf> {
        let module = &self.modules[cur];
        let (name, rest) = (&path[0], &path[1..]);
        if let Some(&child) = module.children.get(name) {
            if rest.is_empty() {
                return BTreeSet::new();
            }
            return self.lookup(child, rest, seen);
        }
        if let Some(target) = module.aliases.get(name) {
            let mut full = target.clone();
            full.extend(rest.iter().cloned());
            return self.resolve(cur, &full, seen);
        }
        if module.items.contains(name) {
            return BTreeSet::from([module.file.clone()]);
        }
        for glob in &module.globs {
            if let Some(g) = self.module_of(cur, glob) {
                let gm = &self.modules[g];
                if gm.items.contains(name)
                    || gm.aliases.contains_key(name)
                    || gm.children.contains_key(name)
                {
                    return self.lookup(g, path, seen);
                }
            }
        }
        BTreeSet::new()
    }

    fn module_of(&self, cur: usize, path: &[String]) -> Option<usize> {
        let mut m = cur;
        let mut rest = path;
        match path.first().map(String::as_str) {
            Some("crate") => {
                m = self.crate_root(cur);
                rest = &path[1..];
            }
            Some("self") => rest = &path[1..],
            _ => {}
        }
        for s in rest {
            m = if s == "super" {
                self.parent(m)
            } else if let Some(&c) = self.modules[m].children.get(s) {
                c
            } else if let Some(target) = self.modules[m].aliases.get(s) {
                self.module_of(m, target)?
            } else {
                return None;
            };
        }
        Some(m)
    }
}
