#!/usr/bin/env bash
# memctl's shell completion (shell/completion/) against memctl itself: every
# command and every option its --help lists must be offered by both the bash
# and the zsh completion, so the scripts cannot fall behind the command
# table; and the bash completion completes what a user types.
#   completion_test.sh MEMCTL SOURCE_DIR
set -euo pipefail
memctl="${1:?usage: completion_test.sh MEMCTL SOURCE_DIR}"
src="${2:?usage: completion_test.sh MEMCTL SOURCE_DIR}"
bash_file="$src/shell/completion/memctl.bash"
zsh_file="$src/shell/completion/_memctl"
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# section HELP TITLE: the first word of each line of one section of --help.
section() {
  awk -v title="$2:" '$0 == title { on = 1; next } /^[^ ]/ { on = 0 } on && NF { print $1 }' <<<"$1"
}

# offered WORD: WORD appears as a whole word in both completion files.
offered() {
  local f
  for f in "$bash_file" "$zsh_file"; do
    grep -qwF -- "$1" "$f" || fail "'$1' (memctl $path --help) is not in ${f#"$src"/}"
  done
}

commands=()
for command in $(section "$("$memctl" --help)" Subcommands); do
  subs=$(section "$("$memctl" "$command" --help)" Subcommands)
  if [ -z "$subs" ]; then
    commands+=("$command")
  else
    for sub in $subs; do commands+=("$command $sub"); done
  fi
done
[ "${#commands[@]}" -ge 20 ] || fail "only ${#commands[@]} commands read from memctl --help"
for path in "" "${commands[@]}"; do
  # shellcheck disable=SC2086 # the path is words
  help=$("$memctl" $path --help)
  for word in $path; do offered "$word"; done
  for names in $(section "$help" Options); do
    IFS=, read -ra names <<<"$names"
    for name in "${names[@]}"; do
      case "$name" in -h | --help) ;; -*) offered "$name" ;; esac
    done
  done
done

# What bash offers for the words typed so far (the last one being completed).
complete_bash() {
  (
    # shellcheck source=/dev/null
    source "$bash_file"
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    _memctl
    printf '%s\n' "${COMPREPLY[@]}"
  )
}
expect() {
  local want="$1"
  shift
  local got
  got=$(complete_bash "$@")
  grep -qxF -- "$want" <<<"$got" || fail "bash: '$*' offers [$(echo $got)], not '$want'"
}
expect search memctl sea
expect ls memctl cube l
expect --force memctl cube rm c --f
expect --mode memctl search c q --mo
expect hybrid memctl search c q --mode h
expect archived memctl search c q --state ar
expect --wait-searchable memctl add c text --wait
expect stats memctl kv st
expect --version memctl --ver
[ -z "$(complete_bash memctl get c id --version "")" ] || fail "bash: get --version offers words"

if command -v zsh >/dev/null; then
  zsh -n "$zsh_file" || fail "zsh: $zsh_file does not parse"
fi
bash -n "$bash_file" || fail "bash: $bash_file does not parse"

[ "$failures" -eq 0 ] || exit 1
echo "completion: ${#commands[@]} commands, their options offered by both scripts"
