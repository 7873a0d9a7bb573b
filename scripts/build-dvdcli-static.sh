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
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
case "$host" in
  *-linux-gnu) ;;
  *) echo "build-dvdcli-static: $host is not a glibc target" >&2; exit 1 ;;
esac
messages=$(mktemp)
trap 'rm -f "$messages"' EXIT
# opt-level "s" (issue 13): with CSI in the library the binary's text grew by 190 KB, and a
# `dvdcli mount` faulted in nine more 64 KiB windows of it (fault-around), which took the
# mount + unmount row from 1.38x to 1.60x; built for size it reads 1.43x (BENCHMARKS.md).
# dvdcli waits on a plugin and the kernel: its own instructions are not what it spends.
CARGO_PROFILE_RELEASE_OPT_LEVEL=${CARGO_PROFILE_RELEASE_OPT_LEVEL:-s} \
RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static ${RUSTFLAGS:-}" \
  cargo build --quiet --release -p dvdcli --target "$host" \
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
echo "$PWD/target/$host/release/dvdcli"
