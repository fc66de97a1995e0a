#!/bin/bash
# The durability A/B of BENCHMARKS.md: `bootstrap` of 31 members by two zone-etcd builds,
# alternating (ABAB, 15 each), first on a quiet disk, then while dd writes 4 GiB rounds
# to the same file system. Usage: bench/durability-ab.sh OLD_ZONE_ETCD NEW_ZONE_ETCD
# (e.g. a build of 352ee2a, the last with syncfs, and target/release/zone-etcd).
set -e
W=$(mktemp -d "${TMPDIR:-/tmp}/durability-ab.XXXXXX")
A=${1:?usage: durability-ab.sh OLD_ZONE_ETCD NEW_ZONE_ETCD}; B=${2:?usage: durability-ab.sh OLD_ZONE_ETCD NEW_ZONE_ETCD}
$B ca init --zone example.zone --out $W/ca >/dev/null 2>&1
{ echo 'name = "example.zone"'; for i in $(seq 1 31); do printf '\n[[etcd]]\nnode_name = "node%d.example.zone"\nprotocol = "https"\naddress = "10.0.0.%d"\npeer_port = 2380\nclient_port = 2379\n' $i $i; done; } > $W/zone.toml
t() { local s e; s=$(date +%s%N); $1 bootstrap --ca $W/ca --zone $W/zone.toml --out $W/out-$2 >/dev/null 2>&1; e=$(date +%s%N); rm -rf $W/out-$2; echo $(( (e-s)/1000 )); }
med() { sort -n | awk '{a[NR]=$1} END {printf "median %.1f ms (min %.1f, max %.1f, n %d)\n", a[int((NR+1)/2)]/1000, a[1]/1000, a[NR]/1000, NR}'; }
run() { : > $W/a; : > $W/b; for r in $(seq 1 15); do t $A a$r >> $W/a; t $B b$r >> $W/b; done; echo "$1 A (old):  $(med < $W/a)"; echo "$1 B (new):  $(med < $W/b)"; }
run quiet
(for k in $(seq 1 10); do dd if=/dev/zero of=$W/writer.bin bs=1M count=4096 status=none; rm -f $W/writer.bin; done) & loop=$!
sleep 2
run busy
kill $loop 2>/dev/null || true; pid=$(ps -eo pid,args | awk -v f="of=$W/writer.bin" '$0 ~ f && /dd/ {print $1}'); [ -z "$pid" ] || kill $pid; wait 2>/dev/null || true; rm -rf "$W"; sync
