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
#   scripts/previous-release.sh                  build if needed, print the path
#   scripts/previous-release.sh --build-dir DIR  the same, compiling in DIR, the build
#                                                directory of this checkout's build
#   scripts/previous-release.sh --path           print the path only (it may not exist yet)
#
# With --build-dir (scripts/test.sh's), the release's crates are compiled beside that
# build's and every dependency whose version, features and flags are the same is taken
# from it (0.1.0's Cargo.lock is today's but for zone-etcd itself): its RUSTFLAGS must be
# the caller's build's, as they are when test.sh runs it. The binary still goes to a
# target directory of its own, so the caller's target/debug/zone-etcd stays its own.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

release=0.1.0
commit=75da28a2514bb52888c83d75dd65868cb0e056e5
cache="${XDG_CACHE_HOME:-${HOME}/.cache}/zone-etcd/releases/${release}-${commit:0:12}"
binary="${cache}/zone-etcd"

build_dir=""
case "${1:-}" in
    --path)
        echo "$binary"
        exit 0
        ;;
    --build-dir)
        [ -d "${2:-}" ] || { echo "previous-release.sh: --build-dir '${2:-}' is not a directory (fix: name the build directory of a finished build, such as target)" >&2; exit 2; }
        build_dir=$(cd "$2" && pwd)
        ;;
    "") ;;
    *)
        echo "previous-release.sh: unknown argument '$1' (fix: no argument, --build-dir DIR or --path)" >&2
        exit 2
        ;;
esac
mkdir -p "$(dirname "$cache")"
# One build at a time: the test that needs it waits here for test.sh's (or another's).
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
# The workspace's clippy wrapper is for this tree's code; alone, -D warnings too.
if [ -n "$build_dir" ]; then
    flags=(CARGO_BUILD_BUILD_DIR="$build_dir")
else
    flags=(-u RUSTFLAGS CARGO_INCREMENTAL=0)
fi
(
    cd "$work/src"
    env -u RUSTC_WORKSPACE_WRAPPER "${flags[@]}" CARGO_TARGET_DIR="$work/target" \
        cargo build --locked --quiet -p zone-etcd --bin zone-etcd
)
mkdir -p "$cache.new"
cp "$work/target/debug/zone-etcd" "$cache.new/zone-etcd"
rm -rf "$cache"
mv "$cache.new" "$cache"
echo "$binary"
