#!/usr/bin/env bash
# Runs the benchmarks in release mode and prints their table (see BENCHMARKS.md). `--quick`
# (CI) only proves they still run; real figures come from a full run. Needs root. dvdcli is
# measured as it ships in the .deb: linked statically (scripts/build-dvdcli-static.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
dvdcli=$(bash scripts/build-dvdcli-static.sh)
cargo build --quiet --release -p dvdi-ffi
# The CSI rows: the dvdi-csi program as it ships, and the CSI test plugin it talks to.
cargo build --quiet --release -p dvdi-csi -p dvdi-csi-test-plugin
cargo build --quiet --release -p dvdi-tests --bin dvdi-bench
./target/release/dvdi-bench --dvdcli "$dvdcli" "$@"
