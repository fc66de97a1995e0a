#!/usr/bin/env bash
# Installs the Debian packages that provide missing commands, idempotently:
#   scripts/need.sh protoc:protobuf-compiler jq openssl
# Each argument is COMMAND or COMMAND:PACKAGE, or /PATH:PACKAGE for a package known by a
# file it installs (scripts/need.sh /usr/aarch64-linux-gnu/lib:libc6-arm64-cross);
# present commands and files are left alone.
set -euo pipefail

missing=()
for want in "$@"; do
    command="${want%%:*}"
    package="${want#*:}"
    if [[ "$command" == /* ]]; then
        [ -e "$command" ] || missing+=("$package")
    else
        command -v "$command" >/dev/null 2>&1 || missing+=("$package")
    fi
done
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    # Another install of the suite's may hold dpkg's lock: wait for it.
    $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${missing[@]}"
fi
