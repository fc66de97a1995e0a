#!/usr/bin/env bash
# Fetch pinned etcd releases (etcd, etcdctl and, from 3.5 on, etcdutl) into <repo>/bin/.
#
# The versions are the rows of ETCD_VERSIONS below (version, Debian suite,
# destination under bin/):
#   3.5.30 from sid      into bin/               the bundle zone-etcd runs (default)
#   3.4.23 from bookworm into bin/etcd-3.4.23/   compatibility tests (--compat)
#   3.5.16 from trixie   into bin/etcd-3.5.16/   compatibility tests (--compat)
# etcd 3.4 has no etcdutl, so only etcd and etcdctl are required for 3.4.x.
#
# Source: Debian's etcd-server and etcd-client packages of the row's suite,
# downloaded with `apt-get download` against a private, throw-away apt
# configuration (its own sources list, state, lists and cache directories, one
# set per suite), unpacked with `dpkg -x`. Nothing is installed system-wide and
# the machine's apt state is not touched. The upstream version is checked
# against each .deb's Version field and, after installation, against the
# binaries' own version output. Files are installed atomically (temporary name
# in the destination directory, then mv), etcd last.
#
# Idempotent: a row whose destination already holds the wanted version (its
# etcd --version, etcdctl version and etcdutl version report it) is skipped
# without any network access; a run with nothing to fetch does not even look
# for a mirror.
#
# The archive mirror is taken from the machine's own apt sources
# (/etc/apt/sources.list, /etc/apt/sources.list.d/*.list and *.sources);
# set ETCD_DEBIAN_MIRROR=<uri> to override it.
#
# Usage: scripts/fetch-etcd.sh [--compat | --print-mirror]
#   (no argument)    fetch the default bundle (first row) into bin/.
#   --compat         also fetch the versions the compatibility tests use.
#   --print-mirror   only print the mirror URI that would be used, then exit.
#
# Environment (optional):
#   ETCD_DEBIAN_MIRROR  archive URI to use instead of the one from apt sources
#   APT_ETC_DIR         where to read apt sources from (default: /etc/apt)
# ETCD_DEBIAN_SUITE is no longer read: each version's suite is fixed in the table.
set -euo pipefail

# version   suite      destination under bin/ ("." = bin/ itself; first row = default)
ETCD_VERSIONS=(
    "3.5.30    sid        ."
    "3.4.23    bookworm   etcd-3.4.23"
    "3.5.16    trixie     etcd-3.5.16"
)
PACKAGES=(etcd-server etcd-client)
COMPONENT="main"
APT_ETC_DIR="${APT_ETC_DIR:-/etc/apt}"
KEYRING="/usr/share/keyrings/debian-archive-keyring.gpg"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/.." && pwd)"
BIN_DIR="${REPO_ROOT}/bin"
USAGE="usage: $0 [--compat | --print-mirror]"

log() { echo "fetch-etcd: $*" >&2; }
die() { echo "fetch-etcd: error: $*" >&2; exit 1; }

first_line() { local out; out="$("$@" 2>&1)" || true; echo "${out%%$'\n'*}"; }

# The binaries a release ships, etcd last (see install_row).
tools_for() {
    case "$1" in
        3.4.*) echo "etcdctl etcd" ;;
        *) echo "etcdctl etcdutl etcd" ;;
    esac
}

# The line "<tool> --version" / "<tool> version" prints for a version.
version_line() {
    case "$1" in
        etcd) echo "etcd Version: $2" ;;
        *) echo "$1 version: $2" ;;
    esac
}

# --- already there? ----------------------------------------------------------
# have_version VERSION DIR: every tool in DIR reports VERSION.
have_version() {
    local version="$1" dir="$2" tool out
    for tool in $(tools_for "${version}"); do
        [[ -x "${dir}/${tool}" ]] || return 1
        if [[ "${tool}" == etcd ]]; then
            out="$("${dir}/${tool}" --version 2>/dev/null)" || return 1
        else
            out="$("${dir}/${tool}" version 2>/dev/null)" || return 1
        fi
        grep -qxF "$(version_line "${tool}" "${version}")" <<<"${out}" || return 1
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

# --- private apt environment (shared by all rows, set up on first use) ---------
WORK=""
MIRROR=""
declare -A UPDATED_SUITES=()
APT_OPTS=()

setup_apt() {
    [[ -z "${WORK}" ]] || return 0
    local tool
    for tool in apt-get apt-config dpkg dpkg-deb; do
        command -v "${tool}" >/dev/null 2>&1 || die "'${tool}' not found (a Debian-based machine is required)"
    done
    MIRROR="$(find_mirror)" || die "no Debian archive URI found in ${APT_ETC_DIR}/sources.list{,.d/*.list,.d/*.sources}; set ETCD_DEBIAN_MIRROR=<uri>"
    log "using mirror ${MIRROR}"

    WORK="$(mktemp -d "${TMPDIR:-/tmp}/fetch-etcd.XXXXXX")"
    trap 'rm -rf "${WORK}"' EXIT
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
EOF
    } >"${WORK}/apt.conf"
    export APT_CONFIG="${WORK}/apt.conf"
}

# apt_for_suite SUITE: point APT_OPTS at SUITE's private sources, lists and
# cache, running `apt-get update` for it once.
apt_for_suite() {
    local suite="$1"
    local d="${WORK}/suites/${suite}"
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

# --- one row: fetch, check, install --------------------------------------------
# install_row VERSION SUITE DEST: put etcd VERSION from Debian SUITE into bin/DEST.
install_row() {
    local version="$1" suite="$2" dest="$3"
    local dir="${BIN_DIR}"
    [[ "${dest}" == "." ]] || dir="${BIN_DIR}/${dest}"
    local shown="bin/${dest}"
    [[ "${dest}" == "." ]] && shown="bin"

    if have_version "${version}" "${dir}"; then
        echo "fetch-etcd: etcd ${version} already present in ${shown}/"
        return 0
    fi

    setup_apt
    apt_for_suite "${suite}"

    local row="${WORK}/rows/${version}"
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
        log "${pkg} ${pkg_version} (${suite})"
        dpkg -x "${deb}" "${row}/root"
    done

    # Install, one file at a time, atomically; etcd last, so that an etcd
    # reporting the wanted version means the whole set was installed.
    local tool src
    for tool in $(tools_for "${version}"); do
        src="${row}/root/usr/bin/${tool}"
        [[ -f "${src}" ]] || die "${tool} not found in ${suite}'s ${PACKAGES[*]} ${version} (looked for usr/bin/${tool})"
    done
    mkdir -p "${dir}"
    for tool in $(tools_for "${version}"); do
        install -m 0755 "${row}/root/usr/bin/${tool}" "${dir}/.${tool}.new"
        mv -f "${dir}/.${tool}.new" "${dir}/${tool}"
    done

    have_version "${version}" "${dir}" ||
        die "${shown}/etcd does not report ${version}: $(first_line "${dir}/etcd" --version)"
    local summary
    summary="$(first_line "${dir}/etcd" --version)"
    for tool in $(tools_for "${version}"); do
        [[ "${tool}" == etcd ]] || summary+="; $(first_line "${dir}/${tool}" version)"
    done
    log "${summary}"
    echo "fetch-etcd: etcd ${version} installed in ${shown}/"
}

# --- main -------------------------------------------------------------------------
rows=1
case "$#:${1:-}" in
    0:) ;;
    1:--compat) rows=${#ETCD_VERSIONS[@]} ;;
    1:--print-mirror)
        find_mirror || die "no Debian archive URI found in ${APT_ETC_DIR} sources"
        exit 0
        ;;
    *) die "unknown argument(s): $* (${USAGE})" ;;
esac

for ((r = 0; r < rows; r++)); do
    # shellcheck disable=SC2086
    install_row ${ETCD_VERSIONS[r]}
done
