#!/usr/bin/env bash
# Installs what the tests and the demo need on a bare Debian machine (run as root). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for tool in mkfs.ext4:e2fsprogs mkfs.xfs:xfsprogs mkfs.btrfs:btrfs-progs losetup:mount \
            unshare:util-linux python3:python3 pkg-config:pkg-config nm:binutils cc:gcc c++:g++ \
            dpkg-deb:dpkg man:man-db; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need_apt+=("${tool#*:}")
done
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
# The benchmark links a trivial program with `cc -static` (its reference process start).
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
[ -f "/usr/lib/$(uname -m)-linux-gnu/libc.a" ] || need_apt+=(libc6-dev)
if [ "${#need_apt[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi

if [ -f .ci/install-buttervolume.sh ]; then
  bash .ci/install-buttervolume.sh >/dev/null
fi
