#!/usr/bin/env bash
# memos-mcp end to end (mcp_client_test.mjs): the official TypeScript MCP
# client drives bridges/mcp/memos-mcp over stdio, against a memosd of this
# build tree started here on a socket and data folder of its own.
#   run_mcp_test.sh SOURCE_DIR BUILD_DIR [MEMOS_MKMODEL VOCAB]
# First against a memosd without a model (chat must not be listed); then,
# given memos-mkmodel and a vocab, against one chatting with a tiny model
# memos-mkmodel makes (chat listed, and answering).
# Exit 77 (skipped) without node, or without the client's packages
# (`npm ci` in bridges/mcp/test, which scripts/install-deps runs).
set -euo pipefail
src="$1"
build="$2"
mkmodel="${3:-}"
vocab="${4:-}"
here="$src/bridges/mcp/test"
fail() { echo "run_mcp_test: $*" >&2; exit 1; }
skip() { echo "run_mcp_test: skipped, $*"; exit 77; }

command -v node >/dev/null || skip "node is not installed (scripts/install-deps installs it)"
[ -d "$here/node_modules/@modelcontextprotocol/sdk" ] ||
  skip "no @modelcontextprotocol/sdk in $here/node_modules: run npm ci there (scripts/install-deps does)"
[ -x /usr/bin/python3 ] || fail "memos-mcp runs /usr/bin/python3, which is not there"
memosd="$build/kernel/memosd"
memctl="$build/shell/memctl"
library="$build/sdk/libmemos.so.1"
for f in "$memosd" "$memctl" "$library" "$src/bridges/mcp/memos-mcp" "$src/sdk/python/memos/__init__.py"; do
  [ -e "$f" ] || fail "$f is missing"
done

# A sanitizer build's libmemos.so needs its runtime preloaded into python3
# (CTest sets LD_PRELOAD, as for the Python client's tests), but not into
# node or memosd: memos-mcp alone gets it, through the client test.
preload="${LD_PRELOAD:-}"
unset LD_PRELOAD

scratch=$(mktemp -d)
daemon=""
# (Never `kill 0`: that would signal our whole process group, ctest included.)
trap '[ -n "$daemon" ] && kill "$daemon" 2>/dev/null; rm -rf "$scratch"' EXIT

# start_daemon NAME [ARGS]: memosd on $scratch/NAME.sock and data folder,
# with no user configuration, once memctl reaches it (a model loads in a
# few seconds).
start_daemon() {
  local name="$1"
  shift
  sock="$scratch/$name.sock"
  log="$scratch/$name.log"
  XDG_CONFIG_HOME="$scratch/no-user-config" "$memosd" --socket "$sock" --data "$scratch/$name-data" \
    "$@" 2>"$log" &
  daemon=$!
  for _ in $(seq 1200); do
    "$memctl" --socket "$sock" status >/dev/null 2>&1 && return 0
    kill -0 "$daemon" 2>/dev/null || { cat "$log" >&2; fail "memosd exited"; }
    sleep 0.05
  done
  cat "$log" >&2
  fail "memosd did not answer within 60 s"
}
stop_daemon() {
  kill -TERM "$daemon"
  wait "$daemon" || { cat "$log" >&2; fail "memosd did not stop cleanly"; }
  daemon=""
}

# run_client CHAT: the client test against the memosd on $sock.
run_client() {
  MEMOS_SOCKET="$sock" MEMOS_MCP="$src/bridges/mcp/memos-mcp" MEMOS_LIBRARY="$library" \
    PYTHONPATH="$src/sdk/python" PYTHONDONTWRITEBYTECODE=1 MEMOS_MCP_PRELOAD="$preload" \
    MEMOS_MCP_CHAT="$1" node "$here/mcp_client_test.mjs" ||
    { echo "--- memosd's log" >&2; cat "$log" >&2; fail "the MCP client test failed (chat=$1)"; }
}

start_daemon plain
run_client 0
stop_daemon

if [ -z "$mkmodel" ]; then
  echo "run_mcp_test: chat not tested, this build has no llama.cpp (no memos-mkmodel)"
  exit 0
fi
[ -f "$vocab" ] || { echo "run_mcp_test: chat not tested, no vocab file ($vocab)"; exit 0; }
"$mkmodel" --out "$scratch/tiny.gguf" --vocab "$vocab" --preset tiny --seed 1 >/dev/null ||
  fail "memos-mkmodel could not make a model"
printf '[executor]\nmodel = "%s"\nthreads = 2\nmax_tokens = 16\n' "$scratch/tiny.gguf" \
  >"$scratch/memosd.conf"
start_daemon chat --config "$scratch/memosd.conf"
run_client 1
stop_daemon
