#!/usr/bin/env bash
# Fetch etcd, etcdctl and etcdutl (version 3.5.16) into <repo>/bin/.
#
# Source: Debian trixie's etcd-server and etcd-client packages, downloaded with
# `apt-get download` against a private, throw-away apt configuration (its own
# sources list, state, lists and cache directories), unpacked with `dpkg -x`.
# Nothing is installed system-wide and the machine's apt state is not touched.
#
# The archive mirror is taken from the machine's own apt sources
# (/etc/apt/sources.list, /etc/apt/sources.list.d/*.list and *.sources);
# set ETCD_DEBIAN_MIRROR=<uri> to override it.
#
# Usage: scripts/fetch-etcd.sh [--print-mirror]
#   --print-mirror   only print the mirror URI that would be used, then exit.
#
# Environment (optional):
#   ETCD_DEBIAN_MIRROR  archive URI to use instead of the one from apt sources
#   ETCD_DEBIAN_SUITE   suite to fetch from (default: trixie)
#   APT_ETC_DIR         where to read apt sources from (default: /etc/apt)
set -euo pipefail

ETCD_VERSION="3.5.16"
SUITE="${ETCD_DEBIAN_SUITE:-trixie}"
COMPONENT="main"
APT_ETC_DIR="${APT_ETC_DIR:-/etc/apt}"
KEYRING="/usr/share/keyrings/debian-archive-keyring.gpg"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/.." && pwd)"
BIN_DIR="${REPO_ROOT}/bin"

log() { echo "fetch-etcd: $*" >&2; }
die() { echo "fetch-etcd: error: $*" >&2; exit 1; }

# --- already there? ----------------------------------------------------------
have_wanted_version() {
    local etcd="${BIN_DIR}/etcd"
    [[ -x "${etcd}" && -x "${BIN_DIR}/etcdctl" && -x "${BIN_DIR}/etcdutl" ]] || return 1
    local out
    out="$("${etcd}" --version 2>/dev/null)" || return 1
    grep -qxF "etcd Version: ${ETCD_VERSION}" <<<"${out}"
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
                while (( i < ${#toks[@]} )) && [[ "${toks[i]}" != *\] ]]; do i=$((i + 1)); done
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

if [[ "${1:-}" == "--print-mirror" ]]; then
    find_mirror || die "no Debian archive URI found in ${APT_ETC_DIR} sources"
    exit 0
elif [[ $# -gt 0 ]]; then
    die "unknown argument: $1 (usage: $0 [--print-mirror])"
fi

if have_wanted_version; then
    echo "fetch-etcd: etcd ${ETCD_VERSION} already present in ${BIN_DIR}"
    exit 0
fi

for tool in apt-get dpkg dpkg-deb; do
    command -v "${tool}" >/dev/null 2>&1 || die "'${tool}' not found (a Debian-based machine is required)"
done

MIRROR="$(find_mirror)" || die "no Debian archive URI found in ${APT_ETC_DIR}/sources.list{,.d/*.list,.d/*.sources}; set ETCD_DEBIAN_MIRROR=<uri>"
log "using mirror ${MIRROR}, suite ${SUITE}/${COMPONENT}"

# --- private apt environment ---------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/fetch-etcd.XXXXXX")"
trap 'rm -rf "${WORK}"' EXIT
mkdir -p "${WORK}/etc/apt.conf.d" "${WORK}/etc/sources.list.d" "${WORK}/etc/preferences.d" \
    "${WORK}/state/lists/partial" "${WORK}/cache/archives/partial" "${WORK}/debs" "${WORK}/root"
: >"${WORK}/state/status"

signed_by=""
[[ -r "${KEYRING}" ]] && signed_by="[signed-by=${KEYRING}] "
echo "deb ${signed_by}${MIRROR} ${SUITE} ${COMPONENT}" >"${WORK}/etc/sources.list"

# A private main config, so that the machine's apt.conf.d (hooks such as
# APT::Update::Post-Invoke, which act on the system cache) is not run. Only its
# network settings (proxies, date checks, retries) are carried over.
{
    apt-config dump 2>/dev/null |
        grep -E '^Acquire::((https?|ftp|socks)::[Pp]roxy|Check-Valid-Until|Check-Date|Retries|ForceIPv4|ForceIPv6)' || true
    cat <<EOF
Dir::Etc::Parts "${WORK}/etc/apt.conf.d";
Dir::Etc::Main "${WORK}/etc/apt.conf";
Dir::Etc::SourceList "${WORK}/etc/sources.list";
Dir::Etc::SourceParts "${WORK}/etc/sources.list.d";
Dir::Etc::Preferences "${WORK}/etc/preferences";
Dir::Etc::PreferencesParts "${WORK}/etc/preferences.d";
Dir::State "${WORK}/state";
Dir::State::Lists "${WORK}/state/lists";
Dir::State::status "${WORK}/state/status";
Dir::Cache "${WORK}/cache";
Dir::Cache::Archives "${WORK}/cache/archives";
Acquire::Languages "none";
APT::Sandbox::User "root";
EOF
} >"${WORK}/apt.conf"

APT_OPTS=(
    -o "Dir::Etc::SourceList=${WORK}/etc/sources.list"
    -o "Dir::Etc::SourceParts=${WORK}/etc/sources.list.d"
    -o "Dir::State=${WORK}/state"
    -o "Dir::State::Lists=${WORK}/state/lists"
    -o "Dir::State::status=${WORK}/state/status"
    -o "Dir::Cache=${WORK}/cache"
    -o "Dir::Cache::Archives=${WORK}/cache/archives"
)
export APT_CONFIG="${WORK}/apt.conf"
# Running as non-root: the sandbox user cannot be switched, apt runs as us.
[[ "$(id -u)" -eq 0 ]] || APT_OPTS+=(-o "APT::Sandbox::User=$(id -un)")

log "apt-get update (private lists in ${WORK})"
if ! apt-get -q "${APT_OPTS[@]}" update >"${WORK}/update.log" 2>&1; then
    cat "${WORK}/update.log" >&2
    die "apt-get update against ${MIRROR} ${SUITE} failed"
fi
if grep -qE '^(W|E|Err):' "${WORK}/update.log"; then
    cat "${WORK}/update.log" >&2
    die "apt-get update against ${MIRROR} ${SUITE} reported errors"
fi

log "downloading etcd-server and etcd-client"
(cd "${WORK}/debs" && apt-get -q "${APT_OPTS[@]}" download etcd-server etcd-client) >"${WORK}/download.log" 2>&1 || {
    cat "${WORK}/download.log" >&2
    die "apt-get download etcd-server etcd-client failed"
}

# --- check versions and unpack ---------------------------------------------------
for pkg in etcd-server etcd-client; do
    deb="$(ls "${WORK}/debs/${pkg}"_*.deb 2>/dev/null | head -n1 || true)"
    [[ -n "${deb}" ]] || die "${pkg}: no .deb was downloaded"
    pkg_version="$(dpkg-deb -f "${deb}" Version)"
    upstream="${pkg_version#*:}"   # drop epoch
    upstream="${upstream%-*}"      # drop Debian revision
    upstream="${upstream%%+*}"     # drop +dfsg / +ds suffixes
    upstream="${upstream%%~*}"
    if [[ "${upstream}" != "${ETCD_VERSION}" ]]; then
        die "${pkg} in ${SUITE} is version ${pkg_version} (upstream ${upstream}), but ${ETCD_VERSION} is required"
    fi
    log "${pkg} ${pkg_version}"
    dpkg -x "${deb}" "${WORK}/root"
done

mkdir -p "${BIN_DIR}"
for b in etcd etcdctl etcdutl; do
    src="${WORK}/root/usr/bin/${b}"
    [[ -f "${src}" ]] || die "${b} not found in the unpacked packages (looked for usr/bin/${b})"
    install -m 0755 "${src}" "${BIN_DIR}/.${b}.new"
    mv -f "${BIN_DIR}/.${b}.new" "${BIN_DIR}/${b}"
done

first_line() { local out; out="$("$@" 2>&1)" || true; echo "${out%%$'\n'*}"; }
have_wanted_version || die "bin/etcd --version does not report ${ETCD_VERSION}: $(first_line "${BIN_DIR}/etcd" --version)"
log "$(first_line "${BIN_DIR}/etcd" --version); $(first_line "${BIN_DIR}/etcdctl" version); $(first_line "${BIN_DIR}/etcdutl" version)"
echo "fetch-etcd: etcd ${ETCD_VERSION} installed in ${BIN_DIR}"
