#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs, builds every binary, runs every
# test. Privileged tests need root; under CI=true a privileged test that would skip fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --workspace --all-targets
cargo nextest run --workspace --no-fail-fast
bash packaging/deb/test-deb.sh
