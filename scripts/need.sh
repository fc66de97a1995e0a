#!/usr/bin/env bash
# Installs the Debian packages that provide missing commands, idempotently:
#   scripts/need.sh protoc:protobuf-compiler jq openssl
# Each argument is COMMAND or COMMAND:PACKAGE; present commands are left alone.
set -euo pipefail

missing=()
for want in "$@"; do
    command="${want%%:*}"
    package="${want#*:}"
    command -v "$command" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
