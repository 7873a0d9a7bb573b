#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs, builds every binary, runs every
# test. Privileged tests need root; under CI=true a privileged test that would skip fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --workspace --all-targets

# Tests that run a task start a private mount namespace (unshare + rslave /), as Mesos'
# launcher does. Where / is a private mount (some CI sandboxes; systemd hosts make it shared),
# such a namespace keeps a private copy of every other test's volume mounts until it exits, so
# a parallel test may see a loop device still busy. The tests' temp dirs therefore live under
# a shared bind mount: host unmounts then propagate into the tasks' slave namespaces, as they
# do on a systemd host. (packaging/README.md tells operators the same about volume roots.)
if [ "$(id -u)" = 0 ]; then
  base=$(mktemp -d /tmp/dvdi-tests.XXXXXX)
  mount --bind "$base" "$base"
  mount --make-rshared "$base"
  trap 'umount -l "$base" 2>/dev/null; rm -rf "$base"' EXIT
  export TMPDIR=$base
fi
cargo nextest run --workspace --no-fail-fast
bash packaging/deb/test-deb.sh
