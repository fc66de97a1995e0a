//! The Debian package (scripts/package.sh), installed into a throwaway machine over this
//! one (tests/zone/common/sysroot.rs: an overlay of `/` in its own namespaces, the checkout
//! hidden): with nothing else, `zone-etcd demo` runs a healthy zone from the installed
//! paths (etcd from /usr/lib/zone-etcd, not on PATH), `man zone-etcd` renders, the bash
//! completions load and complete; installing, upgrading, removing and purging never touch
//! a bundle in /etc/zone-etcd or the data in /var/lib/zone-etcd.

use crate::common;

use common::sysroot;

const SCRIPT: &str = r#"
set -euo pipefail
step() { echo "== $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

# What must never be touched: a node's bundle and data, with their own modes.
install -d -m 0750 /etc/zone-etcd/pki /var/lib/zone-etcd/data/member/snap
echo 'name = "node1.example.zone"' >/etc/zone-etcd/node.toml
head -c 64 /dev/urandom >/etc/zone-etcd/pki/node.key && chmod 0600 /etc/zone-etcd/pki/node.key
head -c 4096 /dev/urandom >/var/lib/zone-etcd/data/member/snap/db
snapshot() {
    find /etc/zone-etcd /var/lib/zone-etcd -printf '%p %m %U %G %s %T@\n' | sort
    find /etc/zone-etcd /var/lib/zone-etcd -type f -exec sha256sum {} + | sort
}
before=$(snapshot)
[ -n "$before" ] || fail "no snapshot of the bundle"
untouched() { [ "$(snapshot)" = "$before" ] || fail "$1 changed the bundle or the data: $(diff <(echo "$before") <(snapshot))"; }

step install
! command -v zone-etcd >/dev/null || fail "zone-etcd is on this machine before the package"
dpkg -i /root/zone-etcd.deb
untouched install
step upgrade
dpkg -i /root/zone-etcd.deb 2>&1 | tee /root/upgrade.log
grep -q "restart each member" /root/upgrade.log || fail "no restart advice on upgrade"
grep -q "upgraded from " /root/upgrade.log || fail "the upgrade not named: $(cat /root/upgrade.log)"
untouched upgrade

step "a zone at a higher format level"
# Each member's keeper keeps the zone's level in <state_dir>/zone-level.json (this bundle's
# node.toml sets no state_dir: /etc/zone-etcd/state).
install -d -m 0700 /etc/zone-etcd/state
level() { printf '{"format":1,"level":%s,"release":"9.9.0","at":"2026-11-27T00:00:00Z"}' "$1" >/etc/zone-etcd/state/zone-level.json; }
level 1
dpkg -i /root/zone-etcd.deb >/root/level1.log 2>&1 || fail "refused over a zone at the level it reads: $(cat /root/level1.log)"
level 2
dpkg -i /root/zone-etcd.deb >/root/level1.log 2>&1 || fail "refused over a zone at level 2, which it reads: $(cat /root/level1.log)"
level 3
before=$(snapshot)
if dpkg -i /root/zone-etcd.deb >/root/level2.log 2>&1; then fail "installed over a zone at level 3: $(cat /root/level2.log)"; fi
grep -q "/etc/zone-etcd/state/zone-level.json: the zone of /etc/zone-etcd/node.toml is at format level 3 (raised by zone-etcd 9.9.0); this package reads formats up to level 2" /root/level2.log || fail "the refusal does not say why: $(cat /root/level2.log)"
grep -q "install zone-etcd 9.9.0 or later" /root/level2.log || fail "the refusal does not name the release: $(cat /root/level2.log)"
[ "$(dpkg-query -W -f='${Status}' zone-etcd)" = "install ok installed" ] || fail "the installed release did not stay: $(dpkg-query -W -f='${Status}' zone-etcd)"
untouched "a refused install"
ZONE_ETCD_ALLOW_OLDER=1 dpkg -i /root/zone-etcd.deb >/root/allowed.log 2>&1 || fail "ZONE_ETCD_ALLOW_OLDER=1 refused: $(cat /root/allowed.log)"
grep -q "installing anyway" /root/allowed.log || fail "no warning when installed anyway: $(cat /root/allowed.log)"
untouched "an install allowed over a higher level"
rm -r /etc/zone-etcd/state
before=$(snapshot)

step "a move back to an older release"
# As if 9.9.0 were installed (the throwaway machine's dpkg database says so): this
# package is then a move back, and says so.
sed -i '/^Package: zone-etcd$/,/^$/ s/^Version: .*/Version: 9.9.0/' /var/lib/dpkg/status
[ "$(dpkg-query -W -f='${Version}' zone-etcd)" = 9.9.0 ] || fail "the database edit did not take"
dpkg -i /root/zone-etcd.deb 2>&1 | tee /root/back.log
grep -q "moved back from 9.9.0 to " /root/back.log || fail "a move back called an upgrade: $(cat /root/back.log)"
untouched "a move back"

step paths
[ "$(command -v zone-etcd)" = /usr/bin/zone-etcd ] || fail "zone-etcd not in /usr/bin"
! command -v etcd >/dev/null || fail "etcd is on PATH: the lookup in /usr/lib/zone-etcd is not what is tested"
for tool in etcd etcdctl etcdutl etcd-3.5.34/etcd; do [ -x /usr/lib/zone-etcd/$tool ] || fail "/usr/lib/zone-etcd/$tool"; done
# Each output is read whole before grep looks at it: with pipefail, `etcd --version | grep -q`
# fails whenever grep exits before etcd's last line is written (etcd dies of SIGPIPE).
version=$(/usr/lib/zone-etcd/etcd --version)
grep -qx 'etcd Version: 3.6.15' <<<"$version" || fail "the bundled etcd is not 3.6.15: $version"
version=$(/usr/lib/zone-etcd/etcd-3.5.34/etcd --version)
grep -qx 'etcd Version: 3.5.34' <<<"$version" || fail "the step etcd is not 3.5.34: $version"
[ -f /usr/lib/systemd/system/zone-etcd.service ] || fail "unit missing"
[ -f /usr/lib/systemd/system/zone-etcd@.service ] || fail "template unit missing"
for unit in zone-etcd-backup.service zone-etcd-backup-drill.service zone-etcd-backup-drill.timer; do
    [ -f /usr/lib/systemd/system/$unit ] || fail "$unit missing"
done
grep -q '^      - alert: ZoneEtcdMemberDown$' /usr/share/zone-etcd/alerts/zone-etcd.rules.yml || fail "the alert rules (docs/alerts/zone-etcd.rules.yml) are not installed"
grep -q '"uid": "zone-etcd"' /usr/share/zone-etcd/dashboards/zone-etcd.json || fail "the dashboard (docs/dashboards/zone-etcd.json) is not installed"
[ -f /usr/share/man/man1/zone-etcd-backup-run.1.gz ] || [ -f /usr/share/man/man1/zone-etcd-backup-run.1 ] || fail "man page zone-etcd-backup-run(1) missing"
zone-etcd --version

step demo
zone-etcd demo --dir /var/tmp/demo >/root/demo.out 2>/root/demo.err &
demo=$!
for _ in $(seq 1 300); do
    grep -q "is healthy" /root/demo.out 2>/dev/null && break
    kill -0 $demo 2>/dev/null || { cat /root/demo.out /root/demo.err; fail "demo exited"; }
    sleep 0.1
done
grep -q "is healthy" /root/demo.out || { cat /root/demo.out /root/demo.err; fail "demo not healthy in 30 s"; }
member=$(grep -o 'pid [0-9]*' /root/demo.out | head -1 | cut -d' ' -f2)
[ -n "$member" ] || fail "no member pid in the demo's output"
exe=$(readlink /proc/$member/exe)
[ "$exe" = /usr/lib/zone-etcd/etcd ] || fail "the demo's member runs $exe, not /usr/lib/zone-etcd/etcd"
bundle=$(find /var/tmp/demo -name node.toml -path '*node1*' | head -1)
[ -n "$bundle" ] || fail "no node1 bundle in the demo"
zone-etcd status --config "$bundle" | tee /root/status.out
grep -q "quorum: yes (3 of 3 voters healthy" /root/status.out || fail "status does not show 3 healthy voters"
kill -INT $demo
wait $demo || fail "demo did not stop cleanly on Ctrl-C"

step man
MANWIDTH=100 man zone-etcd >/root/man.txt 2>/root/man.err || { cat /root/man.err; fail "man zone-etcd"; }
grep -q "zone-etcd-launch" /root/man.txt || fail "man zone-etcd does not list zone-etcd-launch: $(head -20 /root/man.txt)"
MANWIDTH=100 man zone-etcd-snapshot-save >/root/man-save.txt
grep -q -- "--keep" /root/man-save.txt || fail "man zone-etcd-snapshot-save lacks --keep"
help=$(zone-etcd snapshot save --help)
grep -q -- "--keep" <<<"$help" || fail "--help lacks --keep"

step completions
words=$(bash -c 'source /usr/share/bash-completion/completions/zone-etcd
    complete -p zone-etcd >/dev/null || exit 3
    COMP_WORDS=(zone-etcd snap); COMP_CWORD=1; COMP_LINE="zone-etcd snap"; COMP_POINT=14
    _zone__etcd zone-etcd snap zone-etcd
    printf "%s\n" "${COMPREPLY[@]}"')
[ "$words" = snapshot ] || fail "bash completes 'zone-etcd snap' to '$words', not 'snapshot'"
zone-etcd completions bash | cmp - /usr/share/bash-completion/completions/zone-etcd || fail "installed completions differ from zone-etcd completions bash"

step remove
dpkg -r zone-etcd
untouched remove
[ ! -e /usr/bin/zone-etcd ] || fail "zone-etcd left after remove"
step purge
dpkg -P zone-etcd
untouched purge

step fresh
rm -rf /etc/zone-etcd /var/lib/zone-etcd
dpkg -i /root/zone-etcd.deb
[ "$(stat -c %a /etc/zone-etcd)" = 700 ] || fail "/etc/zone-etcd is $(stat -c %a /etc/zone-etcd), not 700"
[ "$(stat -c %a /var/lib/zone-etcd)" = 700 ] || fail "/var/lib/zone-etcd is not 700"
echo "ALL PASSED"
"#;

#[test]
fn installed_package_runs_the_demo_renders_man_completes_in_bash_and_keeps_bundles() {
    let deb = sysroot::package();
    let out = sysroot::run(&deb, SCRIPT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("ALL PASSED"),
        "the package test failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    for step in [
        "install",
        "upgrade",
        "demo",
        "man",
        "completions",
        "remove",
        "purge",
        "fresh",
    ] {
        assert!(
            stdout.contains(&format!("== {step}")),
            "step {step} did not run:\n{stdout}"
        );
    }
}
