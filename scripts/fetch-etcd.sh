#!/usr/bin/env bash
# Fetch pinned etcd releases into <repo>/bin/: the bundle zone-etcd runs, and the other
# releases the compatibility tests run.
#
# The rows of ETCD_ROWS below (version, source, destination under bin/, tools):
#   3.6.15 official  into bin/              etcd: the bundled server (default)
#   3.5.30 sid       into bin/              etcdctl, etcdutl: the bundle's tools (default)
#   3.5.34 official  into bin/etcd-3.5.34/  the step a zone on 3.5 takes first (default)
#   3.5.30 sid       into bin/etcd-3.5.30/  the bundle before 3.6 (--compat)
#   3.4.45, 3.7.2 official into bin/etcd-<version>/  (--compat)
#   3.4.23 bookworm, 3.5.16 trixie into bin/etcd-<version>/  (--compat)
# Bumping the bundle to a newer patch is the first row's version (and its pin, below).
#
# Sources:
# - "official": etcd's own release binary, from the crate etcd-bin-vendored-linux-<arch>
#   of that version on the crate registry, pinned by the Cargo.lock checksum committed in
#   scripts/etcd-releases/<version>/ (`--pin VERSION` makes one). `cargo fetch --locked`
#   downloads the .crate and checks it against the lock; this script checks the .crate's
#   SHA-256 against the lock once more, takes bin/etcd out of that archive (not out of
#   cargo's unpacked copy), and checks the binary's own `--version` output.
# - a Debian suite: Debian's etcd-server and etcd-client packages of that suite,
#   downloaded with `apt-get download` against a private, throw-away apt configuration
#   (its own sources list, state, lists and cache directories, one set per suite),
#   unpacked with `dpkg -x`. The upstream version is checked against each .deb's Version
#   field and, after installation, against the binaries' own version output.
# Nothing is installed system-wide and the machine's apt state is not touched. Files are
# installed atomically (temporary name in the destination directory, then mv), etcd last.
#
# Idempotent: a row whose destination already holds the wanted version (its tools report
# it) is skipped without any network access; a run with nothing to fetch does not even
# look for a mirror.
#
# The archive mirror is taken from the machine's own apt sources
# (/etc/apt/sources.list, /etc/apt/sources.list.d/*.list and *.sources);
# set ETCD_DEBIAN_MIRROR=<uri> to override it.
#
# Another architecture's bundle (`--arch arm64` on an amd64 machine) goes into bin/<arch>/,
# with the same layout as bin/ (the rows marked default only): the crate
# etcd-bin-vendored-linux-<arch> checked against the same pins, Debian's packages of
# that architecture (the private apt configuration's APT::Architecture), and each
# binary's own version output run under qemu-user (qemu-aarch64-static, with
# QEMU_LD_PREFIX=/usr/aarch64-linux-gnu from libc6-arm64-cross for a dynamically linked
# one); both are installed on first use (scripts/need.sh). scripts/package.sh --arch
# arm64 packages that directory.
#
# Usage: scripts/fetch-etcd.sh [--arch ARCH] [--compat | --print-mirror | --pin VERSION]
#   (no argument)    fetch the bundle (the rows marked default) into bin/.
#   --arch ARCH      amd64 or arm64 (default: this machine's): the bundle of ARCH, into
#                    bin/ for this machine's architecture, else into bin/ARCH/.
#   --compat         also fetch the versions the compatibility tests use.
#   --print-mirror   only print the mirror URI that would be used, then exit.
#   --pin VERSION    write scripts/etcd-releases/VERSION/ (Cargo.toml and the Cargo.lock
#                    that pins the crate's checksum) for an official release; commit it.
#
# Environment (optional):
#   ETCD_DEBIAN_MIRROR  archive URI to use instead of the one from apt sources
#   APT_ETC_DIR         where to read apt sources from (default: /etc/apt)
set -euo pipefail

# version  source    destination ("." = bin/)  tools (etcd last)      which run
ETCD_ROWS=(
    "3.6.15    official  .            etcd                     default"
    "3.5.30    sid       .            etcdctl,etcdutl          default"
    "3.5.30    sid       etcd-3.5.30  etcdctl,etcdutl,etcd     compat"
    "3.4.45    official  etcd-3.4.45  etcd                     compat"
    "3.5.34    official  etcd-3.5.34  etcd                     default"
    "3.7.2     official  etcd-3.7.2   etcd                     compat"
    "3.4.23    bookworm  etcd-3.4.23  etcdctl,etcd             compat"
    "3.5.16    trixie    etcd-3.5.16  etcdctl,etcdutl,etcd     compat"
)
PACKAGES=(etcd-server etcd-client)
COMPONENT="main"
APT_ETC_DIR="${APT_ETC_DIR:-/etc/apt}"
KEYRING="/usr/share/keyrings/debian-archive-keyring.gpg"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/.." && pwd)"
BIN_DIR="${REPO_ROOT}/bin"
PINS_DIR="${SCRIPT_DIR}/etcd-releases"
USAGE="usage: $0 [--arch amd64|arm64] [--compat | --print-mirror | --pin VERSION]"

log() { echo "fetch-etcd: $*" >&2; }
die() { echo "fetch-etcd: error: $*" >&2; exit 1; }

first_line() { local out; out="$("$@" 2>/dev/null)" || true; echo "${out%%$'\n'*}"; }

# An architecture in Debian's and etcd's naming (amd64, arm64): ARCH, and Rust's target.
set_arch() {
    case "$1" in
        amd64 | x86_64) ARCH=amd64 RUST_TARGET=x86_64-unknown-linux-gnu ;;
        arm64 | aarch64) ARCH=arm64 RUST_TARGET=aarch64-unknown-linux-gnu ;;
        *) return 1 ;;
    esac
    CRATE="etcd-bin-vendored-linux-${ARCH}"
}
HOST_ARCH="$(dpkg --print-architecture 2>/dev/null || uname -m)"
set_arch "${HOST_ARCH}" ||
    die "no etcd release is bundled for this machine's architecture ${HOST_ARCH} (amd64 or arm64)"
HOST_ARCH="${ARCH}"
# How a binary of ARCH runs here: directly, or under qemu-user (set by use_arch).
RUN_AS=()

# use_arch ARCH: fetch ARCH's bundle; into bin/ARCH/ when this machine is of another
# architecture, with qemu-user to run its binaries' version checks.
use_arch() {
    set_arch "$1" || die "--arch: '$1' is not an architecture etcd is bundled for: use --arch amd64 or --arch arm64"
    [[ "${ARCH}" != "${HOST_ARCH}" ]] || return 0
    BIN_DIR="${REPO_ROOT}/bin/${ARCH}"
    local qemu=qemu-x86_64-static prefix=/usr/x86_64-linux-gnu lib=libc6-amd64-cross
    if [[ "${ARCH}" == arm64 ]]; then
        qemu=qemu-aarch64-static prefix=/usr/aarch64-linux-gnu lib=libc6-arm64-cross
    fi
    "${SCRIPT_DIR}/need.sh" "${qemu}:qemu-user-static" "${prefix}/lib:${lib}"
    RUN_AS=(env "QEMU_LD_PREFIX=${prefix}" "${qemu}")
}

# The line "<tool> --version" / "<tool> version" prints for a version.
version_line() {
    case "$1" in
        etcd) echo "etcd Version: $2" ;;
        *) echo "$1 version: $2" ;;
    esac
}

# What a tool prints of its version (stdout only: etcd 3.4.45 warns on stderr).
tool_version() {
    if [[ "$1" == */etcd ]]; then
        "${RUN_AS[@]}" "$1" --version 2>/dev/null || true
    else
        "${RUN_AS[@]}" "$1" version 2>/dev/null || true
    fi
}

# --- already there? ----------------------------------------------------------
# have_version VERSION DIR TOOLS: every tool of TOOLS (comma-separated) in DIR reports
# VERSION.
have_version() {
    local version="$1" dir="$2" tool
    for tool in ${3//,/ }; do
        [[ -x "${dir}/${tool}" ]] || return 1
        tool_version "${dir}/${tool}" | grep -qxF "$(version_line "${tool}" "${version}")" || return 1
    done
}

# --- mirror discovery from the machine's apt sources --------------------------
# Prints candidate lines "<uri> <suite> <suite> ..." in source order.
list_apt_sources() {
    local f line
    # One-line format: deb [options] uri suite [components...]
    for f in "${APT_ETC_DIR}/sources.list" "${APT_ETC_DIR}"/sources.list.d/*.list; do
        [[ -f "$f" ]] || continue
        while IFS= read -r line || [[ -n "$line" ]]; do
            line="${line%%#*}"
            # shellcheck disable=SC2206
            local toks=(${line})
            (( ${#toks[@]} >= 3 )) || continue
            [[ "${toks[0]}" == "deb" ]] || continue
            local i=1
            if [[ "${toks[1]}" == \[* ]]; then
                while (( i < ${#toks[@]} )) && [[ "${toks[i]}" != *']' ]]; do i=$((i + 1)); done
                i=$((i + 1))
            fi
            (( i + 1 < ${#toks[@]} )) || continue
            echo "${toks[i]} ${toks[i + 1]}"
        done <"$f"
    done
    # deb822 format: stanzas separated by blank lines.
    for f in "${APT_ETC_DIR}"/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        awk '
            function flush() {
                if (uris != "" && types ~ /(^|[ \t])deb([ \t]|$)/ && tolower(enabled) != "no") {
                    n = split(uris, u, /[ \t]+/)
                    for (k = 1; k <= n; k++) if (u[k] != "") print u[k], suites
                }
                uris = ""; suites = ""; types = ""; enabled = ""; key = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]/ {              # continuation line of a multi-line field
                v = $0; sub(/^[ \t]+/, "", v)
                if (key == "uris") uris = uris " " v
                else if (key == "suites") suites = suites " " v
                next
            }
            {
                k = tolower($0); sub(/:.*/, "", k)
                v = $0; sub(/^[^:]*:[ \t]*/, "", v); sub(/[ \t]+$/, "", v)
                key = k
                if (k == "uris") uris = v
                else if (k == "suites") suites = v
                else if (k == "types") types = v
                else if (k == "enabled") enabled = v
            }
            END { flush() }
        ' "$f"
    done
}

# The first Debian archive (not security) URI from the machine's apt sources.
find_mirror() {
    if [[ -n "${ETCD_DEBIAN_MIRROR:-}" ]]; then
        echo "${ETCD_DEBIAN_MIRROR%/}"
        return 0
    fi
    local codename=""
    if [[ -r /etc/os-release ]]; then
        # shellcheck source=/dev/null
        codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
    fi
    local sources uri suites
    sources="$(list_apt_sources)"
    # Pass 1: a URI whose path is .../debian (the usual archive layout).
    while read -r uri suites; do
        [[ -n "${uri}" ]] || continue
        [[ "${uri}" == *security* || " ${suites} " == *-security\ * ]] && continue
        if [[ "${uri%/}" =~ ^[a-z0-9+]+://[^/]+(/.*)?/debian$ ]]; then
            echo "${uri%/}"
            return 0
        fi
    done <<<"${sources}"
    # Pass 2: any non-security URI that carries this machine's release.
    if [[ -n "${codename}" ]]; then
        while read -r uri suites; do
            [[ -n "${uri}" ]] || continue
            [[ "${uri}" == *security* || " ${suites} " == *-security\ * ]] && continue
            if [[ " ${suites} " == *" ${codename} "* || " ${suites} " == *" ${codename}-updates "* ]]; then
                echo "${uri%/}"
                return 0
            fi
        done <<<"${sources}"
    fi
    return 1
}

# --- private work and apt environment (shared by all rows, set up on first use) ---
WORK=""
MIRROR=""

setup_work() {
    [[ -z "${WORK}" ]] || return 0
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/fetch-etcd.XXXXXX")"
    trap 'rm -rf "${WORK}"' EXIT
}
declare -A UPDATED_SUITES=()
APT_OPTS=()

setup_apt() {
    [[ -z "${MIRROR}" ]] || return 0
    local tool
    for tool in apt-get apt-config dpkg dpkg-deb; do
        command -v "${tool}" >/dev/null 2>&1 || die "'${tool}' not found (a Debian-based machine is required)"
    done
    MIRROR="$(find_mirror)" || die "no Debian archive URI found in ${APT_ETC_DIR}/sources.list{,.d/*.list,.d/*.sources}; set ETCD_DEBIAN_MIRROR=<uri>"
    log "using mirror ${MIRROR}"

    mkdir -p "${WORK}/etc/apt.conf.d" "${WORK}/etc/preferences.d"

    # A private main config, so that the machine's apt.conf.d (hooks such as
    # APT::Update::Post-Invoke, which act on the system cache) is not run. Only its
    # network settings (proxies, date checks, retries) are carried over. The
    # per-suite directories are passed with -o by apt_for_suite.
    {
        apt-config dump 2>/dev/null |
            grep -E '^Acquire::((https?|ftp|socks)::[Pp]roxy|Check-Valid-Until|Check-Date|Retries|ForceIPv4|ForceIPv6)' || true
        cat <<EOF
Dir::Etc::Parts "${WORK}/etc/apt.conf.d";
Dir::Etc::Main "${WORK}/etc/apt.conf";
Dir::Etc::Preferences "${WORK}/etc/preferences";
Dir::Etc::PreferencesParts "${WORK}/etc/preferences.d";
Acquire::Languages "none";
APT::Sandbox::User "root";
APT::Architecture "${ARCH}";
APT::Architectures { "${ARCH}"; };
EOF
    } >"${WORK}/apt.conf"
    export APT_CONFIG="${WORK}/apt.conf"
}

# apt_for_suite SUITE: point APT_OPTS at SUITE's private sources, lists and
# cache, running `apt-get update` for it once.
apt_for_suite() {
    local suite="$1"
    local d="${WORK}/suites/${suite}-${ARCH}"
    APT_OPTS=(
        -o "Dir::Etc::SourceList=${d}/sources.list"
        -o "Dir::Etc::SourceParts=${d}/sources.list.d"
        -o "Dir::State=${d}/state"
        -o "Dir::State::Lists=${d}/state/lists"
        -o "Dir::State::status=${d}/state/status"
        -o "Dir::Cache=${d}/cache"
        -o "Dir::Cache::Archives=${d}/cache/archives"
    )
    # Running as non-root: the sandbox user cannot be switched, apt runs as us.
    [[ "$(id -u)" -eq 0 ]] || APT_OPTS+=(-o "APT::Sandbox::User=$(id -un)")
    [[ -z "${UPDATED_SUITES[${suite}]:-}" ]] || return 0

    mkdir -p "${d}/sources.list.d" "${d}/state/lists/partial" "${d}/cache/archives/partial"
    : >"${d}/state/status"
    local signed_by=""
    [[ -r "${KEYRING}" ]] && signed_by="[signed-by=${KEYRING}] "
    echo "deb ${signed_by}${MIRROR} ${suite} ${COMPONENT}" >"${d}/sources.list"

    log "apt-get update for ${suite}/${COMPONENT} (private lists in ${d})"
    if ! apt-get -q "${APT_OPTS[@]}" update >"${d}/update.log" 2>&1; then
        cat "${d}/update.log" >&2
        die "apt-get update against ${MIRROR} ${suite} failed"
    fi
    if grep -qE '^(W|E|Err):' "${d}/update.log"; then
        cat "${d}/update.log" >&2
        die "apt-get update against ${MIRROR} ${suite} reported errors"
    fi
    UPDATED_SUITES[${suite}]=1
}

# --- installing ------------------------------------------------------------------
# install_tools SRC_DIR DEST_DIR TOOLS: copy each tool of TOOLS (comma-separated, etcd
# last) from SRC_DIR into DEST_DIR atomically, so that an etcd reporting the wanted
# version means the whole set was installed.
install_tools() {
    local src="$1" dir="$2" tool
    for tool in ${3//,/ }; do
        [[ -f "${src}/${tool}" ]] || die "${tool} not found in ${src}"
    done
    mkdir -p "${dir}"
    for tool in ${3//,/ }; do
        install -m 0755 "${src}/${tool}" "${dir}/.${tool}.new"
        mv -f "${dir}/.${tool}.new" "${dir}/${tool}"
    done
}

# --- an official release, from the crate registry -----------------------------------
# write_pin VERSION: the crate manifest and lock that pin VERSION's official binaries.
write_pin() {
    local version="$1" dir="${PINS_DIR}/$1"
    [[ "${version}" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "--pin takes a version like 3.6.15, not '${version}'"
    mkdir -p "${dir}/src"
    : >"${dir}/src/lib.rs"
    cat >"${dir}/Cargo.toml" <<EOF
# etcd's official ${version} release binaries, pinned by Cargo.lock's checksums:
# scripts/fetch-etcd.sh takes bin/etcd out of the checked .crate. Made by --pin.
[workspace]

[package]
name = "etcd-release"
version = "${version}"
edition = "2021"
publish = false

[target.'cfg(target_arch = "x86_64")'.dependencies]
etcd-bin-vendored-linux-amd64 = "=${version}"

[target.'cfg(target_arch = "aarch64")'.dependencies]
etcd-bin-vendored-linux-arm64 = "=${version}"
EOF
    rm -f "${dir}/Cargo.lock"
    cargo generate-lockfile --quiet --manifest-path "${dir}/Cargo.toml" ||
        die "no crate etcd-bin-vendored-linux-* ${version} on the registry"
    echo "fetch-etcd: pinned etcd ${version} in ${dir#"${REPO_ROOT}/"}/ (commit it)"
}

# install_official VERSION DEST TOOLS: etcd VERSION's official binary into DEST.
install_official() {
    local version="$1" dir="$2" tools="$3"
    local pin="${PINS_DIR}/${version}"
    [[ "${tools}" == etcd ]] || die "the official ${version} row can only give etcd (etcdctl and etcdutl come from Debian)"
    [[ -f "${pin}/Cargo.lock" ]] ||
        die "etcd ${version} is not pinned: run scripts/fetch-etcd.sh --pin ${version} and commit scripts/etcd-releases/${version}/"
    command -v cargo >/dev/null 2>&1 || die "cargo not found (the official releases come from the crate registry)"
    command -v jq >/dev/null 2>&1 || "${SCRIPT_DIR}/need.sh" jq

    log "fetching ${CRATE} ${version} (pinned by ${pin#"${REPO_ROOT}/"}/Cargo.lock)"
    cargo fetch --quiet --locked --manifest-path "${pin}/Cargo.toml" --target "${RUST_TARGET}" ||
        die "cargo fetch of ${CRATE} ${version} failed (its checksum must match ${pin#"${REPO_ROOT}/"}/Cargo.lock)"
    local want
    want="$(awk -v name="${CRATE}" -v version="${version}" '
        $0 == "[[package]]" { n = ""; v = "" }
        $1 == "name" { n = $3 } $1 == "version" { v = $3 }
        $1 == "checksum" && n == "\"" name "\"" && v == "\"" version "\"" { gsub(/"/, "", $3); print $3 }
    ' "${pin}/Cargo.lock")"
    [[ "${want}" =~ ^[0-9a-f]{64}$ ]] || die "${pin#"${REPO_ROOT}/"}/Cargo.lock has no checksum for ${CRATE} ${version}"
    local cache="${CARGO_HOME:-${HOME}/.cargo}/registry/cache" crate="" f
    for f in "${cache}"/*/"${CRATE}-${version}.crate"; do
        [[ -f "${f}" ]] && [[ "$(sha256sum "${f}" | cut -d' ' -f1)" == "${want}" ]] && { crate="${f}"; break; }
    done
    [[ -n "${crate}" ]] || die "no ${CRATE}-${version}.crate with the pinned checksum ${want} in ${cache}"

    setup_work
    local row="${WORK}/official/${version}"
    mkdir -p "${row}"
    tar -xzf "${crate}" -C "${row}" --strip-components=2 "${CRATE}-${version}/bin/etcd" ||
        die "${crate} holds no bin/etcd"
    tool_version "${row}/etcd" | grep -qxF "$(version_line etcd "${version}")" ||
        die "the etcd in ${CRATE} ${version} reports '$(first_line "${RUN_AS[@]}" "${row}/etcd" --version)', not ${version}"
    install_tools "${row}" "${dir}" etcd
}

# --- one row: fetch, check, install --------------------------------------------
# install_row VERSION SOURCE DEST TOOLS: put TOOLS of etcd VERSION from SOURCE (official,
# or a Debian suite) into bin/DEST.
install_row() {
    local version="$1" source="$2" dest="$3" tools="$4"
    local dir="${BIN_DIR}"
    [[ "${dest}" == "." ]] || dir="${BIN_DIR}/${dest}"
    local shown="${dir#"${REPO_ROOT}/"}"

    if have_version "${version}" "${dir}" "${tools}"; then
        echo "fetch-etcd: ${tools//,/, } ${version} already present in ${shown}/"
        return 0
    fi
    if [[ "${source}" == official ]]; then
        install_official "${version}" "${dir}" "${tools}"
    else
        install_debian "${version}" "${source}" "${dir}" "${tools}"
    fi
    have_version "${version}" "${dir}" "${tools}" ||
        die "${shown}/ does not report ${version} for ${tools//,/, }"
    local summary="" tool
    for tool in ${tools//,/ }; do
        summary+="${summary:+; }$(tool_version "${dir}/${tool}" | head -n 1)"
    done
    log "${summary}"
    echo "fetch-etcd: ${tools//,/, } ${version} installed in ${shown}/"
}

# install_debian VERSION SUITE DIR TOOLS: TOOLS of etcd VERSION from Debian SUITE.
install_debian() {
    local version="$1" suite="$2" dir="$3" tools="$4"
    setup_work
    setup_apt
    apt_for_suite "${suite}"

    local row="${WORK}/rows/${suite}-${version}-${ARCH}"
    if [[ ! -d "${row}/root" ]]; then
        mkdir -p "${row}/debs" "${row}/root"
        log "downloading ${PACKAGES[*]} from ${suite}"
        (cd "${row}/debs" && apt-get -q "${APT_OPTS[@]}" download "${PACKAGES[@]}") >"${row}/download.log" 2>&1 || {
            cat "${row}/download.log" >&2
            die "apt-get download ${PACKAGES[*]} from ${suite} failed"
        }
        # Check versions and unpack.
        local pkg deb f pkg_version upstream
        for pkg in "${PACKAGES[@]}"; do
            deb=""
            for f in "${row}/debs/${pkg}"_*.deb; do
                [[ -f "${f}" ]] && { deb="${f}"; break; }
            done
            [[ -n "${deb}" ]] || die "${pkg}: no .deb was downloaded from ${suite}"
            pkg_version="$(dpkg-deb -f "${deb}" Version)"
            upstream="${pkg_version#*:}"   # drop epoch
            upstream="${upstream%-*}"      # drop Debian revision
            upstream="${upstream%%+*}"     # drop +dfsg / +ds suffixes
            upstream="${upstream%%~*}"
            if [[ "${upstream}" != "${version}" ]]; then
                die "${pkg} in ${suite} is version ${pkg_version} (upstream ${upstream}), but ${version} is wanted"
            fi
            [[ "$(dpkg-deb -f "${deb}" Architecture)" == "${ARCH}" ]] ||
                die "${pkg} from ${suite} is for $(dpkg-deb -f "${deb}" Architecture), not ${ARCH}"
            log "${pkg} ${pkg_version} (${suite}, ${ARCH})"
            dpkg -x "${deb}" "${row}/root"
        done
    fi
    install_tools "${row}/root/usr/bin" "${dir}" "${tools}"
}

# --- main -------------------------------------------------------------------------
which_rows=default
if [[ "${1:-}" == --arch ]]; then
    [[ $# -ge 2 ]] || die "--arch needs a value: --arch amd64 or --arch arm64 (${USAGE})"
    use_arch "$2"
    shift 2
fi
case "$#:${1:-}" in
    0:) ;;
    1:--compat)
        [[ "${ARCH}" == "${HOST_ARCH}" ]] ||
            die "--compat fetches this machine's releases only: drop --arch ${ARCH} (the ${ARCH} bundle is the default rows)"
        which_rows=compat
        ;;
    1:--print-mirror)
        find_mirror || die "no Debian archive URI found in ${APT_ETC_DIR} sources"
        exit 0
        ;;
    2:--pin)
        write_pin "$2"
        exit 0
        ;;
    *) die "unknown argument(s): $* (${USAGE})" ;;
esac

for row in "${ETCD_ROWS[@]}"; do
    # shellcheck disable=SC2086
    set -- ${row}
    [[ "${which_rows}" == compat || "$5" == default ]] || continue
    install_row "$1" "$2" "$3" "$4"
done
