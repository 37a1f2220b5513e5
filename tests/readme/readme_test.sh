#!/usr/bin/env bash
# The README's examples, run as written, the way a new user types them: the
# shell blocks that follow a `<!-- readme-test: KIND -->` line are run in one
# shell session (variables carry from block to block), with `set -e`, by a
# user who is not root, with a home of their own, against the memosd of the
# unpacked .deb (the memos_deb fixture of tests/package/package_test.sh).
#   readme_test.sh plain SOURCE_DIR BUILD_DIR
#     the `start` block (memosd on its defaults), then every `memctl` block;
#     then checks what the README says their output shows.
#   readme_test.sh chat  SOURCE_DIR BUILD_DIR MEMOS_MKMODEL VOCAB
#     the same with a model: the `config` blocks first (the README says to
#     write the configuration, then start memosd), with ~/models/chat.gguf
#     and ~/models/embed.gguf made by memos-mkmodel, then `start`, `memctl`
#     and `chat`. Exit 77 (skipped) where llama.cpp was not built.
# A block that fails fails the test with the block, its line and the log.
set -euo pipefail
mode="$1"
src="$2"
build="$3"
mkmodel="${4:-}"
vocab="${5:-}"
fail() { echo "readme_test $mode: $*" >&2; exit 1; }
[ "$mode" = chat ] && [ -z "$mkmodel" ] && { echo "readme_test chat: no llama.cpp: skipped"; exit 77; }
packaged="$build/package-test/root"
[ -x "$packaged/usr/bin/memosd" ] || fail "no unpacked package in $packaged (the package_deb test makes it)"

# A world-readable scratch folder: the user below must reach the binaries.
scratch=$(mktemp -d)
chmod 755 "$scratch"
daemon_pid=""
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && sleep 0.5
  [ -n "$daemon_pid" ] && kill -9 "$daemon_pid" 2>/dev/null
  rm -rf "$scratch"
}
trap cleanup EXIT
cp -a "$packaged" "$scratch/root"
home="$scratch/home"
mkdir -p "$home/models" "$scratch/run"
chmod 700 "$scratch/run"
if [ "$mode" = chat ]; then
  "$mkmodel" --out "$home/models/chat.gguf" --vocab "$vocab" --preset tiny --seed 1 >/dev/null
  cp "$home/models/chat.gguf" "$home/models/embed.gguf"
  # The README's LoRA adapter for that model (memctl param add).
  "$mkmodel" --lora-for "$home/models/chat.gguf" --out "$home/models/style.gguf" >/dev/null
fi

# The README's blocks of each kind, in order, each to a file of its own.
blocks="$scratch/blocks"
mkdir -p "$blocks"
awk -v dir="$blocks" '
  /^<!-- readme-test: [a-z]+ -->$/ { kind = $3; next }
  kind != "" && /^```sh$/ { n++; file = sprintf("%s/%02d-%s.sh", dir, n, kind); inside = 1; kind = ""; next }
  inside && /^```$/ { inside = 0; close(file); next }
  inside { print > file }
' "$src/README.md"
ls "$blocks" | grep -q -- '-start.sh$' || fail "README.md has no block marked start"
ls "$blocks" | grep -q -- '-memctl.sh$' || fail "README.md has no block marked memctl"

# The session: what runs, in which order, as the user would.
session="$scratch/session.sh"
{
  echo 'set -euo pipefail'
  echo 'cd ~'
  # Every block announces itself, so a failure names it.
  order="start memctl"
  [ "$mode" = chat ] && order="config start memctl chat"
  for kind in $order; do
    for f in "$blocks"/*-"$kind".sh; do
      [ -e "$f" ] || continue
      echo "echo '### $(basename "$f")' >&2"
      cat "$f"
      if [ "$kind" = start ]; then
        # memosd was started in the background: wait until it answers, as a
        # user would before the next command (loading a model takes longer).
        echo 'echo $! > "$MEMOS_README_PID"'
        echo 'for _ in $(seq 1200); do memctl status >/dev/null 2>&1 && break; sleep 0.05; done'
        echo 'memctl status >/dev/null'
      fi
    done
  done
  # What the README says the commands show.
  cat <<'EOF'
echo '### checks' >&2
now=$(memctl search maya "where does Maya live" -k 1)
grep -q Almada <<<"$now" || { echo "search for where Maya lives now: $now" >&2; exit 1; }
then=$(memctl search maya "where does Maya live" --as-of 2024-06-01 -k 1)
grep -q Lisbon <<<"$then" || { echo "search as of 2024-06-01: $then" >&2; exit 1; }
versions=$(memctl history maya "$id")
[ "$(grep -c . <<<"$versions")" -ge 2 ] || { echo "history: $versions" >&2; exit 1; }
EOF
  if [ "$mode" = chat ]; then
    # The chats over the prefilled block restored its state (kv ls counts
    # each use).
    cat <<'EOF'
uses=$(memctl --json kv ls maya)
grep -Eq '"uses":[1-9]' <<<"$uses" || { echo "no chat restored the prefilled block: $uses" >&2; exit 1; }
EOF
  fi
} >"$session"
chmod 644 "$session" "$blocks"/*

user_env=(env -i HOME="$home" XDG_RUNTIME_DIR="$scratch/run" PATH="$scratch/root/usr/bin:/usr/bin:/bin"
  LANG=C.UTF-8 MEMOS_README_PID="$scratch/run/memosd.pid")
if [ "$(id -u)" = 0 ]; then
  # A user's defaults (data under ~/.local/share, the socket in
  # XDG_RUNTIME_DIR), not root's (/var/lib/memosd, /run/memosd).
  chown -R nobody:nogroup "$home" "$scratch/run"
  as_user=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
else
  as_user=()
fi
set +e
"${as_user[@]}" "${user_env[@]}" bash "$session" >"$scratch/out" 2>"$scratch/err"
rc=$?
set -e
daemon_pid=$(cat "$scratch/run/memosd.pid" 2>/dev/null || true)
if [ "$rc" != 0 ]; then
  echo "--- stdout" >&2
  cat "$scratch/out" >&2
  echo "--- stderr (### names each README block)" >&2
  cat "$scratch/err" >&2
  fail "a README example failed (exit $rc)"
fi
echo "readme_test $mode: $(ls "$blocks" | wc -l) README blocks ran"
