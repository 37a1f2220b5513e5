# bash completion for memctl(1): its commands, each command's options, the
# names --mode, --tier and --state accept, and cube names (asked of memosd
# with `memctl cube ls`). Written by hand from the command table in
# shell/*_commands.cpp; tests/integration/completion_test.sh checks that every
# command and option memctl's --help lists is here.
# shellcheck shell=bash

_memctl_cubes() {
  local -a socket=()
  [[ -n $1 ]] && socket=(--socket "$1")
  memctl "${socket[@]}" cube ls 2>/dev/null | awk 'NR > 1 { print $1 }'
}

_memctl() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  local commands="status metrics cluster cube plugin add get update archive freeze activate rollback diff rm
    history search chat kv param job policy tenant sched explain"
  local global="--socket --json --stale --version --help"
  # Options that take a value (the next word is that value, not an argument).
  local valued=" --socket --stale --tag --meta --importance --ttl --valid-from --valid-to --session
    --source --supersedes --idempotency-key -k --mode --any-tag --tier --state --since --until
    --valid-since --valid-until --as-of --recency --mmr --min-score --ids --max-tokens --temperature --top-k
    --top-p --seed --retriever --language --as --top --with --max --boost --adapter --name --scale
    --description -o --output --positive --negative --items --rank --steps --budget --route
    --reference --context-tokens --lambda "

  # The command, its subcommand (cube, plugin, kv, param, job, policy, tenant, sched, cluster) and how many arguments
  # were typed before the word being completed.
  local i word cmd= sub= socket= args=0
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${COMP_WORDS[i]}
    if [[ $word == --socket ]]; then
      socket=${COMP_WORDS[i + 1]}
      ((i++))
      continue
    fi
    if [[ $word == -* ]]; then
      # get --version takes a version; memctl --version takes nothing.
      if [[ $valued == *" $word "* || ($word == --version && ($cmd == get || $cmd == param)) ]]; then ((i++)); fi
      continue
    fi
    if [[ -z $cmd ]]; then
      cmd=$word
    elif [[ -z $sub && ($cmd == cube || $cmd == plugin || $cmd == kv || $cmd == param ||
      $cmd == job || $cmd == policy || $cmd == tenant || $cmd == sched || $cmd == cluster) ]]; then
      sub=$word
    else
      ((args++))
    fi
  done

  case $prev in
    --mode | --retriever)
      mapfile -t COMPREPLY < <(compgen -W "dense lexical hybrid" -- "$cur")
      return
      ;;
    --budget)
      mapfile -t COMPREPLY < <(compgen -W "low mid high auto" -- "$cur")
      return
      ;;
    --tier)
      mapfile -t COMPREPLY < <(compgen -W "plaintext activation parametric" -- "$cur")
      return
      ;;
    --state)
      mapfile -t COMPREPLY < <(compgen -W "active archived frozen" -- "$cur")
      return
      ;;
    --socket)
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
      return
      ;;
  esac
  if [[ $valued == *" $prev "* || ($prev == --version && ($cmd == get || $cmd == param)) ]]; then
    return  # a value memctl cannot guess
  fi

  local words= first_is_cube=1 files=0
  if [[ -z $cmd ]]; then
    words="$commands $global"
    first_is_cube=0
  elif [[ ($cmd == cube || $cmd == plugin || $cmd == kv || $cmd == param || $cmd == job ||
    $cmd == policy || $cmd == tenant || $cmd == sched || $cmd == cluster) && -z $sub ]]; then
    case $cmd in
      cube) words="create ls show rm share unshare snapshot snapshots diff export import" ;;
      plugin) words="ls info reload" ;;
      kv) words="prefill ls rm stats" ;;
      param) words="add cvec distill ls show rm export" ;;
      job) words="ls show cancel" ;;
      policy) words="check show reload" ;;
      tenant) words="usage" ;;
      sched) words="status log run" ;;
      cluster) words="status step-down" ;;
    esac
    first_is_cube=0
  else
    case "$cmd${sub:+ $sub}" in
      add)
        words="--tag --meta --importance --ttl --valid-from --valid-to --session --source
          --supersedes --idempotency-key --allow-duplicate --wait-searchable"
        ;;
      get) words="--version" ;;
      update) words="--tag --meta --session --wait-searchable" ;;
      archive | freeze | activate | rollback | rm) words="--wait-searchable" ;;
      diff | history) words= ;;
      search)
        words="-k --mode --tag --any-tag --meta --tier --state --since --until --valid-since
          --valid-until --as-of --archived --explain --fresh --recency --importance --boost --mmr
          --min-score --budget --route --reference --context-tokens --lambda"
        ;;
      chat)
        words="-k --ids --mode --activate --no-reuse --max-tokens --temperature --top-k --top-p
          --seed --adapter --no-adapters --budget --route --reference --context-tokens --lambda"
        ;;
      "cube create")
        words="--retriever --language"
        first_is_cube=0
        ;;
      "cube rm") words="--force" ;;
      "cube share") words="--with --read --write" ;;
      "cube unshare") words="--with" ;;
      "cube export") ((args == 1)) && files=1 ;;
      "cube import")
        words="--as"
        first_is_cube=0
        files=1
        ;;
      "kv prefill") words="--ids --top" ;;
      "param add")
        words="--name --scale --description"
        ((args == 1)) && files=1
        ;;
      "param cvec") words="--name --positive --negative --scale --description" ;;
      "param distill") words="--name --tag --items --rank --steps --scale --description --detach" ;;
      "param show") words="--version" ;;
      "job show")
        words="--wait"
        first_is_cube=0
        ;;
      "job ls" | "job cancel") first_is_cube=0 ;;
      "param export") words="-o --output --version" ;;
      "sched log") words="--max" ;;
      "sched run") first_is_cube=0 ;;
      "cube ls" | "kv stats" | status | metrics | "cluster status" | "cluster step-down") first_is_cube=0 ;;
      plugin* | "policy show" | "policy reload" | "tenant usage") first_is_cube=0 ;;
      "policy check")
        first_is_cube=0
        files=1
        ;;
    esac
    if [[ $cur == -* ]]; then
      words="$words --json --socket --stale --help"
    else
      words=
      if ((args == 0 && first_is_cube)); then
        words=$(_memctl_cubes "$socket")
      elif ((files)); then
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return
      fi
    fi
  fi
  # shellcheck disable=SC2086 # the word lists split on whitespace
  mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
}

complete -F _memctl memctl
