#!/usr/bin/env bash
# Builds the .deb, installs it with dpkg -i, checks its files and that the installed dvdcli
# and dvdi-csi run, then removes it (purge) and checks nothing of it is left. Needs root.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$(id -u)" != 0 ]; then
  if [ "${CI:-}" = true ]; then echo "test-deb: needs root, and CI may not skip it" >&2; exit 1; fi
  echo "SKIP test-deb: needs root" >&2; exit 0
fi
if dpkg -s dvdi >/dev/null 2>&1; then
  echo "test-deb: a dvdi package is already installed; refusing to touch it" >&2
  exit 1
fi
deb=$(bash "$repo/packaging/deb/build-deb.sh")
echo "test-deb: built $deb"
[ "$(dpkg-deb --field "$deb" Package)" = dvdi ]  # (grep -q in a pipe under pipefail: SIGPIPE)
files=(/usr/bin/dvdcli /usr/libexec/dvdi/dvdi-csi /usr/libexec/dvdi/dvdcli-csi /usr/lib/libdvdi_ffi.so /usr/include/dvdi.h
       /etc/mesos/dvdi-modules.json
       /usr/share/dvdi/mesos-module/dvdi_isolator.cpp /usr/share/dvdi/mesos-module/Makefile
       /usr/share/doc/dvdi/README.operators.md /usr/share/man/man1/dvdcli.1.gz
       /usr/share/bash-completion/completions/dvdcli /usr/share/zsh/vendor-completions/_dvdcli
       /usr/share/fish/vendor_completions.d/dvdcli.fish)
subcommands=(create remove mount unmount path get list version exec inspect recover)
for sub in "${subcommands[@]}"; do files+=("/usr/share/man/man1/dvdcli-$sub.1.gz"); done
for f in "${files[@]}"; do
  if [ -e "$f" ]; then echo "test-deb: $f exists before install; refusing" >&2; exit 1; fi
done
libexec_was_there=no; [ ! -e /usr/libexec/dvdi ] || libexec_was_there=yes
dpkg -i "$deb"
fail=0
for f in "${files[@]}"; do
  [ -e "$f" ] || { echo "test-deb: missing after install: $f" >&2; fail=1; }
done
/usr/bin/dvdcli version | grep -q '^SemVer: ' || { echo "test-deb: dvdcli version failed" >&2; fail=1; }
# The man page renders and names every subcommand; each has its own page with its flags.
page=$(LC_ALL=C MANWIDTH=200 man -l /usr/share/man/man1/dvdcli.1.gz 2>/dev/null) \
  || { echo "test-deb: man -l dvdcli.1.gz failed" >&2; fail=1; }
for sub in "${subcommands[@]}"; do
  case "$page" in *"dvdcli-$sub(1)"*) ;; *) echo "test-deb: dvdcli(1) lacks $sub" >&2; fail=1 ;; esac
done
mount_page=$(LC_ALL=C MANWIDTH=200 man -l /usr/share/man/man1/dvdcli-mount.1.gz 2>/dev/null) || mount_page=
case "$mount_page" in *--explicitcreate*) ;; *) echo "test-deb: dvdcli-mount(1) lacks --explicitcreate" >&2; fail=1 ;; esac
# The bash completion loads and completes subcommands and mount's flags.
words=$(bash -c 'source /usr/share/bash-completion/completions/dvdcli
  COMP_WORDS=(dvdcli mo); COMP_CWORD=1; _dvdcli dvdcli mo dvdcli; echo "${COMPREPLY[*]}"
  COMP_WORDS=(dvdcli mount --volume); COMP_CWORD=2; _dvdcli dvdcli --volume mount; echo "${COMPREPLY[*]}"') \
  || { echo "test-deb: the bash completion fails" >&2; fail=1; }
case "$words" in *mount*--volumedriver*) ;; *) echo "test-deb: bash completion gave: $words" >&2; fail=1 ;; esac
# dvdi-csi is where the library looks by default (csi_client), and answers a request it cannot
# read with a JSON reply whose result is an error (the library's only channel for it).
[ -x /usr/libexec/dvdi/dvdi-csi ] || { echo "test-deb: dvdi-csi is not executable" >&2; fail=1; }
reply=$(echo '{}' | /usr/libexec/dvdi/dvdi-csi) || { echo "test-deb: dvdi-csi failed" >&2; fail=1; }
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert "request format" in r["result"]["error"]["message"]' \
  "$reply" || { echo "test-deb: dvdi-csi answered {} with: $reply" >&2; fail=1; }
# /usr/bin/dvdcli has no CSI built in: on a host with a CSI plugin file it hands the command to
# dvdcli-csi, whose error (the plugin's socket is not there) only a CSI build can give; on a
# host without one it answers itself (no such Docker plugin).
csi_dir=$(mktemp -d)
echo '{"node_endpoint":"unix:///nonexistent/dvdi-test-deb.sock","root":"/nonexistent/dvdi-test-deb"}' \
  >"$csi_dir/debcsi.json"
out=$(DVDI_CSI_CONFIG_DIR=$csi_dir DVDI_TIMEOUT=1 DVDI_CHECKPOINT_DIR=$csi_dir/ckpt \
  /usr/bin/dvdcli mount --volumedriver=debcsi --volumename=v 2>&1) && fail=1
case "$out" in
  *'CSI plugin "debcsi" (unix:///nonexistent/dvdi-test-deb.sock)'*) ;;
  *) echo "test-deb: dvdcli did not hand the CSI host to dvdcli-csi: $out" >&2; fail=1 ;;
esac
rm "$csi_dir/debcsi.json"
out=$(DVDI_CSI_CONFIG_DIR=$csi_dir DVDI_PLUGIN_DIRS=$csi_dir DVDI_CHECKPOINT_DIR=$csi_dir/ckpt \
  /usr/bin/dvdcli mount --volumedriver=debcsi --volumename=v 2>&1) && fail=1
case "$out" in
  *'plugin "debcsi" not found'*) ;;
  *) echo "test-deb: dvdcli without CSI plugin files answered: $out" >&2; fail=1 ;;
esac
rm -rf "$csi_dir"
nm -D --defined-only /usr/lib/libdvdi_ffi.so | grep -q ' T dvdi_isolator_prepare$' \
  || { echo "test-deb: libdvdi_ffi.so lacks dvdi_isolator_prepare" >&2; fail=1; }
python3 -c 'import json,sys; json.load(open("/etc/mesos/dvdi-modules.json"))' \
  || { echo "test-deb: manifest is not JSON" >&2; fail=1; }
dpkg --purge dvdi
for f in "${files[@]}"; do
  [ ! -e "$f" ] || { echo "test-deb: left after purge: $f" >&2; fail=1; }
done
[ "$libexec_was_there" = yes ] || [ ! -e /usr/libexec/dvdi ] \
  || { echo "test-deb: left after purge: /usr/libexec/dvdi" >&2; fail=1; }
dpkg -s dvdi >/dev/null 2>&1 && { echo "test-deb: still registered" >&2; fail=1; }
[ "$fail" = 0 ] && echo "test-deb: 1 passed, 0 failed"
exit "$fail"
