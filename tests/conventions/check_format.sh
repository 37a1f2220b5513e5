#!/usr/bin/env bash
# The project's own C++ sources are formatted by clang-format (.clang-format):
# every file git tracks as *.cpp or *.h, so generated code (in the build
# folder) and other projects' code (never committed) are left out.
#   check_format.sh SOURCE_DIR
# Exit 0 when all are formatted; 1 with the list of files that are not (fix:
# clang-format -i FILE...); 77, which CTest reports as skipped, when there is
# no clang-format or no git checkout to list the files from.
set -euo pipefail
src="${1:?usage: check_format.sh SOURCE_DIR}"
clang_format="${CLANG_FORMAT:-clang-format}"
if ! command -v "$clang_format" >/dev/null; then
  echo "check_format: skipped, no $clang_format (scripts/install-deps installs it)"
  exit 77
fi
if ! git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "check_format: skipped, $src is not a git checkout"
  exit 77
fi

cd "$src"
mapfile -t files < <(git ls-files -- '*.cpp' '*.h')
existing=()
for f in "${files[@]}"; do
  # (A file deleted but not yet staged is listed yet absent.)
  [ -f "$f" ] && existing+=("$f")
done
# One clang-format for all files (one per file takes half a minute); each
# violation is reported as FILE:LINE:COL: error: ...
status=0
report=$("$clang_format" --dry-run --Werror "${existing[@]}" 2>&1) || status=$?
mapfile -t unformatted < <(sed -nE 's/^(.+):[0-9]+:[0-9]+: (error|warning): .*/\1/p' <<<"$report" | sort -u)
if [ "$status" != 0 ] && [ "${#unformatted[@]}" = 0 ]; then
  echo "check_format: $clang_format failed:"
  echo "$report"
  exit 1
fi
if [ "${#unformatted[@]}" -gt 0 ]; then
  echo "check_format: ${#unformatted[@]} of ${#files[@]} files are not clang-formatted" \
    "(clang-format -i FILE...):"
  printf '  %s\n' "${unformatted[@]}"
  exit 1
fi
echo "check_format: ok (${#files[@]} files, $("$clang_format" --version))"
