#!/usr/bin/env bash
# Consistency histories (issue 24; README "Consistency histories (format)").
#   scripts/consistency.sh --check FILE...
#       checks recorded histories alone: builds zone-consistency (consistency/, release)
#       if needed, runs `zone-consistency check FILE...` and exits with its code: 0 every
#       file clean, 1 the first anomaly named on stderr (file, line, operation, why),
#       2 unreadable or malformed input (file and line) or bad usage.
#   scripts/consistency.sh [--histories N] [--ops M] [--out DIR]
#       runs the scenarios under the recorder: not built yet.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ "${1:-}" = "--check" ]; then
    shift
    if [ "$#" -eq 0 ]; then
        echo "usage: scripts/consistency.sh --check FILE..." >&2
        exit 2
    fi
    # Paths stay relative to the caller's directory: no cd.
    nice -n 10 cargo build --quiet --release --locked --manifest-path "$root/Cargo.toml" \
        -p zone-consistency --bin zone-consistency
    exec "${CARGO_TARGET_DIR:-$root/target}/release/zone-consistency" check "$@"
fi

echo "consistency.sh: the scenario runner is not built yet (issue 24)" >&2
exit 2
