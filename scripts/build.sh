#!/usr/bin/env bash
# Configures and builds DIR (default build/) with meson + ninja, after installing what is missing.
# Extra arguments go to 'meson setup' on the first configure.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
scripts/deps.sh
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" "$@" >/dev/null
fi
if ! out=$(ninja -C "$dir" 2>&1); then
  printf '%s\n' "$out" >&2
  exit 1
fi
