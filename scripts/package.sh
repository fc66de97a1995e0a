#!/usr/bin/env bash
# Builds the Debian package dist/zone-etcd_<version>_amd64.deb, in one command from a
# clean clone: the bundled etcd (scripts/fetch-etcd.sh), the release build, the man pages
# and shell completions generated from the clap definitions (so they cannot disagree with
# --help), then cargo-deb over the assets Cargo.toml's [package.metadata.deb] lists.
# Installs cargo-deb on first use (idempotent). Prints the package's path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CARGO_DEB_VERSION=3.8.0

./scripts/fetch-etcd.sh >&2
if ! grep -q "$CARGO_DEB_VERSION" <<<"$(cargo deb --version 2>/dev/null || true)"; then
    cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION" >&2
fi

cargo build --release --locked -p zone-etcd >&2
generated=target/package
rm -rf "$generated"
mkdir -p "$generated/man" "$generated/completions"
target/release/zone-etcd man --out "$generated/man"
target/release/zone-etcd completions bash >"$generated/completions/zone-etcd.bash"
target/release/zone-etcd completions zsh >"$generated/completions/_zone-etcd"
target/release/zone-etcd completions fish >"$generated/completions/zone-etcd.fish"

version=$(cargo metadata --no-deps --format-version 1 --locked |
    jq -r '.packages[] | select(.name == "zone-etcd") | .version')
arch=$(dpkg --print-architecture)
mkdir -p dist
deb="dist/zone-etcd_${version}_${arch}.deb"
cargo deb --no-build --locked -p zone-etcd --output "$deb" >&2
echo "$deb"
