#!/usr/bin/env bash
# Runs every check and test of zone-etcd. On a fresh machine it first installs what the
# tests need (idempotent): the bundled etcd (scripts/fetch-etcd.sh), protoc (etcd-client
# compiles etcd's API from its .proto files), jq and openssl (the tests check the zone
# document's signature with them, as a reviewer would), and the Rust components for the
# lint steps.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/fetch-etcd.sh --compat

./scripts/need.sh protoc:protobuf-compiler jq openssl

if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
