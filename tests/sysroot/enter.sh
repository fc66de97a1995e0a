#!/bin/bash
# Starts a throwaway machine over this one, for tests/zone/package.rs and tests/zone/systemd.rs:
#   enter.sh BASE DEB run SCRIPT   run SCRIPT (bash) inside, DEB in /root/zone-etcd.deb
#   enter.sh BASE DEB boot         install DEB, then boot systemd as PID 1 inside
# It moves itself into a new cgroup (removed by the test afterwards), then unshares mount,
# PID, network, UTS, IPC and cgroup namespaces and continues in root.sh. BASE must be an
# empty directory outside /tmp: a tmpfs is mounted on it inside the namespace only.
set -euo pipefail
if [ -d /sys/fs/cgroup/unified ]; then
    parent=/sys/fs/cgroup/unified
else
    parent=/sys/fs/cgroup
fi
cgroup=$parent/zone-etcd-sysroot-$$
mkdir "$cgroup"
echo $$ >"$cgroup/cgroup.procs"
exec unshare --mount --pid --fork --net --uts --ipc --cgroup --propagation private -- \
    bash "$(dirname "${BASH_SOURCE[0]}")/root.sh" "$@"
