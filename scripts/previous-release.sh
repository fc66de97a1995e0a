#!/usr/bin/env bash
# Builds the zone-etcd binary of the previous release (the tag v0.1.0, by its commit, so a
# clone without tags still finds it: it is an ancestor of main), once per machine, for
# tests/zone/two_builds.rs, which runs it beside this build in one zone. Prints the
# binary's path. Idempotent: the binary is kept in the user's cache, under the commit's
# name, and the build is skipped when it is there (a fresh machine builds it once: the
# release's own sources from `git archive`, its own Cargo.lock, a debug build in a
# target directory of its own, removed afterwards; a second caller waits for the first's
# build).
#
#   scripts/previous-release.sh            build if needed, print the path
#   scripts/previous-release.sh --path     print the path only (it may not exist yet)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

release=0.1.0
commit=75da28a2514bb52888c83d75dd65868cb0e056e5
cache="${XDG_CACHE_HOME:-${HOME}/.cache}/zone-etcd/releases/${release}-${commit:0:12}"
binary="${cache}/zone-etcd"

if [ "${1:-}" = "--path" ]; then
    echo "$binary"
    exit 0
fi
mkdir -p "$(dirname "$cache")"
# One build at a time: test.sh starts it early, and the test that needs it waits here.
exec 8>"${cache}.lock"
flock 8
if [ -x "$binary" ]; then
    echo "$binary"
    exit 0
fi
git cat-file -e "${commit}^{commit}" 2>/dev/null || {
    echo "previous-release.sh: commit ${commit} (zone-etcd ${release}) is not in this clone: fetch main's full history (git fetch --unshallow)" >&2
    exit 1
}
work=$(mktemp -d "$(dirname "$cache")/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
git archive "$commit" | tar -x -C "$work/src"
# Its own flags: the workspace's clippy wrapper and -D warnings are for this tree's code.
(
    cd "$work/src"
    env -u RUSTC_WORKSPACE_WRAPPER -u RUSTFLAGS CARGO_TARGET_DIR="$work/target" CARGO_INCREMENTAL=0 \
        cargo build --locked --quiet -p zone-etcd --bin zone-etcd
)
mkdir -p "$cache.new"
cp "$work/target/debug/zone-etcd" "$cache.new/zone-etcd"
rm -rf "$cache"
mv "$cache.new" "$cache"
echo "$binary"
