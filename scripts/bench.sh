#!/usr/bin/env bash
# Runs the benchmarks in release mode and prints their table (see BENCHMARKS.md). `--quick`
# (CI) only proves they still run; real figures come from a full run. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release -p dvdcli
cargo build --quiet --release -p dvdi-ffi
cargo build --quiet --release -p dvdi-tests --bin dvdi-bench
./target/release/dvdi-bench "$@"
