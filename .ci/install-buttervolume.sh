#!/usr/bin/env bash
# Installs buttervolume (a real third-party Docker volume plugin over BTRFS subvolumes) for the
# integration tests in tests/tests/buttervolume.rs, and prints the path of its executable.
#
# Idempotent: packages already present and a venv that already holds the pinned version are
# left alone. Environment:
#   DVDI_CI_VENV               where the venv lives (default /opt/dvdi-ci/venv)
#   DVDI_BUTTERVOLUME_VERSION  the PyPI version to pin (default 3.13)
# The tests find the executable through DVDI_BUTTERVOLUME (default
# /opt/dvdi-ci/venv/bin/buttervolume). Only the executable's path goes to stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${DVDI_CI_VENV:-/opt/dvdi-ci/venv}"
version="${DVDI_BUTTERVOLUME_VERSION:-3.13}"

say() { printf 'install-buttervolume: %s\n' "$*" >&2; }

# btrfs-progs: mkfs.btrfs for the test image, and the `btrfs` tool buttervolume shells out to.
# e2fsprogs: chattr, which buttervolume runs for copyonwrite=false / compression.
# util-linux and mount: losetup, mount, umount for the loop-mounted image.
# python3-venv: the venv that holds buttervolume and its pinned dependencies.
packages=(btrfs-progs e2fsprogs util-linux mount python3 python3-venv)
missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# Debian's own python3 (not whatever python3 comes first in PATH): python3-venv belongs to it.
python=/usr/bin/python3
installed=""
if [[ -x "$venv/bin/python" ]]; then
    installed="$("$venv/bin/python" -m pip show buttervolume 2>/dev/null \
        | sed -n 's/^Version: //p' || true)"
fi
if [[ "$installed" != "$version" ]]; then
    say "creating $venv with buttervolume==$version"
    "$python" -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --constraint "$here/buttervolume-constraints.txt" "buttervolume==$version" >&2
fi

exe="$venv/bin/buttervolume"
# Not `buttervolume --version`: importing buttervolume.plugin runs `docker plugin inspect`
# through a shell when its socket is absent; reading the metadata touches nothing.
got="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("buttervolume"))')"
if [[ "$got" != "$version" || ! -x "$exe" ]]; then
    say "$exe: expected buttervolume $version, found ${got:-nothing}"
    exit 1
fi
# The kernel must know btrfs (built in or as a module) for the test image to mount.
if ! grep -qw btrfs /proc/filesystems; then
    modprobe btrfs 2>/dev/null || say "warning: this kernel has no btrfs; the buttervolume tests will fail"
fi
printf '%s\n' "$exe"
