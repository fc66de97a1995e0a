#!/usr/bin/env bash
# Fuzzes zone-etcd's parsers with cargo-fuzz (libFuzzer), each target for a bounded time.
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   scripts/fuzz.sh 300             # every target, 300 s each (or FUZZ_SECONDS=300)
#   scripts/fuzz.sh 120 zone_file   # one target
#
# Only a stable toolchain is needed: cargo-fuzz's nightly flags are enabled with
# RUSTC_BOOTSTRAP=1. Installs cargo-fuzz if missing (idempotent). Each target starts from
# fuzz/seeds/<target>/ and fuzz/regressions/<target>/ plus its working corpus
# (fuzz/corpus/, git-ignored). A crash stops the run with the input in
# fuzz/artifacts/<target>/: commit it to fuzz/regressions/<target>/ with the fix, and
# `cargo test --test zone fuzz_regressions` replays it from then on.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${1:-${FUZZ_SECONDS:-60}}"
shift || true
targets=("$@")
((${#targets[@]})) || targets=(zone_file node_file zone_document)

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

cd fuzz
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    echo "== fuzz $target for ${seconds}s"
    # -rss_limit_mb: a parser that reads a 1 MiB input must stay far below this.
    cargo fuzz run --sanitizer none "$target" "corpus/$target" "seeds/$target" "regressions/$target" -- \
        -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=1024 -timeout=10 \
        -print_final_stats=1 2>&1 | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|Done)|panicked|ERROR|artifact_prefix|Test unit written" || true
    if [ -n "$(ls -A "artifacts/$target")" ]; then
        echo "fuzz $target: crash inputs in fuzz/artifacts/$target/:" >&2
        ls "artifacts/$target" >&2
        exit 1
    fi
done
echo "fuzz: no crash in ${targets[*]} (${seconds}s each)"
