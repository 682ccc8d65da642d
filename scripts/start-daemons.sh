#!/bin/sh
# Start virtlogd and libvirtd when their sockets do not answer (no systemd here).
#
# Where /dev/kvm exists but KVM does not work, libvirt would re-probe QEMU on
# every call (a domain start then takes 25-50 s). So we probe KVM once by
# booting Debian's kernel under it; if the kernel prints nothing, libvirtd is
# started in a private mount namespace where /dev/kvm is masked by an
# unreadable file and qemu.conf gains `namespaces = [ ]` (see docs/architecture.md).
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

mkdir -p /var/log/libvirt /var/lib/libvirt/qemu /var/cache/libvirt "$RUN"
if virsh -c qemu:///system version >/dev/null 2>&1; then
    ensure_virtlogd
    echo "start-daemons: libvirtd already answers"
    exit 0
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
    unshare -m --propagation private sh -c '
        set -e
        : > /run/corral/nokvm && chmod 000 /run/corral/nokvm
        [ -e /dev/kvm ] && mount --bind /run/corral/nokvm /dev/kvm
        cp /etc/libvirt/qemu.conf /run/corral/qemu.conf
        echo "namespaces = [ ]" >> /run/corral/qemu.conf
        mount --bind /run/corral/qemu.conf /etc/libvirt/qemu.conf
        exec libvirtd -d'
else
    echo "start-daemons: KVM works; starting libvirtd plainly"
    libvirtd -d
fi

i=0
until virsh -c qemu:///system version >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -gt 100 ] && { echo "start-daemons: libvirtd did not answer within 20 s" >&2; exit 1; }
    sleep 0.2
done
virsh -c qemu:///system capabilities >/dev/null
echo "start-daemons: libvirtd answers"
