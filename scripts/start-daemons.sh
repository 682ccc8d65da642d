#!/bin/sh
# Start virtlogd and libvirtd when their sockets do not answer (no systemd here).
#
# Where /dev/kvm exists but KVM does not work, libvirt would re-probe QEMU on
# every call (a domain start then takes 25-50 s). So we probe KVM once by
# booting Debian's kernel under it; if the kernel prints nothing, /dev/kvm is
# masked by an unreadable file in libvirtd's private mount namespace and
# qemu.conf gains `namespaces = [ ]` there (see docs/architecture.md).
set -eu
KERNEL=${CORRAL_KERNEL_CACHE:-/var/cache/corral/kernel}/vmlinuz
RUN=/run/corral

ensure_virtlogd() {
    # libvirtd needs virtlogd for every domain start; a stale pid file or a
    # virtlogd that is still dying must not leave us without one.
    i=0
    until virt-admin -c virtlogd:///system version >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -gt 50 ] && { echo "start-daemons: virtlogd does not answer" >&2; exit 1; }
        if ! pgrep -x virtlogd >/dev/null 2>&1; then
            rm -f /run/virtlogd.pid
            virtlogd -d || true
        fi
        sleep 0.2
    done
}

# libvirt's LXC driver (containers, `lxc` hosts) rebuilds the host's cgroup
# mounts inside each container and fails where a cgroup2 hierarchy is mounted at
# /sys/fs/cgroup/unified beside the v1 controllers (the "hybrid" layout):
# "Unable to create directory /sys/fs/cgroup/unified". libvirtd therefore runs
# in a mount namespace of its own where that mount is hidden; QEMU guests use
# the v1 controllers either way, and nothing outside libvirtd sees a change.
HIDE_UNIFIED='if [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] &&
    [ "$(stat -f -c %T /sys/fs/cgroup)" != cgroup2fs ]; then umount -l /sys/fs/cgroup/unified; fi'

libvirtd_sees_unified() {
    pid=$(cat /run/libvirtd.pid 2>/dev/null || true)
    [ -n "$pid" ] && grep -q " /sys/fs/cgroup/unified " "/proc/$pid/mountinfo" 2>/dev/null
}

lxc_driver_missing() {
    # The driver is installed (make setup installs it) but libvirtd cannot serve it,
    # or sees the mount it fails on: it was started before the driver or another way.
    [ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_lxc.so ] || return 1
    ! virsh -c lxc:///system version >/dev/null 2>&1 || libvirtd_sees_unified
}

mkdir -p /var/log/libvirt /var/lib/libvirt/qemu /var/cache/libvirt "$RUN"
if virsh -c qemu:///system version >/dev/null 2>&1; then
    ensure_virtlogd
    if ! lxc_driver_missing; then
        echo "start-daemons: libvirtd already answers"
        exit 0
    fi
    echo "start-daemons: libvirtd answers but cannot run containers; restarting it (guests keep running)"
fi

kvm_works() {
    [ -c /dev/kvm ] || return 1
    [ -f "$KERNEL" ] || return 1
    out=$(timeout 15 qemu-system-x86_64 -accel kvm -m 128 -kernel "$KERNEL" \
        -append "console=ttyS0 panic=-1" -display none -serial stdio -no-reboot 2>&1 || true)
    echo "$out" | grep -q "Linux version"
}

ensure_virtlogd
pkill -x libvirtd 2>/dev/null && sleep 0.5 || true
rm -f /run/libvirtd.pid /var/run/libvirtd.pid

if [ "${CORRAL_FORCE_TCG:-}" = 1 ] || ! kvm_works; then
    echo "start-daemons: KVM unusable here; starting libvirtd with /dev/kvm masked (TCG)"
    unshare -m --propagation private sh -c "$HIDE_UNIFIED"'
        set -e
        : > /run/corral/nokvm && chmod 000 /run/corral/nokvm
        [ -e /dev/kvm ] && mount --bind /run/corral/nokvm /dev/kvm
        cp /etc/libvirt/qemu.conf /run/corral/qemu.conf
        echo "namespaces = [ ]" >> /run/corral/qemu.conf
        mount --bind /run/corral/qemu.conf /etc/libvirt/qemu.conf
        exec libvirtd -d'
else
    echo "start-daemons: KVM works; starting libvirtd"
    unshare -m --propagation private sh -c "$HIDE_UNIFIED"'
        exec libvirtd -d'
fi

i=0
until virsh -c qemu:///system version >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -gt 100 ] && { echo "start-daemons: libvirtd did not answer within 20 s" >&2; exit 1; }
    sleep 0.2
done
virsh -c qemu:///system capabilities >/dev/null
echo "start-daemons: libvirtd answers"
