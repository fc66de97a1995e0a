//! A package as a user's dpkg sees it: its Architecture field, the ELF class and machine
//! of every binary in it (`readelf -h`), and its Depends against what the binaries need
//! (`readelf -d`'s NEEDED libraries, `objdump -T`'s GLIBC_ and GCC_ symbol versions).
//! [`problems`] lists every fault, each naming the file or field at fault; none means the
//! package is right for `arch`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The ELF class and machine `readelf -h` names for a Debian architecture.
pub fn elf_of(arch: &str) -> (&'static str, &'static str) {
    match arch {
        "amd64" => ("ELF64", "Advanced Micro Devices X86-64"),
        "arm64" => ("ELF64", "AArch64"),
        _ => panic!("no ELF machine known for architecture {arch}"),
    }
}

/// The binaries every package carries (paths inside it).
pub const BINARIES: [&str; 5] = [
    "usr/bin/zone-etcd",
    "usr/lib/zone-etcd/etcd",
    "usr/lib/zone-etcd/etcdctl",
    "usr/lib/zone-etcd/etcdutl",
    "usr/lib/zone-etcd/etcd-3.5.34/etcd",
];

/// A package unpacked (`dpkg-deb -x`) with its control fields (`dpkg-deb -f`).
pub struct Unpacked {
    pub root: tempfile::TempDir,
    pub fields: String,
}

pub fn unpack(deb: &Path) -> Unpacked {
    let root = tempfile::tempdir().expect("temp dir");
    super::common::netns::must(
        "dpkg-deb",
        &["-x", deb.to_str().unwrap(), root.path().to_str().unwrap()],
    );
    let out = Command::new("dpkg-deb")
        .arg("-f")
        .arg(deb)
        .output()
        .expect("dpkg-deb runs");
    assert!(out.status.success(), "dpkg-deb -f {}", deb.display());
    Unpacked {
        root,
        fields: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

impl Unpacked {
    pub fn field(&self, name: &str) -> Option<String> {
        self.fields
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::to_string)
    }

    /// Every file and directory: path inside the package -> (mode, is an ELF file).
    pub fn files(&self) -> BTreeMap<PathBuf, (u32, bool)> {
        use std::os::unix::fs::PermissionsExt;
        let mut out = BTreeMap::new();
        let mut stack = vec![self.root.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                let meta = fs::symlink_metadata(&path).unwrap();
                let rel = path.strip_prefix(self.root.path()).unwrap().to_path_buf();
                if meta.is_dir() {
                    stack.push(path.clone());
                }
                let elf = meta.is_file() && is_elf(&path);
                out.insert(rel, (meta.permissions().mode() & 0o7777, elf));
            }
        }
        out
    }
}

fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

fn tool(program: &str, args: &[&str], file: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .arg(file)
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (Debian's binutils): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `readelf -h`'s Class and Machine of an ELF file.
pub fn class_and_machine(file: &Path) -> (String, String) {
    let header = tool("readelf", &["-h"], file);
    let field = |name: &str| {
        header
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    (field("Class:"), field("Machine:"))
}

/// A version as numbers (2.34, 4.2.0), compared with missing parts as 0.
fn version(text: &str) -> Vec<u64> {
    let mut parts: Vec<u64> = text.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    while parts.last() == Some(&0) {
        parts.pop();
    }
    parts
}

/// The Debian package that ships a NEEDED library.
fn package_of(library: &str) -> Option<&'static str> {
    match library {
        "libc.so.6" | "libm.so.6" | "libpthread.so.0" | "libdl.so.2" | "librt.so.1" => {
            Some("libc6")
        }
        l if l.starts_with("ld-linux") => Some("libc6"),
        "libgcc_s.so.1" => Some("libgcc-s1"),
        _ => None,
    }
}

/// The highest version of the symbol versions `prefix` (GLIBC_, GCC_) a file needs.
fn highest_symbol_version(symbols: &str, prefix: &str) -> Option<Vec<u64>> {
    symbols
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|word| word.strip_prefix(prefix))
        .filter(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .map(version)
        .max()
}

/// Depends' `package (>= version)` entries: package -> its minimum (empty: any version).
fn depends(field: &str) -> BTreeMap<String, Vec<u64>> {
    field
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| match d.split_once(" (>= ") {
            Some((name, rest)) => (name.to_string(), version(rest.trim_end_matches(')'))),
            None => (d.to_string(), Vec::new()),
        })
        .collect()
}

fn shown(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

/// Every fault of the package at `root` (unpacked) for Debian architecture `arch`.
pub fn problems(package: &Unpacked, arch: &str) -> Vec<String> {
    let mut problems = Vec::new();
    match package.field("Architecture") {
        Some(a) if a == arch => {}
        other => problems.push(format!(
            "control field Architecture is {other:?}, not {arch}"
        )),
    }
    let depends = depends(&package.field("Depends").unwrap_or_default());
    let (class, machine) = elf_of(arch);
    let files = package.files();
    for binary in BINARIES {
        if !files.get(Path::new(binary)).is_some_and(|(_, elf)| *elf) {
            problems.push(format!("{binary}: missing, or not an ELF file"));
        }
    }
    for (rel, _) in files.iter().filter(|(_, (_, elf))| *elf) {
        let file = package.root.path().join(rel);
        let (got_class, got_machine) = class_and_machine(&file);
        if (got_class.as_str(), got_machine.as_str()) != (class, machine) {
            problems.push(format!(
                "{}: {got_class} {got_machine}, not {class} {machine} (an {arch} package)",
                rel.display()
            ));
            continue;
        }
        let dynamic = tool("readelf", &["-d", "-W"], &file);
        let needed: Vec<&str> = dynamic.lines().filter(|l| l.contains("(NEEDED)")).collect();
        if needed.is_empty() {
            continue; // statically linked (etcd's official builds): needs no library
        }
        let symbols = tool("objdump", &["-T"], &file);
        for line in needed {
            let library = line.rsplit('[').next().unwrap_or("").trim_end_matches(']');
            let Some(needed) = package_of(library) else {
                problems.push(format!(
                    "{}: needs {library}, which no package in Depends is known to ship",
                    rel.display()
                ));
                continue;
            };
            let wanted = match needed {
                "libc6" => highest_symbol_version(&symbols, "GLIBC_"),
                _ => highest_symbol_version(&symbols, "GCC_"),
            }
            .unwrap_or_default();
            match depends.get(needed) {
                None => problems.push(format!(
                    "{}: needs {library} of {needed}, which Depends does not name",
                    rel.display()
                )),
                Some(min) if *min < wanted => problems.push(format!(
                    "{}: needs {needed} >= {} (its symbol versions), Depends says >= {}",
                    rel.display(),
                    shown(&wanted),
                    shown(min)
                )),
                Some(_) => {}
            }
        }
    }
    problems
}
