#!/usr/bin/env bash
# Builds the .deb, installs it with dpkg -i, checks its files and that the installed dvdcli
# runs, then removes it (purge) and checks nothing of it is left. Needs root.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$(id -u)" != 0 ]; then
  if [ "${CI:-}" = true ]; then echo "test-deb: needs root, and CI may not skip it" >&2; exit 1; fi
  echo "SKIP test-deb: needs root" >&2; exit 0
fi
if dpkg -s dvdi >/dev/null 2>&1; then
  echo "test-deb: a dvdi package is already installed; refusing to touch it" >&2
  exit 1
fi
deb=$(bash "$repo/packaging/deb/build-deb.sh")
echo "test-deb: built $deb"
[ "$(dpkg-deb --field "$deb" Package)" = dvdi ]  # (grep -q in a pipe under pipefail: SIGPIPE)
files=(/usr/bin/dvdcli /usr/lib/libdvdi_ffi.so /usr/include/dvdi.h /etc/mesos/dvdi-modules.json
       /usr/share/dvdi/mesos-module/dvdi_isolator.cpp /usr/share/dvdi/mesos-module/Makefile
       /usr/share/doc/dvdi/README.operators.md)
for f in "${files[@]}"; do
  if [ -e "$f" ]; then echo "test-deb: $f exists before install; refusing" >&2; exit 1; fi
done
dpkg -i "$deb"
fail=0
for f in "${files[@]}"; do
  [ -e "$f" ] || { echo "test-deb: missing after install: $f" >&2; fail=1; }
done
/usr/bin/dvdcli version | grep -q '^SemVer: ' || { echo "test-deb: dvdcli version failed" >&2; fail=1; }
nm -D --defined-only /usr/lib/libdvdi_ffi.so | grep -q ' T dvdi_isolator_prepare$' \
  || { echo "test-deb: libdvdi_ffi.so lacks dvdi_isolator_prepare" >&2; fail=1; }
python3 -c 'import json,sys; json.load(open("/etc/mesos/dvdi-modules.json"))' \
  || { echo "test-deb: manifest is not JSON" >&2; fail=1; }
dpkg --purge dvdi
for f in "${files[@]}"; do
  [ ! -e "$f" ] || { echo "test-deb: left after purge: $f" >&2; fail=1; }
done
dpkg -s dvdi >/dev/null 2>&1 && { echo "test-deb: still registered" >&2; fail=1; }
[ "$fail" = 0 ] && echo "test-deb: 1 passed, 0 failed"
exit "$fail"
