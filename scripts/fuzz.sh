#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of untrusted input: cargo-fuzz (libFuzzer) on stable
# Rust, without a sanitizer (the parsers are safe Rust: the failures worth finding are panics,
# overflows - debug assertions are on - hangs, runaway memory and broken invariants).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 s, every target)
#
# Installs what it needs (cargo-fuzz, a C++ compiler for libFuzzer) only when missing, builds
# the targets once, runs them one after the other, prints executions and crashes per target,
# and exits 1 if any target crashed, hung, ran out of memory or did not run.
# Each target starts from its committed seeds (fuzz/corpus/T, never written to) plus what
# earlier runs on this machine found (fuzz/target/fuzz-work/T/corpus). A crashing input is
# kept in fuzz/target/fuzz-work/T/artifacts and printed in base64.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-60}"
shift || true
case "$secs" in
  '' | *[!0-9]* | 0)
    echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
    ;;
esac
all_targets=(grammar_env http_reply plugin_reply plugin_spec names_opts local_opts ffi_json csi_files)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi

CARGO_FUZZ_VERSION=0.13.2
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
if ! command -v c++ >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq g++ >/dev/null
fi

cd fuzz
# `-s none`: AddressSanitizer needs the nightly-only `-Zsanitizer`; everything else cargo-fuzz
# does (coverage instrumentation, compare tracing, debug assertions) works on stable.
fuzz_flags=(-s none)
cargo fuzz build "${fuzz_flags[@]}"

failed=0
passed=0
rows=()
for t in "${targets[@]}"; do
  if [ ! -d "corpus/$t" ]; then
    echo "fuzz: unknown target $t (targets: ${all_targets[*]})" >&2
    exit 2
  fi
  work="target/fuzz-work/$t"
  mkdir -p "$work/corpus" "$work/artifacts"
  log="$work/last-run.log"
  stamp="$work/.started"
  touch "$stamp"
  echo "fuzz: $t for ${secs}s" >&2
  status=0
  started=$SECONDS
  cargo fuzz run "${fuzz_flags[@]}" "$t" "$work/corpus" "corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    -dict="dict/$t.dict" -artifact_prefix="$work/artifacts/" -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  took=$((SECONDS - started))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if [ -z "$execs" ]; then
    # A crash ends the run before the final stats; the last progress line has the count.
    execs=$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#')
  fi
  mapfile -t new < <(find "$work/artifacts" -maxdepth 1 -type f -newer "$stamp" \
    \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | sort)
  crashes=${#new[@]}
  verdict=ok
  if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ] || [ -z "$execs" ]; then
    verdict="FAILED (exit $status)"
    failed=$((failed + 1))
    echo "fuzz: $t failed; the end of its log ($log):" >&2
    grep -E -A4 'panicked at|ERROR: libFuzzer' "$log" | head -n 20 >&2 || tail -n 20 "$log" >&2
    for f in "${new[@]}"; do
      echo "fuzz: reproduce with: (cd fuzz && cargo fuzz run -s none $t $f)" >&2
      echo "fuzz: input (base64): $(base64 -w0 "$f")" >&2
    done
  else
    passed=$((passed + 1))
  fi
  rows+=("$(printf '%-14s %6ss %12s %8s  %s' "$t" "$took" "${execs:-?}" "$crashes" "$verdict")")
done

# ffi_json's harmless handle lives in a temp dir named after the fuzzer's pid.
rm -rf "${TMPDIR:-/tmp}"/dvdi-fuzz-ffi-*
printf '%-14s %7s %12s %8s  %s\n' target time executions crashes result
printf '%s\n' "${rows[@]}"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
