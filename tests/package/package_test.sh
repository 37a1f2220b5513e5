#!/usr/bin/env bash
# The install layout and the .deb, in three steps that CTest runs as three
# tests (tests/CMakeLists.txt), so that a step that cannot run here is
# reported skipped on its own while the others still pass or fail:
#   package_test.sh deb    SOURCE_DIR BUILD_DIR
#     (fixture) builds the package from this build tree and unpacks it into
#     BUILD_DIR/package-test/root.
#   package_test.sh layout SOURCE_DIR BUILD_DIR
#     every file is where the man pages say, the SDK's headers compile from
#     the package alone, every manifest's library is beside it, the installed
#     memosd runs from the unpacked root (plugins and memos-plugin-host found
#     through the installed layout), the systemd units verify.
#   package_test.sh chat   SOURCE_DIR BUILD_DIR MEMOS_MKMODEL VOCAB
#     the packaged daemon answers `memctl chat` through the packaged
#     llama-executor, on a tiny model memos-mkmodel makes. Exit 77 (skipped)
#     where llama.cpp was not built (MEMOS_MKMODEL empty).
set -euo pipefail
step="$1"
src="$2"
build="$3"
work="$build/package-test"
root="$work/root"
scratch=$(mktemp -d)
daemon=""
# (Never `kill 0`: that would signal our whole process group, ctest included.)
trap '[ -n "$daemon" ] && kill "$daemon" 2>/dev/null; rm -rf "$scratch"' EXIT
fail() { echo "package_test $step: $*" >&2; exit 1; }

# Starts the unpacked memosd on a socket and data folder of this step's own
# (ARGS: more options), and waits until memctl reaches it.
start_daemon() {
  sock="$scratch/memosd.sock"
  "$root/usr/bin/memosd" --socket "$sock" --data "$scratch/data" "$@" 2>"$scratch/log" &
  daemon=$!
  for _ in $(seq 400); do
    "$root/usr/bin/memctl" --socket "$sock" status >/dev/null 2>&1 && return 0
    kill -0 "$daemon" 2>/dev/null || { cat "$scratch/log" >&2; fail "the installed memosd exited"; }
    sleep 0.05
  done
  cat "$scratch/log" >&2
  fail "the installed memosd did not answer within 20 s"
}
stop_daemon() {
  kill -TERM "$daemon"
  wait "$daemon" || { cat "$scratch/log" >&2; fail "the installed memosd did not stop cleanly"; }
  daemon=
}
memctl() { "$root/usr/bin/memctl" --socket "$sock" "$@"; }

case "$step" in
deb)
  rm -rf "$work"
  mkdir -p "$work"
  (cd "$build" && cpack -G DEB -B "$work/pkg" >/dev/null) || fail "cpack failed"
  deb=$(ls "$work"/pkg/memosd_*.deb)
  # (Read whole first: `grep -q` closing the pipe early would fail it under pipefail.)
  control=$(dpkg-deb -I "$deb")
  grep -q "Depends: .*liblmdb0" <<<"$control" || fail "the package does not depend on liblmdb0"
  dpkg -x "$deb" "$root"
  echo "package_test deb: $(basename "$deb") ($(du -h "$deb" | cut -f1)) unpacked in $root"
  ;;

layout)
  [ -d "$root" ] || fail "no unpacked package in $root (the package_deb test makes it)"
  for f in usr/bin/memosd usr/bin/memctl usr/lib/memosd/memos-plugin-host \
           usr/lib/memosd/plugins/hash-embedder/hash-embedder.plugin.toml \
           usr/lib/memosd/plugins/hash-embedder/memos-hash-embedder.so \
           usr/lib/memosd/plugins/faiss-retriever/faiss-retriever.plugin.toml \
           usr/lib/memosd/plugins/xapian-retriever/xapian-retriever.plugin.toml \
           usr/lib/memosd/plugins/hybrid-fuser/hybrid-fuser.plugin.toml \
           usr/include/memos/client.h usr/include/memos/types.h usr/include/memos/vocabulary.h \
           usr/include/memos/plugin.h usr/include/memos/plugin_sdk.h \
           usr/lib/libmemos_client.a usr/lib/cmake/memos/memosConfig.cmake \
           usr/lib/pkgconfig/memos-client.pc \
           usr/share/man/man1/memctl.1 usr/share/man/man5/memosd.conf.5 \
           usr/share/man/man7/memos.7 usr/share/man/man7/memos-plugin.7 usr/share/man/man8/memosd.8 \
           usr/share/man/man8/memos-plugin-host.8 \
           usr/lib/systemd/system/memosd.service usr/lib/systemd/system/memosd.socket \
           etc/memosd/memosd.conf; do
    [ -e "$root/$f" ] || fail "missing /$f"
  done
  # The SDK's headers are all packaged: client.h, with every header it
  # includes, compiles from the package's include folder.
  printf '#include "memos/client.h"\nint main() { return memos::Client::connect().ok() ? 0 : 1; }\n' |
    "${CXX:-c++}" -std=c++20 -fsyntax-only -I "$root/usr/include" -x c++ - ||
    fail "memos/client.h does not compile from the package's /usr/include"
  # Every plugin the build made is packaged, in lib/memosd/plugins/NAME/ with
  # NAME.plugin.toml, and each manifest's library (a file name, beside it)
  # resolves there.
  for built in "$build"/plugins/*/*.plugin.toml; do
    name=$(basename "$built" .plugin.toml)
    manifest="$root/usr/lib/memosd/plugins/$name/$name.plugin.toml"
    [ -f "$manifest" ] || fail "plugin $name is built but not packaged (/usr/lib/memosd/plugins/$name/)"
  done
  for manifest in "$root"/usr/lib/memosd/plugins/*/*.plugin.toml; do
    library=$(sed -nE 's/^library[[:space:]]*=[[:space:]]*"([^"]+)".*/\1/p' "$manifest")
    [ -n "$library" ] || fail "${manifest#"$root"} names no library"
    [ -f "$(dirname "$manifest")/$library" ] ||
      fail "${manifest#"$root"}: its library $library is not beside it"
  done
  # The man pages name these paths; they must exist in the package.
  grep -q '/etc/memosd/memosd.conf' "$src/man/memosd.conf.5" || fail "memosd.conf(5) does not name /etc/memosd/memosd.conf"
  grep -q 'lib/memosd/plugins' "$src/man/memosd.8" || fail "memosd(8) does not name lib/memosd/plugins"

  # The installed daemon runs from the scratch root and finds its plugins.
  "$root/usr/bin/memosd" --check-config "$root/etc/memosd/memosd.conf" >/dev/null
  start_daemon
  status=$(memctl status) || true
  grep -q "hash-embedder: loaded" <<<"$status" ||
    { cat "$scratch/log" >&2; fail "the installed memosd did not load its plugin"; }
  memctl cube create installed >/dev/null
  stop_daemon

  # The service keeps tenants apart: no user namespace, in which every client
  # uid but root's and memosd's own would read as 65534 and share one tenant.
  service="$root/usr/lib/systemd/system/memosd.service"
  if grep -Eq '^[[:space:]]*PrivateUsers[[:space:]]*=' "$service"; then
    fail "memosd.service sets PrivateUsers=: every client would share one tenant"
  fi
  grep -q '^User=memosd' "$service" || fail "memosd.service does not run as the memosd user"

  # The units verify (ExecStart pointed at the unpacked binary).
  if command -v systemd-analyze >/dev/null; then
    units="$scratch/units"
    mkdir -p "$units"
    sed "s|/usr/bin/memosd|$root/usr/bin/memosd|" "$root/usr/lib/systemd/system/memosd.service" >"$units/memosd.service"
    cp "$root/usr/lib/systemd/system/memosd.socket" "$units/"
    (cd "$units" && systemd-analyze verify --man=no ./memosd.socket ./memosd.service) || fail "units do not verify"
    score=$(cd "$units" && systemd-analyze security --offline=yes ./memosd.service 2>/dev/null) || true
    tail -n 1 <<<"$score"
  fi
  echo "package_test layout: ok"
  ;;

chat)
  mkmodel="${4:-}"
  vocab="${5:-}"
  if [ -z "$mkmodel" ]; then
    echo "package_test chat: skipped, this build has no llama.cpp (MEMOS_HAVE_LLAMA is off)"
    exit 77
  fi
  if [ ! -f "$vocab" ]; then
    echo "package_test chat: skipped, no vocab file to make a model with ($vocab)"
    exit 77
  fi
  [ -d "$root" ] || fail "no unpacked package in $root (the package_deb test makes it)"
  for f in usr/lib/memosd/plugins/llama-executor/llama-executor.plugin.toml \
           usr/lib/memosd/plugins/llama-executor/memos-llama-executor.so \
           usr/lib/memosd/plugins/llama-embedder/llama-embedder.plugin.toml \
           usr/lib/memosd/plugins/llama-embedder/memos-llama-embedder.so; do
    [ -e "$root/$f" ] || fail "llama.cpp was built, yet the package has no /$f"
  done
  # A tiny model with a real tokenizer (tools/README.md); its words are
  # noise, but the prompt is really tokenized, prefilled and decoded.
  "$mkmodel" --out "$scratch/tiny.gguf" --vocab "$vocab" --preset tiny --seed 1 >/dev/null ||
    fail "memos-mkmodel could not make a model"
  printf '[executor]\nmodel = "%s"\nthreads = 2\nmax_tokens = 16\n' "$scratch/tiny.gguf" >"$scratch/memosd.conf"
  "$root/usr/bin/memosd" --check-config "$scratch/memosd.conf" >/dev/null
  start_daemon --config "$scratch/memosd.conf"
  memctl cube create maya >/dev/null
  memctl add maya "Maya is allergic to peanuts and carries an EpiPen." >/dev/null
  memctl add maya "Maya swims at the municipal pool every Saturday morning." >/dev/null
  reply=$(memctl --json chat maya "What is Maya allergic to?" --max-tokens 8) ||
    { cat "$scratch/log" >&2; fail "memctl chat was refused: $reply"; }
  prompt_tokens=$(sed -nE 's/.*"prompt_tokens":([0-9]+).*/\1/p' <<<"$reply")
  generated=$(sed -nE 's/.*"generated_tokens":([0-9]+).*/\1/p' <<<"$reply")
  [ "${prompt_tokens:-0}" -gt 0 ] || fail "no prompt tokens: $reply"
  [ "${generated:-0}" -gt 0 ] || fail "nothing generated: $reply"
  grep -qE '"text":"[^"]' <<<"$reply" || fail "an empty answer: $reply"
  # It ran through the packaged plugin, not one of the build tree's.
  info=$(memctl --json plugin info llama-executor) || fail "no plugin llama-executor: $info"
  library="$root/usr/lib/memosd/plugins/llama-executor/memos-llama-executor.so"
  grep -qF "\"library\":\"$library\"" <<<"$info" || fail "llama-executor is not the packaged one: $info"
  grep -qF '"state":"loaded"' <<<"$info" || fail "llama-executor is not loaded: $info"
  stop_daemon
  echo "package_test chat: ok ($prompt_tokens prompt tokens, $generated generated)"
  ;;

*)
  echo "usage: package_test.sh deb|layout|chat SOURCE_DIR BUILD_DIR [MEMOS_MKMODEL VOCAB]" >&2
  exit 2
  ;;
esac
