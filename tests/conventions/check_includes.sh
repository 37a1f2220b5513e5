#!/usr/bin/env bash
# Dependencies point one way (DESIGN.md): nothing below the kernel includes a
# kernel header, the SDK, the shell and the plugins never see the store, and
# the store never sees the protocol. CMake already keeps each target to the
# include folders of what it links (cmake/headers.cmake); this reads the
# sources themselves, so an offence is named even where the build would not
# catch it (a header no target compiles yet, a path spelled with ../).
#   check_includes.sh SOURCE_DIR
# Exit 0 when clean, 1 with FILE:LINE: lines for each offence.
set -euo pipefail
src="${1:?usage: check_includes.sh SOURCE_DIR}"
cd "$src"

# Which parts each part must not include.
declare -A forbidden=(
  [memcube]="kernel ipc"
  [ipc]="kernel"
  [sdk]="kernel memcube"
  [shell]="kernel memcube"
  [plugins]="kernel memcube"
)
parts="kernel memcube ipc sdk shell plugins policies tests"
# Folders searched for an include besides the including file's own (the
# public headers are included as "memos/x.h" and belong to the part whose
# include/ holds them).
search_roots=(. ipc/include sdk/include plugins/include)

# The part a path (relative to the source root) belongs to: its first folder.
part_of() { printf '%s\n' "${1%%/*}"; }

# The part an include names, or nothing for a header of another project.
included_part() {
  local file="$1" path="$2" dir candidate root
  dir=$(dirname "$file")
  # Quoted includes are looked up beside the including file first.
  if [ -e "$dir/$path" ]; then
    candidate=$(realpath -m --relative-to=. "$dir/$path")
    part_of "$candidate"
    return
  fi
  for root in "${search_roots[@]}"; do
    if [ -e "$root/$path" ]; then
      candidate=$(realpath -m --relative-to=. "$root/$path")
      part_of "$candidate"
      return
    fi
  done
  # Not in the tree: a generated header ("ipc/schema/memos.capnp.h") still
  # names its part first; anything else is another project's.
  local first="${path%%/*}"
  if [ "$first" != "$path" ] && [[ " $parts " == *" $first "* ]]; then
    printf '%s\n' "$first"
  fi
}

offences=0
for from in "${!forbidden[@]}"; do
  [ -d "$from" ] || continue
  while IFS= read -r -d '' file; do
    while IFS=: read -r line text; do
      path=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]+)[>"].*/\1/' <<<"$text")
      to=$(included_part "$file" "$path")
      [ -n "$to" ] || continue
      for bad in ${forbidden[$from]}; do
        if [ "$to" = "$bad" ]; then
          echo "$file:$line: $from/ must not include $bad/ headers: #include \"$path\""
          offences=$((offences + 1))
        fi
      done
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' "$file" || true)
  done < <(find "$from" -type f \( -name '*.h' -o -name '*.hpp' -o -name '*.cpp' -o -name '*.cc' -o -name '*.c' \) -print0 | sort -z)
done

if [ "$offences" -gt 0 ]; then
  echo "check_includes: $offences include(s) against the dependency direction (DESIGN.md, \"Layout\")" >&2
  exit 1
fi
echo "check_includes: ok"
