#!/usr/bin/env bash
# The main job end to end on the embedded `local` driver (root needed: real loop devices and
# mounts). A bare-JAR Elasticsearch node as its Mesos framework runs it: a config volume at an
# absolute container path and a data volume under the sandbox, both named by DVDI_VOLUME_*
# variables. `dvdcli exec` prepares them exactly as the agent's isolator would, runs the node in
# a private mount namespace, and releases them when it exits. The first run writes, the second
# (a replacement node) reads; at the end nothing is mounted and no loop device is attached.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --quiet --release -p dvdcli
dvdcli=$PWD/target/release/dvdcli

work=$(mktemp -d /tmp/dvdi-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
export DVDI_LOCAL_ROOT=$work/volumes DVDI_CHECKPOINT_DIR=$work/checkpoint
mkdir -p "$work/sandbox"
cd "$work/sandbox"

# What Marathon would put in the task's environment.
export DVDI_VOLUME_NAME=esnode1config DVDI_VOLUME_DRIVER=local \
       DVDI_VOLUME_OPTS=size=32M DVDI_VOLUME_CONTAINERPATH=$work/es/config
export DVDI_VOLUME_NAME1=esnode1data DVDI_VOLUME_DRIVER1=local \
       DVDI_VOLUME_OPTS1=size=64M,fstype=ext4 DVDI_VOLUME_CONTAINERPATH1=data

echo "== run 1: the node starts on fresh volumes and writes to both"
"$dvdcli" exec -- sh -c '
  grep -E " (/[^ ]*/es/config|/[^ ]*/sandbox/data) .* - ext4 " /proc/self/mountinfo | cut -d" " -f5
  echo "cluster.name: demo" > "$DVDI_VOLUME_CONTAINERPATH/elasticsearch.yml"
  echo "doc 1 indexed at $(date -u +%FT%TZ)" > data/index.log'
echo "== between runs: mounts under $work: $(grep -c "$work" /proc/self/mountinfo || true)"

echo "== run 2: a replacement node gets the same volumes and reads what run 1 wrote"
"$dvdcli" exec -- sh -c 'cat "$DVDI_VOLUME_CONTAINERPATH/elasticsearch.yml" data/index.log'

"$dvdcli" inspect
left=$(grep -c "$work" /proc/self/mountinfo || true)
loops=$( (grep -l "$work" /sys/block/loop*/loop/backing_file 2>/dev/null || true) | wc -l)
echo "== left behind: $left mount(s), $loops loop device(s)"
[ "$left" = 0 ] && [ "$loops" = 0 ]
