#!/usr/bin/env bash
# The install layout, the .deb and a `cmake --install --prefix` tree, in
# steps that CTest runs as tests of their own (tests/CMakeLists.txt), so that
# a step that cannot run here is reported skipped on its own while the others
# still pass or fail:
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
#   package_test.sh prefix_install SOURCE_DIR BUILD_DIR
#     (fixture) what a user without root does: `cmake --install BUILD_DIR
#     --prefix BUILD_DIR/prefix-test/prefix`. Nothing is written outside the
#     prefix; the configuration, units, plugins, SDK and completions are
#     where memosd(8) says; the .pc file holds no absolute path.
#   package_test.sh prefix_chat SOURCE_DIR BUILD_DIR MEMOS_MKMODEL VOCAB
#     `memctl chat` from the prefix, through its installed llama-executor
#     (exit 77 without llama.cpp, as chat).
#   package_test.sh prefix_sdk SOURCE_DIR BUILD_DIR
#     the README's C++ snippet and sdk/examples/, built against the prefix
#     with pkg-config (memos-client) and with CMake (find_package(memos) in
#     a project of LANGUAGES CXX asking for C++17: the target asks for
#     C++20), each run against the prefix's memosd. $MEMOS_CONSUMER_CXX and
#     $MEMOS_CONSUMER_FLAGS: the compiler and the sanitizer flags of this
#     build, which a program linking its libraries needs too.
set -euo pipefail
step="$1"
src="$2"
build="$3"
work="$build/package-test"
root="$work/root"
prefix="$build/prefix-test/prefix"
# The binaries the steps run: the package's, or the prefix's.
# chat_through LIBDIR MEMOS_MKMODEL VOCAB: the installed daemon (in $bin)
# answers `memctl chat` through the llama-executor installed in
# LIBDIR/memosd/plugins, on a tiny model memos-mkmodel makes. Exit 77
# (skipped) where llama.cpp was not built (MEMOS_MKMODEL empty).
chat_through() {
  local libdir="$1" mkmodel="$2" vocab="$3"
  if [ -z "$mkmodel" ]; then
    echo "package_test $step: skipped, this build has no llama.cpp (MEMOS_HAVE_LLAMA is off)"
    exit 77
  fi
  if [ ! -f "$vocab" ]; then
    echo "package_test $step: skipped, no vocab file to make a model with ($vocab)"
    exit 77
  fi
  for f in llama-executor/llama-executor.plugin.toml llama-executor/memos-llama-executor.so \
           llama-embedder/llama-embedder.plugin.toml llama-embedder/memos-llama-embedder.so; do
    [ -e "$libdir/memosd/plugins/$f" ] || fail "llama.cpp was built, yet $libdir/memosd/plugins/$f is not installed"
  done
  # A tiny model with a real tokenizer (tools/README.md); its words are
  # noise, but the prompt is really tokenized, prefilled and decoded.
  "$mkmodel" --out "$scratch/tiny.gguf" --vocab "$vocab" --preset tiny --seed 1 >/dev/null ||
    fail "memos-mkmodel could not make a model"
  printf '[executor]\nmodel = "%s"\nthreads = 2\nmax_tokens = 16\n' "$scratch/tiny.gguf" >"$scratch/memosd.conf"
  "$bin/memosd" --check-config "$scratch/memosd.conf" >/dev/null
  start_daemon --config "$scratch/memosd.conf"
  memctl cube create maya >/dev/null
  memctl add maya "Maya is allergic to peanuts and carries an EpiPen." >/dev/null
  memctl add maya "Maya swims at the municipal pool every Saturday morning." >/dev/null
  local reply info library prompt_tokens generated
  reply=$(memctl --json chat maya "What is Maya allergic to?" --max-tokens 8) ||
    { cat "$scratch/log" >&2; fail "memctl chat was refused: $reply"; }
  prompt_tokens=$(sed -nE 's/.*"prompt_tokens": ?([0-9]+).*/\1/p' <<<"$reply")
  generated=$(sed -nE 's/.*"generated_tokens": ?([0-9]+).*/\1/p' <<<"$reply")
  [ "${prompt_tokens:-0}" -gt 0 ] || fail "no prompt tokens: $reply"
  [ "${generated:-0}" -gt 0 ] || fail "nothing generated: $reply"
  grep -qE '"text": ?"[^"]' <<<"$reply" || fail "an empty answer: $reply"
  # It ran through the installed plugin, not one of the build tree's.
  info=$(memctl --json plugin info llama-executor) || fail "no plugin llama-executor: $info"
  library="$libdir/memosd/plugins/llama-executor/memos-llama-executor.so"
  grep -qF -e "\"library\":\"$library\"" -e "\"library\": \"$library\"" <<<"$info" || fail "llama-executor is not the installed one: $info"
  grep -qE '"state": ?"loaded"' <<<"$info" || fail "llama-executor is not loaded: $info"
  stop_daemon
  echo "package_test $step: ok ($prompt_tokens prompt tokens, $generated generated)"
}

case "$step" in
  prefix*) bin="$prefix/bin" ;;
  *) bin="$root/usr/bin" ;;
esac
scratch=$(mktemp -d)
daemon=""
# (Never `kill 0`: that would signal our whole process group, ctest included.)
trap '[ -n "$daemon" ] && kill "$daemon" 2>/dev/null; rm -rf "$scratch"' EXIT
fail() { echo "package_test $step: $*" >&2; exit 1; }

# Starts the unpacked memosd on a socket and data folder of this step's own
# (ARGS: more options), and waits until memctl reaches it.
start_daemon() {
  sock="$scratch/memosd.sock"
  # No user configuration: an installed memosd then reads its own install's.
  mkdir -p "$scratch/xdg"
  XDG_CONFIG_HOME="$scratch/xdg" "$bin/memosd" --socket "$sock" --data "$scratch/data" "$@" \
    2>"$scratch/log" &
  daemon=$!
  for _ in $(seq 400); do
    "$bin/memctl" --socket "$sock" status >/dev/null 2>&1 && return 0
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
memctl() { "$bin/memctl" --socket "$sock" "$@"; }

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
           usr/lib/memosd/plugins/router-policy/router-policy.plugin.toml \
           usr/lib/memosd/plugins/router-policy/router-policy.weights \
           usr/include/memos/client.h usr/include/memos/types.h usr/include/memos/routing.h \
           usr/include/memos/scheduling.h \
           usr/include/memos/vocabulary.h \
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
  # The package's prefix is /usr: its configuration is in /etc (conffiles),
  # and the unit names both as dist/ has them.
  [ ! -e "$root/usr/etc" ] || fail "the package has a /usr/etc"
  grep -qx '/etc/memosd/memosd.conf' "$src/dist/debian/conffiles" || fail "conffiles does not name /etc/memosd/memosd.conf"
  grep -qxF 'ExecStart=/usr/bin/memosd --config /etc/memosd/memosd.conf --data /var/lib/memosd' "$service" ||
    fail "the packaged memosd.service does not run /usr/bin/memosd with /etc/memosd/memosd.conf"

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
  [ -d "$root" ] || fail "no unpacked package in $root (the package_deb test makes it)"
  chat_through "$root/usr/lib" "${4:-}" "${5:-}"
  ;;

prefix_install)
  rm -rf "$build/prefix-test"
  mkdir -p "$prefix"
  log="$build/prefix-test/install.log"
  cmake --install "$build" --prefix "$prefix" >"$log" 2>&1 || { cat "$log" >&2; fail "cmake --install failed"; }
  # Every file written is under the prefix (as root, /etc would not fail).
  outside=$(sed -nE 's/^-- (Installing|Up-to-date|Keeping): //p' "$log" | grep -v "^$prefix/" || true)
  [ -z "$outside" ] || fail "cmake --install --prefix wrote outside the prefix: $outside"
  for f in bin/memosd bin/memctl lib/memosd/memos-plugin-host etc/memosd/memosd.conf \
           lib/systemd/system/memosd.service lib/systemd/system/memosd.socket \
           include/memos/client.h lib/libmemos_client.a lib/libmemos_ipc.a \
           lib/cmake/memos/memosConfig.cmake lib/pkgconfig/memos-client.pc \
           share/man/man8/memosd.8 share/memos/schema/memos.capnp; do
    [ -e "$prefix/$f" ] || fail "missing PREFIX/$f"
  done
  for built in "$build"/plugins/*/*.plugin.toml; do
    name=$(basename "$built" .plugin.toml)
    [ -f "$prefix/lib/memosd/plugins/$name/$name.plugin.toml" ] ||
      fail "plugin $name is built but not installed (PREFIX/lib/memosd/plugins/$name/)"
  done
  # Shell completion, once shell/completion/ has it.
  if [ -f "$src/shell/completion/memctl.bash" ]; then
    [ -f "$prefix/share/bash-completion/completions/memctl" ] || fail "no bash completion installed"
  fi
  if [ -f "$src/shell/completion/_memctl" ]; then
    [ -f "$prefix/share/zsh/vendor-completions/_memctl" ] || fail "no zsh completion installed"
  fi
  # The unit runs this prefix's memosd with this prefix's configuration.
  grep -qxF "ExecStart=$prefix/bin/memosd --config $prefix/etc/memosd/memosd.conf --data /var/lib/memosd" \
    "$prefix/lib/systemd/system/memosd.service" || fail "memosd.service does not name the prefix's memosd and memosd.conf"
  # The .pc file is relocatable: no absolute path in it.
  if grep -nE '^[a-z]+=/' "$prefix/lib/pkgconfig/memos-client.pc"; then
    fail "memos-client.pc names an absolute path"
  fi
  "$bin/memosd" --check-config "$prefix/etc/memosd/memosd.conf" >/dev/null ||
    fail "the installed memosd.conf does not check"
  # A second install (after a rebuild, say) keeps the user's configuration.
  echo "# edited" >>"$prefix/etc/memosd/memosd.conf"
  cmake --install "$build" --prefix "$prefix" >"$log" 2>&1 || { cat "$log" >&2; fail "a second cmake --install failed"; }
  grep -q "^# edited" "$prefix/etc/memosd/memosd.conf" || fail "a second install overwrote memosd.conf"
  echo "package_test prefix_install: $(du -sh "$prefix" | cut -f1) in $prefix"
  ;;

prefix_chat)
  [ -x "$bin/memosd" ] || fail "no install in $prefix (the prefix_install test makes it)"
  chat_through "$prefix/lib" "${4:-}" "${5:-}"
  ;;

prefix_sdk)
  [ -x "$bin/memosd" ] || fail "no install in $prefix (the prefix_install test makes it)"
  cxx="${MEMOS_CONSUMER_CXX:-c++}"
  read -ra flags <<<"${MEMOS_CONSUMER_FLAGS:-}"
  export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
  pc_prefix=$(pkg-config --variable=prefix memos-client) || fail "pkg-config does not find memos-client"
  [ "$(realpath "$pc_prefix")" = "$(realpath "$prefix")" ] ||
    fail "memos-client.pc's prefix is $pc_prefix, not $prefix"
  read -ra pc <<<"$(pkg-config --cflags --libs memos-client)"
  examples=(connect add search pipelined_adds)

  # The README's C++ snippet, as a user pastes it.
  # (The first ```cpp block: the SDK section's.)
  awk '/^```cpp$/ { inside = 1; next } inside && /^```$/ { exit } inside' "$src/README.md" >"$scratch/readme.cpp"
  [ -s "$scratch/readme.cpp" ] || fail "the README has no C++ snippet"
  "$cxx" -std=c++20 "${flags[@]}" "$scratch/readme.cpp" "${pc[@]}" -o "$scratch/readme" ||
    fail "the README's C++ snippet does not build with pkg-config"
  # Each example with pkg-config, and all of them with CMake.
  mkdir -p "$scratch/pc"
  for e in "${examples[@]}"; do
    "$cxx" -std=c++20 "${flags[@]}" "$src/sdk/examples/$e.cpp" "${pc[@]}" -o "$scratch/pc/$e" ||
      fail "sdk/examples/$e.cpp does not build with pkg-config"
  done
  # The C example with pkg-config's memos (libmemos.so), as C99.
  read -ra pc_c <<<"$(pkg-config --cflags --libs memos)" || fail "pkg-config does not find memos"
  "${MEMOS_CONSUMER_CC:-cc}" -std=c99 -Wall -Werror "${flags[@]}" "$src/sdk/examples/remember.c" "${pc_c[@]}" \
    -Wl,-rpath,"$(pkg-config --variable=libdir memos)" -o "$scratch/pc/remember" ||
    fail "sdk/examples/remember.c does not build with pkg-config"
  # CMAKE_CXX_STANDARD=17: memos::memos_client must raise it to C++20.
  cmake -S "$src/sdk/examples" -B "$scratch/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_STANDARD=17 -DCMAKE_CXX_FLAGS="${flags[*]}" \
    -DCMAKE_C_COMPILER="${MEMOS_CONSUMER_CC:-cc}" -DCMAKE_C_FLAGS="${flags[*]}" \
    >"$scratch/cmake.log" 2>&1 || { cat "$scratch/cmake.log" >&2; fail "sdk/examples does not configure"; }
  cmake --build "$scratch/cmake" -j2 >"$scratch/cmake.log" 2>&1 ||
    { cat "$scratch/cmake.log" >&2; fail "sdk/examples does not build with CMake"; }

  start_daemon
  # Found without --config: the prefix's configuration.
  grep -q "configuration $(realpath "$prefix")/etc/memosd/memosd.conf" "$scratch/log" ||
    { cat "$scratch/log" >&2; fail "the installed memosd did not read $prefix/etc/memosd/memosd.conf"; }
  export MEMOS_SOCKET="$sock"
  out=$("$scratch/readme") || fail "the README's snippet failed: $out"
  grep -q "Maya swims on Saturdays" <<<"$out" || fail "the README's snippet found nothing: $out"
  for build_kind in pc cmake; do
    dir="$scratch/$build_kind"
    cube="notes-$build_kind"
    out=$("$dir/connect") || fail "$build_kind connect: $out"
    grep -q "^memosd [0-9]" <<<"$out" || fail "$build_kind connect: $out"
    grep -q "^plugin hash-embedder: loaded" <<<"$out" || fail "$build_kind connect: $out"
    out=$("$dir/add" "$cube" "Maya is allergic to peanuts and carries an EpiPen." health) ||
      fail "$build_kind add: $out"
    grep -q "^added [0-9A-Z]\{13\} version 1" <<<"$out" || fail "$build_kind add: $out"
    grep -q "^  tag health" <<<"$out" || fail "$build_kind add: $out"
    grep -q "^  meta source=sdk/examples/add" <<<"$out" || fail "$build_kind add: $out"
    "$dir/add" "$cube" "Maya swims at the municipal pool every Saturday morning." >/dev/null ||
      fail "$build_kind add failed"
    out=$("$dir/search" "$cube" "what is Maya allergic to" 2) || fail "$build_kind search: $out"
    for mode in dense lexical hybrid; do
      grep -q "^$mode: [12] hits" <<<"$out" || fail "$build_kind search, $mode: $out"
    done
    # Only the allergy holds "allergic": lexical search ranks it first.
    first_lexical=$(sed -n '/^lexical:/{n;p}' <<<"$out")
    grep -q "allergic to peanuts" <<<"$first_lexical" || fail "$build_kind search, lexical: $out"
    out=$("$dir/pipelined_adds" "pipe-$build_kind" 200) || fail "$build_kind pipelined_adds: $out"
    grep -q "^200 adds acknowledged, 0 failed" <<<"$out" || fail "$build_kind pipelined_adds: $out"
    out=$("$dir/remember" "c-$build_kind" "Maya plays the cello in a quartet." "what does Maya play") ||
      fail "$build_kind remember: $out"
    grep -q "Maya plays the cello" <<<"$out" || fail "$build_kind remember found nothing: $out"
    shown=$(memctl --json cube show "pipe-$build_kind")
    grep -qE '"live_items": ?200[,}]' <<<"$shown" || fail "pipe-$build_kind does not hold 200 items: $shown"
  done
  # The Python client from the prefix, finding the prefix's libmemos.so.1 by
  # itself, and memos-mcp from its bin/ (initialize, tools/list) with nothing set.
  # A sanitizer build's libmemos needs its runtime (and libstdc++, for its
  # __cxa_throw interceptor) preloaded into python3.
  py_env=()
  if [[ " ${flags[*]} " == *"-fsanitize=address"* ]]; then
    py_env=(LD_PRELOAD="$("${MEMOS_CONSUMER_CC:-cc}" -print-file-name=libasan.so) $("$cxx" -print-file-name=libstdc++.so)"
            ASAN_OPTIONS=detect_leaks=0)
  elif [[ " ${flags[*]} " == *"-fsanitize=thread"* ]]; then
    py_env=(LD_PRELOAD="$("${MEMOS_CONSUMER_CC:-cc}" -print-file-name=libtsan.so) $("$cxx" -print-file-name=libstdc++.so)")
  fi
  out=$(env -u MEMOS_LIBRARY "${py_env[@]}" PYTHONPATH="$prefix/lib/python3/dist-packages" /usr/bin/python3 -c \
    'import memos; c = memos.Client.connect(); print(memos.__file__); print(c.status().version)') ||
    fail "the prefix's Python client: $out"
  grep -q "^$prefix/lib/python3/dist-packages/memos/__init__.py" <<<"$out" ||
    fail "python imported memos from elsewhere: $out"
  out=$(printf '%s\n' \
    '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"package_test","version":"1"}}}' \
    '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
    '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_cubes","arguments":{}}}' |
    env -u MEMOS_LIBRARY -u PYTHONPATH "${py_env[@]}" "$bin/memos-mcp") || fail "the prefix's memos-mcp: $out"
  grep -q '"id":2,"result"' <<<"$out" && grep -q 'notes-pc' <<<"$out" ||
    fail "the prefix's memos-mcp did not list the cubes: $out"
  stop_daemon
  echo "package_test prefix_sdk: the README's snippet, the C example and ${#examples[@]} examples built with pkg-config and CMake, run"
  ;;

*)
  echo "usage: package_test.sh deb|layout|chat|prefix_install|prefix_chat|prefix_sdk SOURCE_DIR BUILD_DIR [MEMOS_MKMODEL VOCAB]" >&2
  exit 2
  ;;
esac
