#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#   1. gcc build (-Wall -Wextra -Werror): unit, integration, conformance and netns tests;
#   2. clang build with AddressSanitizer + UndefinedBehaviorSanitizer and the libFuzzer
#      harnesses: the same tests again, plus a short run of every fuzz harness on its corpus.
# Ends with one line: "N passed, N failed, N skipped" (individual TAP cases, both builds).
# Usage: scripts/test.sh [--quick]   (--quick: the gcc build only)
set -uo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

scripts/deps.sh || { echo "0 passed, 1 failed"; exit 1; }

status=0
logs=()

run_build() { # name dir setup-args...
  local name=$1 dir=$2; shift 2
  # Registered first: a build that fails leaves no test log, which tally.py counts as a failure.
  logs+=("$name=$dir/meson-logs/testlog.json")
  rm -f "$dir/meson-logs/testlog.json"
  echo "== $name: configure and build ($dir)" >&2
  mkdir -p "$dir"
  if [ ! -f "$dir/build.ninja" ]; then
    if ! meson setup "$dir" "$@" >"$dir/setup.log" 2>&1; then
      cat "$dir/setup.log" >&2; status=1; return 1
    fi
  fi
  if ! ninja -C "$dir" >"$dir/ninja.log" 2>&1; then
    cat "$dir/ninja.log" >&2; status=1; return 1
  fi
  echo "== $name: test" >&2
  # Each test binary gets a 10-minute ceiling; benchmarks are not part of the suite.
  meson test -C "$dir" --print-errorlogs --num-processes 2 --timeout-multiplier 1 \
    ${test_args:-} >&2 || status=1
}

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0

run_build gcc build -Dbuildtype=debugoptimized -Dwerror=true
if [ $quick -eq 0 ]; then
  # The style check reads sources, not binaries: once is enough.
  test_args="--no-suite style" CC=clang run_build asan+ubsan build-san -Dbuildtype=debug -Dwerror=true \
    -Db_sanitize=address,undefined -Db_lundef=false -Dfuzz=true
fi

python3 scripts/tally.py "${logs[@]}"
tally=$?
[ $status -eq 0 ] && [ $tally -eq 0 ]
