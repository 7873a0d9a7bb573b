#!/usr/bin/env bash
# Builds the release dvdcli linked statically (-C target-feature=+crt-static) and prints its
# path. A static dvdcli starts ~0.25 ms faster than a dynamically linked one (no loader, no
# libc/libgcc_s relocations): it runs once per mount and unmount of every Mesos task.
# It is also not position-independent (-C relocation-model=static), as Go's dvdcli was: a
# static PIE relocates itself at every start, writing ~3,400 pointers across 12 pages that
# each cost a copy-on-write page fault (dvdcli mount: 49 page faults instead of 58, ~7 % of
# the paired benchmark row). The price is a fixed load address for its code (heap, stack and
# mappings stay randomized); RUSTFLAGS="-C relocation-model=pie" puts PIE back. The
# explicit --target keeps the flag off build scripts and proc-macros, which cannot be static;
# the binary lands in target/<host triple>/release/dvdcli. Used by packaging/deb/build-deb.sh
# and scripts/bench.sh; `cargo build --release -p dvdcli` still gives the dynamic one.
# Its build script's man pages and shell completions are copied beside it, to
# target/<host triple>/release/dvdcli-assets/{man,completions}/ (build-deb.sh ships them).
#
# `--csi` builds `dvdcli-csi` instead: the same program with CSI drivers built in (the
# library's `csi` feature), which a `dvdcli` without them hands CSI hosts to
# (dvdcli/src/csi_handoff.rs); printed path target/<host triple>/release/dvdcli-csi.
set -euo pipefail
cd "$(dirname "$0")/.."
features=()
if [ "${1:-}" = --csi ]; then features=(--features csi); fi
host=$(rustc -vV | sed -n 's/^host: //p')
case "$host" in
  *-linux-gnu) ;;
  *) echo "build-dvdcli-static: $host is not a glibc target" >&2; exit 1 ;;
esac
messages=$(mktemp)
trap 'rm -f "$messages"' EXIT
RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static ${RUSTFLAGS:-}" \
  cargo build --quiet --release -p dvdcli "${features[@]}" --target "$host" \
  --message-format=json-render-diagnostics >"$messages"
# Cargo reports the build script's OUT_DIR (also when nothing was rebuilt).
out_dir=$(grep '"reason":"build-script-executed"' "$messages" | grep '/dvdcli#' \
  | sed -n 's/.*"out_dir":"\([^"]*\)".*/\1/p' | tail -n 1)
if [ -z "$out_dir" ] || [ ! -f "$out_dir/man/dvdcli.1" ]; then
  echo "build-dvdcli-static: no man pages from dvdcli's build script" >&2
  exit 1
fi
assets=$PWD/target/$host/release/dvdcli-assets
rm -rf "$assets"
mkdir -p "$assets"
cp -r "$out_dir/man" "$out_dir/completions" "$assets/"
if [ "${#features[@]}" -gt 0 ]; then
  cp "target/$host/release/dvdcli" "target/$host/release/dvdcli-csi"
  echo "$PWD/target/$host/release/dvdcli-csi"
else
  echo "$PWD/target/$host/release/dvdcli"
fi
