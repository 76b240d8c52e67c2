#!/usr/bin/env bash
# Every C source follows the committed .clang-format (generated files excepted). TAP output.
set -uo pipefail
cd "${SOURCE_ROOT:?}"
command -v clang-format >/dev/null || { echo "1..0 # SKIP clang-format not installed"; exit 0; }
mapfile -t files < <(git ls-files 'src/*.[ch]' 'fuzz/*.[ch]' 'tests/*.[ch]' 2>/dev/null \
  | grep -v '^src/emu/compute_schema.c$')
if [ ${#files[@]} -eq 0 ]; then
  mapfile -t files < <(find src fuzz tests -name '*.[ch]' ! -path src/emu/compute_schema.c | sort)
fi
echo "1..${#files[@]}"
n=0 rc=0
for f in "${files[@]}"; do
  n=$((n + 1))
  if clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "ok $n - $f"
  else
    echo "not ok $n - $f (run: clang-format -i $f)"
    rc=1
  fi
done
exit $rc
