#!/usr/bin/env bash
# The main job on a fresh machine: a local 3-member etcd zone with mutual TLS on
# 127.0.0.1-3 (ports 2379/2380), until Ctrl-C. Extra arguments go to `zone-etcd demo`
# (e.g. --dir /tmp/my-zone; the default is ./zone-demo).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/fetch-etcd.sh
# etcd-client compiles etcd's API from its .proto files.
./scripts/need.sh protoc:protobuf-compiler
cargo build --release --locked
# The bundle: zone-etcd beside etcd and etcdctl, where it looks for them first.
install -m 0755 target/release/zone-etcd bin/zone-etcd
exec bin/zone-etcd demo "$@"
