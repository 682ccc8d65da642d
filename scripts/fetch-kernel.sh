#!/bin/sh
# Fetch Debian's kernel image package and unpack it into a cache, once.
# Both the KVM probe and the tiny template use this kernel and its modules.
set -eu
CACHE=${CORRAL_KERNEL_CACHE:-/var/cache/corral/kernel}
[ -f "$CACHE/ready" ] && exit 0
mkdir -p "$CACHE/debs"
cd "$CACHE/debs"
dep=$(apt-cache depends linux-image-amd64 | sed -n 's/ *Depends: \(linux-image-[0-9].*\)/\1/p' | head -n1)
[ -n "$dep" ] || { echo "fetch-kernel: cannot resolve the kernel package behind linux-image-amd64" >&2; exit 1; }
chown _apt "$CACHE/debs" 2>/dev/null || true
apt-get download -q "$dep" >/dev/null
rm -rf "$CACHE/root" && mkdir -p "$CACHE/root"
dpkg-deb -x "$CACHE"/debs/"$dep"_*.deb "$CACHE/root"
ln -sf "$(ls "$CACHE"/root/boot/vmlinuz-* | head -n1)" "$CACHE/vmlinuz"
basename "$(ls -d "$CACHE"/root/lib/modules/* | head -n1)" > "$CACHE/kernel-release"
touch "$CACHE/ready"
echo "fetch-kernel: $(cat "$CACHE/kernel-release") in $CACHE"
