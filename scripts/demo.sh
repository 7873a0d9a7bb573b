#!/usr/bin/env bash
# The main job end to end on the embedded `local` driver (root needed: real loop device + mount).
# A block volume is created, mounted, written, unmounted, mounted again by a second dvdcli
# process and read back; at the end nothing is left mounted or attached.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --quiet --release -p dvdcli
dvdcli=$PWD/target/release/dvdcli

work=$(mktemp -d /tmp/dvdi-demo.XXXXXX)
export DVDI_LOCAL_ROOT=$work/volumes
trap 'rm -rf "$work"' EXIT
vol=(--volumedriver=local --volumename=es-node-1-data)

echo "== dvdcli mount creates a 64 MiB ext4 block volume and prints its host path"
path=$("$dvdcli" mount "${vol[@]}" --volumeopts=size=64M)
echo "mounted at: $path"
echo "written by run 1 at $(date -u +%FT%TZ)" > "$path/hello.txt"
"$dvdcli" unmount "${vol[@]}"
echo "== after unmount, mounts under the volume root: $(grep -c "$work" /proc/self/mountinfo || true)"

echo "== a second dvdcli process mounts it again and reads what the first wrote"
path=$("$dvdcli" mount "${vol[@]}" --explicitcreate)
cat "$path/hello.txt"
"$dvdcli" unmount "${vol[@]}"
"$dvdcli" remove "${vol[@]}"

left=$(grep -c "$work" /proc/self/mountinfo || true)
loops=$( (grep -l "$work" /sys/block/loop*/loop/backing_file 2>/dev/null || true) | wc -l)
echo "== left behind: $left mount(s), $loops loop device(s)"
[ "$left" = 0 ] && [ "$loops" = 0 ]
