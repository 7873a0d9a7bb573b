#!/usr/bin/env bash
# Builds the dvdi .deb with dpkg-deb: dvdcli, the C-ABI library, its header, the Mesos module's
# source and build script (the module is compiled per Mesos version on the target), an example
# agent manifest and the operator docs. Prints the path of the package.
#   usage: packaging/deb/build-deb.sh [OUTDIR]      (default: target/deb)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$repo/target/deb}
cd "$repo"

cargo build --quiet --release -p dvdi-ffi >&2
# dvdcli linked statically: it starts faster, and it runs once per task mount and unmount.
dvdcli=$(bash scripts/build-dvdcli-static.sh)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/dvdi_${version}_${arch}

install -D -m 0755 "$dvdcli" "$root/usr/bin/dvdcli"
install -D -m 0644 target/release/libdvdi_ffi.so "$root/usr/lib/libdvdi_ffi.so"
install -D -m 0644 ffi/include/dvdi.h "$root/usr/include/dvdi.h"
for f in dvdi_isolator.cpp dvdi_isolator.hpp Makefile BUILDING.md; do
  install -D -m 0644 "packaging/mesos-module/$f" "$root/usr/share/dvdi/mesos-module/$f"
done
install -D -m 0755 packaging/mesos-module/build-against-mesos-source.sh \
  "$root/usr/share/dvdi/mesos-module/build-against-mesos-source.sh"
install -D -m 0644 packaging/mesos-module/dvdi-modules.json "$root/etc/mesos/dvdi-modules.json"
install -D -m 0644 packaging/README.md "$root/usr/share/doc/dvdi/README.operators.md"
install -D -m 0644 README.md "$root/usr/share/doc/dvdi/README.md"
printf 'dvdi-rs %s\nLicense: Apache-2.0\n' "$version" > "$stage/copyright"
install -D -m 0644 "$stage/copyright" "$root/usr/share/doc/dvdi/copyright"

mkdir -p "$root/DEBIAN"
size=$(du -sk "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: dvdi
Version: $version
Architecture: $arch
Maintainer: dvdi-rs developers <dvdi-rs@invalid>
Installed-Size: $size
Section: admin
Priority: optional
Depends: libc6, util-linux, e2fsprogs
Recommends: xfsprogs, btrfs-progs
Description: external volumes for Apache Mesos (dvdcli and the DVDI isolator)
 A drop-in dvdcli (Docker volume plugin client) and the library behind the
 com_emccode_mesos_DockerVolumeDriverIsolator Mesos module, with an embedded
 local driver. The module itself is built per Mesos version from
 /usr/share/dvdi/mesos-module.
CONTROL
echo /etc/mesos/dvdi-modules.json > "$root/DEBIAN/conffiles"
cat > "$root/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ] && command -v ldconfig >/dev/null; then ldconfig; fi
POSTINST
cat > "$root/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ "$1" = remove ] && command -v ldconfig >/dev/null; then ldconfig; fi
POSTRM
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/postrm"

mkdir -p "$out"
dpkg-deb --root-owner-group --build "$root" "$out/dvdi_${version}_${arch}.deb" >&2
echo "$out/dvdi_${version}_${arch}.deb"
