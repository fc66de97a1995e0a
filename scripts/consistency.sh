#!/usr/bin/env bash
# Consistency histories (issue 24; guide "Consistency histories (format)").
#   scripts/consistency.sh --check FILE...
#       checks recorded histories alone: builds zone-consistency (consistency/, release)
#       if needed, runs `zone-consistency check FILE...` and exits with its code: 0 every
#       file clean, 1 the first anomaly named on stderr (file, line, operation, why),
#       2 unreadable or malformed input (file and line) or bad usage.
#   scripts/consistency.sh [--histories N] [--ops M] [--out DIR] [--keep-going]
#       runs the scenarios under the recorder (zone-recorder, recorder/): N histories in
#       all (default: one per scenario), taken round-robin over `zone-recorder list`, each
#       on a fresh 3-member zone on 127.0.120.1-3 (127.0.120-125 are this script's; the
#       tests use others; `partition` and `latency` put their members on network-namespace machines
#       zr120-* at 198.19.120.1-3 instead) with at least M operations (default 300); keeps every history
#       and its summary in DIR (default: a new directory under /tmp), checks each with
#       zone-consistency, prints a table per scenario and exits 0 only when no history
#       has an anomaly; 1 naming the first anomaly (or a scenario whose setup or fault
#       failed: loudly, at once; with --keep-going the run goes on, the table counts it
#       as not recorded, and the exit is 1 at the end), 2 on bad usage.
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

histories=""
keep_going=""
ops=300
out=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --histories) histories="${2:-}"; shift 2 || true ;;
        --ops) ops="${2:-}"; shift 2 || true ;;
        --out) out="${2:-}"; shift 2 || true ;;
        --keep-going) keep_going=1; shift ;;
        *) echo "usage: scripts/consistency.sh [--histories N] [--ops M] [--out DIR] [--keep-going] | --check FILE..." >&2; exit 2 ;;
    esac
done
for n in "$ops" ${histories:+"$histories"}; do
    case "$n" in
        ''|*[!0-9]*|0) echo "consistency.sh: --histories and --ops take a positive number, not '$n'" >&2; exit 2 ;;
    esac
done
[ -n "$out" ] || out="$(mktemp -d /tmp/zone-consistency.XXXXXX)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

target="${CARGO_TARGET_DIR:-$root/target}"
echo "== building zone-etcd and zone-recorder (debug), zone-consistency (release)" >&2
nice -n 10 cargo build --quiet --locked --manifest-path "$root/Cargo.toml" \
    -p zone-etcd --bin zone-etcd -p zone-recorder --bin zone-recorder
nice -n 10 cargo build --quiet --release --locked --manifest-path "$root/Cargo.toml" \
    -p zone-consistency --bin zone-consistency
recorder="$target/debug/zone-recorder"
checker="$target/release/zone-consistency"
mapfile -t scenarios < <("$recorder" list)
[ -n "$histories" ] || histories=${#scenarios[@]}
run_id="$(date +%s)"

declare -A h_count h_ops h_unknown h_anom h_check h_rec h_failed
first_anomaly=""
for ((i = 0; i < histories; i++)); do
    s="${scenarios[i % ${#scenarios[@]}]}"
    file="$out/$s-$i.jsonl"
    echo "== history $((i + 1))/$histories: $s ($file)" >&2
    if ! "$recorder" scenario "$s" --out "$file" --ops "$ops" --subnet 120 \
            --history "$run_id.$i" --zone-etcd "$target/debug/zone-etcd" --bin "$root/bin" \
            >"$out/$s-$i.summary.json"; then
        echo "consistency.sh: scenario $s (history $i) failed: its setup or fault did not happen; nothing checked" >&2
        [ -n "$keep_going" ] || exit 1
        h_failed[$s]=$(( ${h_failed[$s]:-0} + 1 ))
        continue
    fi
    start=$(date +%s.%N)
    rc=0
    "$checker" check "$file" >/dev/null 2>"$out/$s-$i.check.txt" || rc=$?
    took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
    summary="$(cat "$out/$s-$i.summary.json")"
    h_count[$s]=$(( ${h_count[$s]:-0} + 1 ))
    h_ops[$s]=$(( ${h_ops[$s]:-0} + $(jq -r .ops <<<"$summary") ))
    h_unknown[$s]=$(( ${h_unknown[$s]:-0} + $(jq -r .unknown <<<"$summary") ))
    h_rec[$s]=$(awk -v a="${h_rec[$s]:-0}" -v b="$(jq -r .seconds <<<"$summary")" 'BEGIN { print a + b }')
    h_check[$s]=$(awk -v a="${h_check[$s]:-0}" -v b="$took" 'BEGIN { print (a > b ? a : b) }')
    if [ "$rc" -ne 0 ]; then
        h_anom[$s]=$(( ${h_anom[$s]:-0} + 1 ))
        [ -n "$first_anomaly" ] || first_anomaly="$(head -1 "$out/$s-$i.check.txt")"
        echo "   ANOMALY: $(head -1 "$out/$s-$i.check.txt")" >&2
    fi
done

printf '\n%-12s %9s %10s %8s %9s %14s %16s %14s\n' scenario histories operations unknown anomalies "max check (s)" "record (s/hist)" "not recorded"
total_anom=0
total_failed=0
for s in "${scenarios[@]}"; do
    [ -n "${h_count[$s]:-}${h_failed[$s]:-}" ] || continue
    printf '%-12s %9d %10d %8d %9d %14.2f %16.1f %14d\n' "$s" "${h_count[$s]:-0}" "${h_ops[$s]:-0}" \
        "${h_unknown[$s]:-0}" "${h_anom[$s]:-0}" "${h_check[$s]:-0}" \
        "$(awk -v a="${h_rec[$s]:-0}" -v b="${h_count[$s]:-0}" 'BEGIN { print (b > 0 ? a / b : 0) }')" \
        "${h_failed[$s]:-0}"
    total_anom=$((total_anom + ${h_anom[$s]:-0}))
    total_failed=$((total_failed + ${h_failed[$s]:-0}))
done
echo "histories in $out"
if [ "$total_anom" -gt 0 ]; then
    echo "consistency.sh: $total_anom histories with anomalies; the first: $first_anomaly" >&2
    exit 1
fi
if [ "$total_failed" -gt 0 ]; then
    echo "consistency.sh: $total_failed scenario runs failed before a history was recorded (--keep-going; see the lines above)" >&2
    exit 1
fi
