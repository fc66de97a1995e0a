#!/usr/bin/env bash
# Installs the Debian packages that provide missing commands, idempotently:
#   scripts/need.sh protoc:protobuf-compiler jq openssl
#   scripts/need.sh --no-service-starts sshd:openssh-server
# Each argument is COMMAND or COMMAND:PACKAGE, or /PATH:PACKAGE for a package known by a
# file it installs (scripts/need.sh /usr/aarch64-linux-gnu/lib:libc6-arm64-cross);
# present commands and files are left alone (/usr/sbin is looked in too). With
# --no-service-starts, the packages' scripts may not start the machine's own services
# (PostgreSQL, sshd, Prometheus: the tests start their own): a policy-rc.d denies them
# for the install, unless the machine has one already. One install at a time: a second
# call waits for the first (test.sh installs beside its build, package.sh beside it).
set -euo pipefail

no_service_starts=false
if [ "${1:-}" = "--no-service-starts" ]; then
    no_service_starts=true
    shift
fi
missing=()
for want in "$@"; do
    command="${want%%:*}"
    package="${want#*:}"
    if [[ "$command" == /* ]]; then
        [ -e "$command" ] || missing+=("$package")
    else
        PATH="$PATH:/usr/sbin" command -v "$command" >/dev/null 2>&1 || missing+=("$package")
    fi
done
((${#missing[@]})) || exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
# apt's own locks make a second apt-get fail at once while `apt-get update` runs: calls of
# this script wait for each other here instead.
exec 7>"${TMPDIR:-/tmp}/zone-etcd-need.lock"
flock 7
policy=""
if $no_service_starts && ! [ -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    trap '$sudo rm -f "$policy"' EXIT
fi
# Another install (not this script's) may hold dpkg's lock: wait for it.
$sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${missing[@]}"
