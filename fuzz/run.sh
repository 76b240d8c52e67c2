#!/usr/bin/env bash
# fuzz/run.sh EXE SEED_CORPUS WORK_CORPUS [seconds]: a time-boxed libFuzzer run.
# New inputs land in WORK_CORPUS (build dir); the seeds in the source tree are only read.
set -euo pipefail
exe=$1 seeds=$2 work=$3 secs=${4:-${FUZZ_SECONDS:-15}}
mkdir -p "$work" "$work.artifacts"
# -error_exitcode: libFuzzer's default, 77, is what meson reads as "skipped".
exec "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
  -error_exitcode=1 -timeout_exitcode=1 \
  -artifact_prefix="$work.artifacts/" "$work" "$seeds"
