#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs, builds every binary, runs every
# test. Privileged tests need root; under CI=true a privileged test that would skip fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --workspace --all-targets
# The crash and I/O fault matrices are their own workspace (tests/crash): the only build with
# the library's fault points on. Nothing the root workspace builds may carry them.
crash=tests/crash/Cargo.toml
cargo build --manifest-path "$crash" --all-targets
for bin in target/debug/dvdcli target/debug/libdvdi_ffi.so; do
  if grep -qa DVDI_FAULT "$bin"; then
    echo "test.sh: $bin carries fault points (only tests/crash may turn them on)" >&2
    exit 1
  fi
done

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
status=0
cargo nextest run --workspace --no-fail-fast || status=$?
cargo nextest run --manifest-path "$crash" --no-fail-fast || status=$?
[ "$status" = 0 ] || exit "$status"
bash packaging/deb/test-deb.sh
