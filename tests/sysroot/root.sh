#!/bin/bash
# Inside the new namespaces (see enter.sh): an overlay over / whose writes go to a tmpfs
# (the machine's files are never written), with its own /dev, /proc, read-only /sys, its
# own cgroup tree, and fresh tmpfs on /tmp, /var/tmp, /run, /var/log, /etc/systemd/system
# (the machine's enabled units are not this machine's) and /work (the checkout is not
# visible: only what the package installs is). Every boot service that reaches outside
# the namespaces (tmpfiles, sysctl, modules, binfmt, clock, random seed, getty, ...) is
# masked at runtime; journald stays.
set -euo pipefail
base=$1 deb=$2 mode=$3
mount -t tmpfs -o mode=0755 zone-etcd-sysroot "$base"
mkdir "$base/upper" "$base/work" "$base/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$base/upper,workdir=$base/work" "$base/root"
root=$base/root
mount -t tmpfs -o mode=0755 dev "$root/dev"
for node in null zero full random urandom tty; do
    touch "$root/dev/$node"
    mount --bind "/dev/$node" "$root/dev/$node"
done
mkdir "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs -o mode=1777 shm "$root/dev/shm"
mount -t proc proc "$root/proc"
mount -t sysfs -o ro sysfs "$root/sys"
mount -t cgroup2 cgroup2 "$root/sys/fs/cgroup"
for dir in tmp var/tmp; do mount -t tmpfs -o mode=1777 tmp "$root/$dir"; done
for dir in run var/log etc/systemd/system work; do mount -t tmpfs -o mode=0755 private "$root/$dir"; done
mkdir -p "$root/run/systemd/system"
for unit in $(ls /lib/systemd/system/*.wants/ | grep -v ':$' | sort -u) \
    systemd-tmpfiles-setup.service systemd-tmpfiles-setup-dev.service \
    systemd-tmpfiles-setup-dev-early.service systemd-tmpfiles-clean.service \
    systemd-tmpfiles-clean.timer systemd-timesyncd.service systemd-networkd.service \
    systemd-resolved.service systemd-logind.service systemd-remount-fs.service \
    systemd-udevd.service systemd-udev-trigger.service getty.target console-getty.service \
    fstrim.timer e2scrub_all.timer e2scrub_reap.service apt-daily.timer \
    apt-daily-upgrade.timer man-db.timer dpkg-db-backup.timer; do
    case "$unit" in
    systemd-journald.service | systemd-journald.socket | systemd-journald-dev-log.socket) ;;
    *) ln -sf /dev/null "$root/run/systemd/system/$unit" ;;
    esac
done
# Debian's container images exclude man pages from packages; this root is a machine.
rm -f "$root/etc/dpkg/dpkg.cfg.d/excludes"
# man-db's dpkg trigger rebuilds the index of every man page on the machine at each
# install (3 s of CPU each, the suite's 16 installs 52 CPU-seconds); `man PAGE` finds a
# page without it (it searches the man directories when the index lacks the page).
rm -f "$root/var/lib/man-db/auto-update"
cp "$deb" "$root/root/zone-etcd.deb"
hostname zone-etcd-sysroot
ip link set lo up
# A directory of this machine shared with the machine inside, as a network share would be
# (ZONE_ETCD_SYSROOT_SHARE=HOST_DIR:PATH_INSIDE; tests/zone/quickstart.rs's backup target).
if [ -n "${ZONE_ETCD_SYSROOT_SHARE:-}" ]; then
    share_from=${ZONE_ETCD_SYSROOT_SHARE%%:*} share_to=${ZONE_ETCD_SYSROOT_SHARE#*:}
    mkdir -p "$root$share_to"
    mount --bind "$share_from" "$root$share_to"
fi
# Into the new root for good (pivot_root, not chroot: /proc shows clean paths inside).
[ "$mode" = run ] && cp "$4" "$root/root/test.sh"
cd "$root"
mkdir -p .old-root
pivot_root . .old-root
umount -l /.old-root
rmdir /.old-root
cd /
case "$mode" in
run)
    exec /bin/bash /root/test.sh
    ;;
boot)
    dpkg -i /root/zone-etcd.deb >/root/dpkg-install.log 2>&1 ||
        { cat /root/dpkg-install.log >&2; exit 1; }
    export container=zone-etcd-sysroot
    exec /lib/systemd/systemd --system --unit=basic.target
    ;;
esac
echo "root.sh: unknown mode $mode (fix: run SCRIPT or boot)" >&2
exit 2
