#!/usr/bin/env bash
# Run spicecross's set-up, tests and quick main job on Debian 13 (ngspice 44,
# Python 3.13) from a Debian 12 machine: debootstrap a Debian 13 system into a
# folder, clone this repository into it, and run the README's commands there.
# Needs root, debootstrap, and network access to Debian's mirror and PyPI.
# The Debian 13 system keeps about 7 GB (torch for Python 3.13 is PyPI's CUDA
# build, which runs on the CPU).
#
# Usage: sudo bash scripts/check-debian13.sh [FOLDER]   (default /srv/spicecross-trixie)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
root=${1:-/srv/spicecross-trixie}
mirror=http://deb.debian.org/debian

if [ "$(id -u)" -ne 0 ]; then
    echo "check-debian13.sh: needs root (debootstrap, chroot and mounts); run it with sudo" >&2
    exit 1
fi
command -v debootstrap >/dev/null 2>&1 || apt-get install -y -q debootstrap >/dev/null

if [ ! -x "$root/usr/bin/ngspice" ]; then
    echo "[debian13] debootstrap trixie into $root"
    debootstrap --variant=minbase \
        --include=ngspice,libngspice0,python3,python3-venv,python3-pip,git,ca-certificates,sudo \
        trixie "$root" "$mirror" >/dev/null
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"

mounted=()
cleanup() {
    # Unmount in reverse order, so that dev/shm goes before dev.
    for ((k = ${#mounted[@]} - 1; k >= 0; k--)); do umount "${mounted[k]}" || true; done
}
trap cleanup EXIT
mount -t proc proc "$root/proc" && mounted+=("$root/proc")
mount --bind /sys "$root/sys" && mounted+=("$root/sys")
mount --bind /dev "$root/dev" && mounted+=("$root/dev")
mount --bind /dev/shm "$root/dev/shm" && mounted+=("$root/dev/shm")

rm -rf "$root/root/spicecross"
git clone -q "$repo" "$root/root/spicecross"
chroot "$root" bash -c '
    set -e
    cd /root/spicecross
    echo "[debian13] Debian $(cat /etc/debian_version), $(ngspice -v 2>&1 | grep -o "ngspice-[0-9.]*" | head -1), $(python3 --version)"
    bash scripts/test.sh -q -p no:cacheprovider
    .venv/bin/spicecross run --quick --output /tmp/spicecross-quick --no-progress
'
echo "[debian13] set-up, tests and quick main job passed on Debian 13"
