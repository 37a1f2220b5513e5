#!/usr/bin/env bash
# check_includes.sh must catch what it is there to catch: a scratch tree with
# one offence of each kind (and allowed includes beside them) must fail, with
# each offence named at its file and line, and nothing else named.
#   check_includes_selftest.sh SOURCE_DIR
set -euo pipefail
src="${1:?usage: check_includes_selftest.sh SOURCE_DIR}"
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
fail() { echo "check_includes_selftest: $*" >&2; exit 1; }

mkdir -p "$tree"/{kernel,memcube/schema,ipc/include/memos,sdk/include/memos,shell,plugins/include/memos,plugins/x}
touch "$tree"/kernel/daemon.h "$tree"/memcube/store.h "$tree"/ipc/message.h \
  "$tree"/ipc/include/memos/vocabulary.h "$tree"/sdk/include/memos/client.h \
  "$tree"/plugins/include/memos/plugin.h "$tree"/plugins/x/x.h
printf '#include "memcube/store.h"\n#include "kernel/daemon.h"\n' >"$tree/memcube/a.cpp"
printf '#include <vector>\n#include "memos/vocabulary.h"\n' >"$tree/memcube/b.cpp"
printf '#include "ipc/schema/memos.capnp.h"\n' >"$tree/memcube/c.h"
printf '#include "ipc/message.h"\n#include "memcube/schema/records.capnp.h"\n' >"$tree/sdk/d.cpp"
printf '#include "memos/client.h"\n#  include <kernel/daemon.h>\n' >"$tree/shell/e.cpp"
printf '#include "x.h"\n#include "../../memcube/store.h"\n#include "memos/plugin.h"\n' >"$tree/plugins/x/f.cpp"
printf '#include "memcube/store.h"\n#include "kernel/daemon.h"\n' >"$tree/kernel/g.cpp"

rc=0
out=$("$src/tests/conventions/check_includes.sh" "$tree" 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "exit status $rc on a tree with offences, not 1:"$'\n'"$out"
expected=(
  "memcube/a.cpp:2: memcube/ must not include kernel/"
  "memcube/b.cpp:2: memcube/ must not include ipc/"
  "memcube/c.h:1: memcube/ must not include ipc/"
  "sdk/d.cpp:2: sdk/ must not include memcube/"
  "shell/e.cpp:2: shell/ must not include kernel/"
  "plugins/x/f.cpp:2: plugins/ must not include memcube/"
)
for e in "${expected[@]}"; do
  grep -qF "$e" <<<"$out" || fail "missed: $e"$'\n'"$out"
done
named=$(grep -c ' must not include ' <<<"$out" || true)
[ "$named" = "${#expected[@]}" ] || fail "named $named offences, expected ${#expected[@]}:"$'\n'"$out"
echo "check_includes_selftest: ok (${#expected[@]} offences caught)"
