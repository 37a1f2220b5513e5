#!/usr/bin/env bash
# The install layout and the .deb: builds the package from this build tree,
# unpacks it into a scratch root, checks every file is where the man pages
# say, runs the installed memosd from there (plugins and memos-plugin-host
# found through the installed layout), and verifies the systemd units.
#   package_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src="$1"
build="$2"
scratch=$(mktemp -d)
daemon=""
# (Never `kill 0`: that would signal our whole process group, ctest included.)
trap '[ -n "$daemon" ] && kill "$daemon" 2>/dev/null; rm -rf "$scratch"' EXIT
fail() { echo "package_test: $*" >&2; exit 1; }

(cd "$build" && cpack -G DEB -B "$scratch/pkg" >/dev/null) || fail "cpack failed"
deb=$(ls "$scratch"/pkg/memosd_*.deb)
# (Read whole first: `grep -q` closing the pipe early would fail it under pipefail.)
control=$(dpkg-deb -I "$deb")
grep -q "Depends: .*liblmdb0" <<<"$control" || fail "the package does not depend on liblmdb0"
root="$scratch/root"
dpkg -x "$deb" "$root"

for f in usr/bin/memosd usr/bin/memctl usr/lib/memosd/memos-plugin-host \
         usr/lib/memosd/plugins/hash-embedder/hash-embedder.plugin.toml \
         usr/lib/memosd/plugins/hash-embedder/memos-hash-embedder.so \
         usr/include/memos/client.h usr/include/memos/plugin.h usr/include/memos/plugin_sdk.h \
         usr/lib/libmemos_client.a usr/lib/cmake/memos/memosConfig.cmake \
         usr/lib/pkgconfig/memos-client.pc \
         usr/share/man/man1/memctl.1 usr/share/man/man5/memosd.conf.5 \
         usr/share/man/man7/memos.7 usr/share/man/man7/memos-plugin.7 usr/share/man/man8/memosd.8 \
         usr/lib/systemd/system/memosd.service usr/lib/systemd/system/memosd.socket \
         etc/memosd/memosd.conf; do
  [ -e "$root/$f" ] || fail "missing /$f"
done
# The man pages name these paths; they must exist in the package.
grep -q '/etc/memosd/memosd.conf' "$src/man/memosd.conf.5" || fail "memosd.conf(5) does not name /etc/memosd/memosd.conf"
grep -q 'lib/memosd/plugins' "$src/man/memosd.8" || fail "memosd(8) does not name lib/memosd/plugins"

# The installed daemon runs from the scratch root and finds its plugins.
"$root/usr/bin/memosd" --check-config "$root/etc/memosd/memosd.conf" >/dev/null
sock="$scratch/memosd.sock"
"$root/usr/bin/memosd" --socket "$sock" --data "$scratch/data" 2>"$scratch/log" &
daemon=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
status=$("$root/usr/bin/memctl" --socket "$sock" status) || true
grep -q "hash-embedder: loaded" <<<"$status" ||
  { cat "$scratch/log" >&2; fail "the installed memosd did not load its plugin"; }
"$root/usr/bin/memctl" --socket "$sock" cube create installed >/dev/null
kill -TERM "$daemon"
wait "$daemon" || fail "the installed memosd did not stop cleanly"
daemon=

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
echo "package_test: ok ($(du -h "$deb" | cut -f1) package)"
