#!/usr/bin/env bash
# Builds the release dvdcli linked statically (-C target-feature=+crt-static) and prints its
# path. A static dvdcli starts ~0.25 ms faster than a dynamically linked one (no loader, no
# libc/libgcc_s relocations): it runs once per mount and unmount of every Mesos task. The
# explicit --target keeps the flag off build scripts and proc-macros, which cannot be static;
# the binary lands in target/<host triple>/release/dvdcli. Used by packaging/deb/build-deb.sh
# and scripts/bench.sh; `cargo build --release -p dvdcli` still gives the dynamic one.
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
case "$host" in
  *-linux-gnu) ;;
  *) echo "build-dvdcli-static: $host is not a glibc target" >&2; exit 1 ;;
esac
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --quiet --release -p dvdcli --target "$host" >&2
echo "$PWD/target/$host/release/dvdcli"
