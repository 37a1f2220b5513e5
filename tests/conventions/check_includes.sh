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
  [memcube]="kernel ipc cluster"
  [cluster]="kernel ipc sdk shell plugins"
  [ipc]="kernel"
  [sdk]="kernel memcube"
  [shell]="kernel memcube"
  [plugins]="kernel memcube"
  [policies]="kernel memcube ipc sdk shell plugins"
)
parts="kernel memcube cluster ipc sdk shell plugins policies tests"
# Folders searched for an include besides the including file's own (the
# public headers are included as "memos/x.h" and belong to the part whose
# include/ holds them).
search_roots=(. ipc/include sdk/include plugins/include)

# (Pure bash below, no command per include: the tree has hundreds.)

# normalize PATH: PATH without "." and ".." components, in $normalized.
normalize() {
  local -a out=()
  local piece
  IFS=/ read -ra pieces <<<"$1"
  for piece in "${pieces[@]}"; do
    case "$piece" in
      "" | .) ;;
      ..) [ "${#out[@]}" -gt 0 ] && unset 'out[${#out[@]}-1]' ;;
      *) out+=("$piece") ;;
    esac
  done
  normalized=$(IFS=/; printf '%s' "${out[*]}")
}

# included_part FILE PATH: the part (first folder of the source tree) the
# include names, in $part; empty for a header of another project.
included_part() {
  local file="$1" path="$2" root first
  part=""
  # Quoted includes are looked up beside the including file first.
  if [ -e "${file%/*}/$path" ]; then
    normalize "${file%/*}/$path"
    part="${normalized%%/*}"
    return
  fi
  for root in "${search_roots[@]}"; do
    if [ -e "$root/$path" ]; then
      normalize "$root/$path"
      part="${normalized%%/*}"
      return
    fi
  done
  # Not in the tree: a generated header ("ipc/schema/memos.capnp.h") still
  # names its part first; anything else is another project's.
  first="${path%%/*}"
  if [ "$first" != "$path" ] && [[ " $parts " == *" $first "* ]]; then
    part="$first"
  fi
}

include_re='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]+)[>"]'
offences=0
for from in "${!forbidden[@]}"; do
  [ -d "$from" ] || continue
  # FILE:LINE:TEXT for every include line of the part's C and C++ files.
  while IFS= read -r hit; do
    file="${hit%%:*}"
    rest="${hit#*:}"
    line="${rest%%:*}"
    text="${rest#*:}"
    [[ "$text" =~ $include_re ]] || continue
    path="${BASH_REMATCH[1]}"
    included_part "$file" "$path"
    [ -n "$part" ] || continue
    for bad in ${forbidden[$from]}; do
      if [ "$part" = "$bad" ]; then
        echo "$file:$line: $from/ must not include $bad/ headers: #include \"$path\""
        offences=$((offences + 1))
      fi
    done
  done < <(grep -rnE --include='*.h' --include='*.hpp' --include='*.cpp' --include='*.cc' \
             --include='*.c' '^[[:space:]]*#[[:space:]]*include' "$from" | sort -t: -k1,1 -k2,2n)
done

if [ "$offences" -gt 0 ]; then
  echo "check_includes: $offences include(s) against the dependency direction (DESIGN.md, \"Layout\")" >&2
  exit 1
fi
echo "check_includes: ok"
