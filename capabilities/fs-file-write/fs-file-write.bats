#!/usr/bin/env bats
# fs-file-write through the real stub, broker and jail: every refusal is answered with 77 and one
# line on stderr, recorded as a kind=deny security event, and checked on the host afterwards (the
# target untouched byte for byte, nothing created). Escapes are tried from the host side (links,
# special files, mounts planted in the scope) and from inside the jail when the agent's workspace
# overlaps its scope, including a race that swaps a directory for a symlink while writing.
#
# Scripts passed to `bash -c` or `python3 -c` inside the jail are single-quoted on purpose: their
# variables expand in the jail, with values handed over as positional arguments. bats' `run`
# sets stderr and stderr_lines.
# shellcheck disable=SC2016,SC2154

load ../../test/bats/helpers

setup() {
  viv_setup
  AGENT="w$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  SCOPE="$HOST/reports"
  OUTSIDE="$BATS_TEST_TMPDIR/outside"
  mkdir -p "$SCOPE" "$OUTSIDE"
  printf 'outside secret\n' >"$OUTSIDE/secret"
  cp "$OUTSIDE/secret" "$BATS_TEST_TMPDIR/secret.orig"
  policy_one_agent "$AGENT" "$SCOPE"
  start_broker
  export AGENT SCOPE OUTSIDE
}

teardown() {
  if [ -n "${SCOPE:-}" ] && mountpoint -q "$SCOPE/mnt" 2>/dev/null; then umount "$SCOPE/mnt"; fi
  if [ -n "${AGENT:-}" ]; then rm -f "/etc/vivary-pwned-$AGENT"; fi
  stop_broker
}

# fsw ARGS...: fs-file-write ARGS... called from inside the agent's jail.
fsw() {
  viv run --agent "$AGENT" -- fs-file-write "$@"
}

# overlap_policy: the agent's workspace is $HOST/ws and its grant $HOST/ws/out, below it.
overlap_policy() {
  stop_broker
  WS="$HOST/ws"
  policy_one_agent "$AGENT" "$WS/out" "$WS"
  start_broker
}

# snapshot DIR...: every entry below DIR with its type, mode, owner, size, inode, links, mtime and
# link target, then a hash of every regular file.
snapshot() {
  find "$@" -printf '%p %y %m %U %s %i %n %T@ %l\n' | LC_ALL=C sort
  find "$@" -type f -exec sha256sum {} + | LC_ALL=C sort
}

# deny_reasons: the reasons of the agent's kind=deny records, in order, unshortened.
deny_reasons() {
  viv-log --agent "$AGENT" --json | jq -r 'select(.kind == "deny") | .reason'
}

# assert_deny_logged REASON: the agent's latest security event is a kind=deny of fs-file-write
# with REASON, in the line format and in full in the JSON one.
assert_deny_logged() {
  local line
  line=$(viv-log --agent "$AGENT" --cap fs-file-write | grep ' kind=deny ' | tail -n 1)
  [[ "$line" == *" agent=$AGENT kind=deny cap=fs-file-write "*" reason="* ]]
  [ "$(deny_reasons | tail -n 1)" = "$1" ]
}

# assert_refused PATH REASON: writing PATH from the jail exits 77 with REASON as the one stderr
# line, is recorded as a denial, and changes nothing under the host directories of the test.
assert_refused() {
  local before
  before=$(snapshot "$HOST" "$OUTSIDE")
  run -77 --separate-stderr fsw --path "$1" --content pwned
  [ "$output" = "" ]
  [ "${#stderr_lines[@]}" -eq 1 ]
  [ "${stderr_lines[0]}" = "fs-file-write: $2" ]
  [ "$(snapshot "$HOST" "$OUTSIDE")" = "$before" ]
  cmp "$OUTSIDE/secret" "$BATS_TEST_TMPDIR/secret.orig"
  assert_deny_logged "${2}"
}

# assert_usage_error REASON ARGS...: fs-file-write ARGS... exits 64 with REASON as its one stderr
# line, is recorded as an invalid call, and writes nothing.
assert_usage_error() {
  local reason=$1 before
  shift
  before=$(snapshot "$HOST" "$OUTSIDE")
  run -64 --separate-stderr fsw "$@"
  [ "$output" = "" ]
  [ "${#stderr_lines[@]}" -eq 1 ]
  [ "${stderr_lines[0]}" = "fs-file-write: $reason" ]
  [ "$(snapshot "$HOST" "$OUTSIDE")" = "$before" ]
  [ "$(viv-log --agent "$AGENT" --json | jq -r 'select(.kind == "invalid") | .reason' | tail -n 1)" = "$reason" ]
  [ -z "$(deny_reasons)" ]
}

# ---------------------------------------------------------------------------------------------
# Refused by the scope check

@test "a path with a '..' component is refused, even one that would resolve inside the scope" {
  assert_refused "$SCOPE/../../outside/secret" "cannot write '$SCOPE/../../outside/secret': path has a '..' component"
  assert_refused "$SCOPE/a/../b" "cannot write '$SCOPE/a/../b': path has a '..' component"
  [ ! -e "$SCOPE/b" ]
}

@test "a sibling directory sharing the granted prefix is refused" {
  assert_refused "$HOST/reports-evil/x" "cannot write '$HOST/reports-evil/x': outside granted path '$SCOPE'"
  [ ! -e "$HOST/reports-evil" ]
  mkdir "$HOST/reports-evil"
  assert_refused "$HOST/reports-evil/x" "cannot write '$HOST/reports-evil/x': outside granted path '$SCOPE'"
  [ -z "$(ls -A "$HOST/reports-evil")" ]
}

@test "a path outside every grant, or the granted directory itself, is refused" {
  assert_refused "$OUTSIDE/secret" "cannot write '$OUTSIDE/secret': outside granted path '$SCOPE'"
  assert_refused "/etc/vivary-pwned-$AGENT" "cannot write '/etc/vivary-pwned-$AGENT': outside granted path '$SCOPE'"
  [ ! -e "/etc/vivary-pwned-$AGENT" ]
  assert_refused "$SCOPE" "cannot write '$SCOPE': outside granted path '$SCOPE'"
  assert_refused "/proc/self/root$SCOPE/x" "cannot write '/proc/self/root$SCOPE/x': outside granted path '$SCOPE'"
}

@test "relative paths are refused and nothing is written beside the broker" {
  local cwd
  cwd=$(readlink "/proc/$BROKER_PID/cwd")
  assert_refused "vivary-rel-$AGENT" "cannot write 'vivary-rel-$AGENT': path not an absolute path"
  assert_refused "reports/x" "cannot write 'reports/x': path not an absolute path"
  assert_refused "./vivary-rel-$AGENT" "cannot write './vivary-rel-$AGENT': path not an absolute path"
  [ ! -e "$cwd/vivary-rel-$AGENT" ]
  [ ! -e "/vivary-rel-$AGENT" ]
}

@test "paths with empty or '.' components are refused" {
  assert_refused "$SCOPE//x" "cannot write '$SCOPE//x': path has an empty component (// or a trailing /)"
  assert_refused "$SCOPE/x/" "cannot write '$SCOPE/x/': path has an empty component (// or a trailing /)"
  assert_refused "$SCOPE/./x" "cannot write '$SCOPE/./x': path has a '.' component"
}

# ---------------------------------------------------------------------------------------------
# Refused by the confined write: links, special files and mounts planted in the scope

@test "a symlink leaf pointing outside is refused and its target is untouched" {
  ln -s "$OUTSIDE/secret" "$SCOPE/leaf"
  assert_refused "$SCOPE/leaf" "cannot write '$SCOPE/leaf': '$SCOPE/leaf' is a symlink"
  [ -L "$SCOPE/leaf" ]
}

@test "a dangling symlink leaf is refused and its target is not created" {
  ln -s "$OUTSIDE/new" "$SCOPE/dangling"
  assert_refused "$SCOPE/dangling" "cannot write '$SCOPE/dangling': '$SCOPE/dangling' is a symlink"
  [ ! -e "$OUTSIDE/new" ]
}

@test "a symlink ancestor with directories still to create below it is refused" {
  ln -s "$OUTSIDE" "$SCOPE/link"
  assert_refused "$SCOPE/link/new/dir/file" "cannot write '$SCOPE/link/new/dir/file': '$SCOPE/link' is a symlink"
  [ ! -e "$OUTSIDE/new" ]
  mkdir "$SCOPE/real"
  ln -s "$OUTSIDE" "$SCOPE/real/link"
  assert_refused "$SCOPE/real/link/secret" "cannot write '$SCOPE/real/link/secret': '$SCOPE/real/link' is a symlink"
}

@test "a hard link to a file elsewhere is refused and that file is unchanged" {
  ln "$OUTSIDE/secret" "$SCOPE/hardlink"
  assert_refused "$SCOPE/hardlink" "cannot write '$SCOPE/hardlink': '$SCOPE/hardlink' has 2 hard links"
  [ "$(stat -c %i "$SCOPE/hardlink")" = "$(stat -c %i "$OUTSIDE/secret")" ]
}

@test "magic links to /proc/self are refused" {
  ln -s /proc/self/root "$SCOPE/root"
  assert_refused "$SCOPE/root$OUTSIDE/secret" "cannot write '$SCOPE/root$OUTSIDE/secret': '$SCOPE/root' is a symlink"
  ln -s /proc/self/cwd "$SCOPE/cwd"
  assert_refused "$SCOPE/cwd/vivary-x" "cannot write '$SCOPE/cwd/vivary-x': '$SCOPE/cwd' is a symlink"
  ln -s /proc/self/fd/0 "$SCOPE/stdin"
  assert_refused "$SCOPE/stdin" "cannot write '$SCOPE/stdin': '$SCOPE/stdin' is a symlink"
}

@test "a FIFO at the leaf is refused" {
  mkfifo "$SCOPE/fifo"
  assert_refused "$SCOPE/fifo" "cannot write '$SCOPE/fifo': '$SCOPE/fifo' is a FIFO"
  [ -p "$SCOPE/fifo" ]
}

@test "a unix socket at the leaf is refused" {
  python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$SCOPE/sock"
  [ -S "$SCOPE/sock" ]
  assert_refused "$SCOPE/sock" "cannot write '$SCOPE/sock': '$SCOPE/sock' is a socket"
  [ -S "$SCOPE/sock" ]
}

@test "a device node at the leaf is refused" {
  mknod "$SCOPE/null" c 1 3
  assert_refused "$SCOPE/null" "cannot write '$SCOPE/null': '$SCOPE/null' is a character device"
  [ -c "$SCOPE/null" ]
}

@test "a directory at the leaf or a file in place of a directory is refused" {
  mkdir "$SCOPE/dir"
  assert_refused "$SCOPE/dir" "cannot write '$SCOPE/dir': '$SCOPE/dir' is a directory"
  echo keep >"$SCOPE/file"
  assert_refused "$SCOPE/file/x" "cannot write '$SCOPE/file/x': '$SCOPE/file' is a regular file, not a directory"
  [ "$(cat "$SCOPE/file")" = keep ]
}

@test "a mount point inside the scope is refused" {
  mkdir "$SCOPE/mnt"
  mount --bind "$OUTSIDE" "$SCOPE/mnt"
  assert_refused "$SCOPE/mnt/secret" "cannot write '$SCOPE/mnt/secret': '$SCOPE/mnt' crosses a mount point"
  assert_refused "$SCOPE/mnt/new" "cannot write '$SCOPE/mnt/new': '$SCOPE/mnt' crosses a mount point"
  [ ! -e "$OUTSIDE/new" ]
}

# ---------------------------------------------------------------------------------------------
# The agent's own workspace overlaps its scope: attacks from inside the jail

@test "symlinks planted from inside the jail in an overlapping workspace are refused" {
  overlap_policy
  local before
  before=$(snapshot "$OUTSIDE")
  run -0 --separate-stderr viv run --agent "$AGENT" -- bash -c '
    ws=$1 outside=$2 agent=$3
    mkdir -p /workspace/out/real
    ln -s /etc /workspace/out/etc
    ln -s "$outside" /workspace/out/o
    ln -s "$outside/secret" /workspace/out/leaf
    ln -s /proc/self/root /workspace/out/root
    for p in "$ws/out/etc/vivary-pwned-$agent" "$ws/out/o/secret" "$ws/out/o/new/dir/f" "$ws/out/leaf" \
             "$ws/out/root$outside/secret" "$ws/out/real/../o/secret"; do
      fs-file-write --path "$p" --content pwned
      echo "$?"
    done
  ' _ "$WS" "$OUTSIDE" "$AGENT"
  [ "$(echo "$output" | tr '\n' ' ')" = "77 77 77 77 77 77 " ]
  [ "${stderr_lines[0]}" = "fs-file-write: cannot write '$WS/out/etc/vivary-pwned-$AGENT': '$WS/out/etc' is a symlink" ]
  [ "${stderr_lines[1]}" = "fs-file-write: cannot write '$WS/out/o/secret': '$WS/out/o' is a symlink" ]
  [ "${stderr_lines[2]}" = "fs-file-write: cannot write '$WS/out/o/new/dir/f': '$WS/out/o' is a symlink" ]
  [ "${stderr_lines[3]}" = "fs-file-write: cannot write '$WS/out/leaf': '$WS/out/leaf' is a symlink" ]
  [ "${stderr_lines[4]}" = "fs-file-write: cannot write '$WS/out/root$OUTSIDE/secret': '$WS/out/root' is a symlink" ]
  [ "${stderr_lines[5]}" = "fs-file-write: cannot write '$WS/out/real/../o/secret': path has a '..' component" ]
  [ "${#stderr_lines[@]}" -eq 6 ]
  [ ! -e "/etc/vivary-pwned-$AGENT" ]
  [ "$(snapshot "$OUTSIDE")" = "$before" ]
  [ -z "$(ls -A "$WS/out/real")" ]
  [ "$(deny_reasons | wc -l)" -eq 6 ]
}

@test "a granted directory swapped for a symlink from inside the jail is refused" {
  overlap_policy
  local before
  before=$(snapshot "$OUTSIDE")
  run -0 --separate-stderr viv run --agent "$AGENT" -- bash -c '
    mkdir -p /workspace/out.real
    ln -s "$2" /workspace/out
    fs-file-write --path "$1/out/secret" --content pwned
    echo "$?"
  ' _ "$WS" "$OUTSIDE"
  [ "$output" = 77 ]
  [ "${stderr_lines[0]}" = "fs-file-write: cannot write '$WS/out/secret': granted path '$WS/out' contains a symlink" ]
  [ "$(snapshot "$OUTSIDE")" = "$before" ]
  assert_deny_logged "cannot write '$WS/out/secret': granted path '$WS/out' contains a symlink"
}

@test "a hard link planted from inside the jail is refused and the linked file is unchanged" {
  overlap_policy
  run -0 --separate-stderr viv run --agent "$AGENT" -- bash -c '
    mkdir -p /workspace/out
    echo mine >/workspace/keep
    ln /workspace/keep /workspace/out/hardlink
    fs-file-write --path "$1/out/hardlink" --content changed
    echo "$?"
  ' _ "$WS"
  [ "$output" = 77 ]
  [ "${stderr_lines[0]}" = "fs-file-write: cannot write '$WS/out/hardlink': '$WS/out/hardlink' has 2 hard links" ]
  [ "$(cat "$WS/keep")" = mine ]
  assert_deny_logged "cannot write '$WS/out/hardlink': '$WS/out/hardlink' has 2 hard links"
}

@test "a directory swapped with a symlink while writing never lets a write escape" {
  overlap_policy
  local n=300
  # In the jail, SWAP_LOOP exchanges out/d (a directory) and out/l (a symlink to $OUTSIDE) while the calls run.
  run -0 viv run --agent "$AGENT" -- bash -c '
    ws=$1 outside=$2 n=$3 swap=$4
    mkdir -p /workspace/out/d
    ln -s "$outside" /workspace/out/l
    : >/workspace/written
    python3 -c "$swap" /workspace/out d l /workspace/stop >/workspace/swaps &
    swapper=$!
    ok=0 denied=0 other=0
    for i in $(seq 1 "$n"); do
      fs-file-write --path "$ws/out/d/f$i" --content "$i" >/dev/null 2>>/workspace/errors
      case $? in
        0) ok=$((ok + 1)); echo "f$i" >>/workspace/written ;;
        77) denied=$((denied + 1)) ;;
        *) other=$((other + 1)) ;;
      esac
    done
    touch /workspace/stop
    wait "$swapper"
    echo "ok=$ok denied=$denied other=$other"
  ' _ "$WS" "$OUTSIDE" "$n" "$SWAP_LOOP"
  [[ "$output" =~ ^ok=([0-9]+)\ denied=([0-9]+)\ other=0$ ]]
  local ok=${BASH_REMATCH[1]} denied=${BASH_REMATCH[2]}
  [ $((ok + denied)) -eq "$n" ]
  [ "$(cat "$WS/swaps")" -gt 0 ]
  # Both outcomes happened, so the race was real.
  [ "$ok" -gt 0 ]
  [ "$denied" -gt 0 ]

  # Nothing reached the outside directory.
  [ "$(find "$OUTSIDE" -mindepth 1 | wc -l)" -eq 1 ]
  cmp "$OUTSIDE/secret" "$BATS_TEST_TMPDIR/secret.orig"

  # Every successful write is in the one real directory, with its own content.
  local real
  if [ -L "$WS/out/d" ]; then real="$WS/out/l"; else real="$WS/out/d"; fi
  [ -d "$real" ]
  [ ! -L "$real" ]
  [ "$(find "$real" -mindepth 1 -printf '%f\n' | LC_ALL=C sort)" = "$(LC_ALL=C sort "$WS/written")" ]
  local f
  while read -r f; do
    [ "$(cat "$real/$f")" = "${f#f}" ]
  done <"$WS/written"

  # Every refusal was about out/d, said so on one line, and was recorded as a denial.
  [ "$(wc -l <"$WS/errors")" -eq "$denied" ]
  [ "$(grep -c "^fs-file-write: cannot write '$WS/out/d/f[0-9]*': '$WS/out/d' is a " "$WS/errors")" -eq "$denied" ]
  [ "$(deny_reasons | grep -c "^cannot write '$WS/out/d/f[0-9]*': '$WS/out/d' is a ")" -eq "$denied" ]
  # And named the cause: out/d was refused for being a symlink, never for being a directory.
  [ "$(grep -cvx "fs-file-write: cannot write '$WS/out/d/f[0-9]*': '$WS/out/d' is a symlink" "$WS/errors")" -eq 0 ]
}

# ---------------------------------------------------------------------------------------------
# Allowed behaviour

@test "a write creates missing parent directories and prints its JSON result" {
  run -0 --separate-stderr fsw --path "$SCOPE/a/b/c/report.md" --content "hello"
  [ "$output" = "{\"path\":\"$SCOPE/a/b/c/report.md\",\"bytes_written\":5}" ]
  [ "$stderr" = "" ]
  [ "$(printf hello | sha256sum)" = "$(sha256sum <"$SCOPE/a/b/c/report.md")" ]
  [ -d "$SCOPE/a/b/c" ]
  [ ! -L "$SCOPE/a" ]
  [ "$(stat -c %a "$SCOPE/a/b/c/report.md")" = 644 ]
  run -0 viv-log --agent "$AGENT" --cap fs-file-write
  [[ "$output" == *" kind=call cap=fs-file-write "*"args.path=$SCOPE/a/b/c/report.md"* ]]
  [[ "$output" == *" kind=result cap=fs-file-write "*"exit=0"* ]]
}

@test "a write replaces an existing file atomically with wholly new content" {
  head -c 10000 /dev/zero | tr '\0' o >"$SCOPE/report.md"
  local inode
  inode=$(stat -c %i "$SCOPE/report.md")
  run -0 --separate-stderr fsw --path "$SCOPE/report.md" --content "new"
  [ "$output" = "{\"path\":\"$SCOPE/report.md\",\"bytes_written\":3}" ]
  [ "$(printf new | sha256sum)" = "$(sha256sum <"$SCOPE/report.md")" ]
  # A rename of a new file, not a rewrite in place: a reader sees the old file or the new one.
  [ "$(stat -c %i "$SCOPE/report.md")" != "$inode" ]
  [ "$(ls -A "$SCOPE")" = report.md ]
}

@test "--encoding base64 writes the decoded bytes" {
  printf '\000\001\377binary\n' >"$BATS_TEST_TMPDIR/expected"
  run -0 --separate-stderr fsw --path "$SCOPE/blob" --content "$(base64 -w0 "$BATS_TEST_TMPDIR/expected")" --encoding base64
  [ "$output" = "{\"path\":\"$SCOPE/blob\",\"bytes_written\":10}" ]
  cmp "$SCOPE/blob" "$BATS_TEST_TMPDIR/expected"
}

@test "bad base64 is bad data (65) and writes nothing" {
  run -65 --separate-stderr fsw --path "$SCOPE/blob" --content 'not base64!' --encoding base64
  [ "$output" = "" ]
  [ "$stderr" = "fs-file-write: cannot write '$SCOPE/blob': --content is not valid base64" ]
  run -65 --separate-stderr fsw --path "$SCOPE/blob" --content 'QQ=' --encoding base64
  [ "$stderr" = "fs-file-write: cannot write '$SCOPE/blob': --content is not valid base64" ]
  [ -z "$(ls -A "$SCOPE")" ]
  [ -z "$(deny_reasons)" ]
}

@test "content up to the kernel's per-argument limit goes through the stub" {
  # One argv string is limited to 128 KiB by execve(2), below the 1 MiB the capability allows.
  local big
  big=$(head -c 130000 /dev/zero | tr '\0' v)
  run -0 --separate-stderr fsw --path "$SCOPE/big" --content "$big"
  [ "$output" = "{\"path\":\"$SCOPE/big\",\"bytes_written\":130000}" ]
  [ "$(stat -c %s "$SCOPE/big")" -eq 130000 ]
}

@test "content over 1 MiB is bad data (65) and writes nothing" {
  # Beyond the argv limit: the agent speaks the protocol itself, as DESIGN.md says it may.
  local client='
import base64, socket, struct, sys
def s(b): return struct.pack(">I", len(b)) + b
path, size, enc = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = b"v" * size
content = base64.b64encode(data) if enc == "base64" else data
args = [b"--path", path.encode(), b"--content", content, b"--encoding", enc.encode()]
call = b"\x10" + s(b"fs-file-write") + struct.pack(">H", len(args)) + b"".join(s(a) for a in args)
sock = socket.socket(socket.AF_UNIX)
sock.connect("/run/vivary/broker.sock")
sock.sendall(s(b"\x01VIVR" + struct.pack(">H", 1)) + s(call))
f = sock.makefile("rb")
def frame():
    return f.read(struct.unpack(">I", f.read(4))[0])
for r in (frame(), frame()):
    if r[0] == 0x7f:
        sys.exit("error frame: %r" % r)
o = struct.unpack(">I", r[2:6])[0]
e = struct.unpack(">I", r[6 + o:10 + o])[0]
sys.stdout.buffer.write(r[6:6 + o])
sys.stderr.buffer.write(r[10 + o:10 + o + e])
sys.exit(r[1])
'
  run -0 --separate-stderr viv run --agent "$AGENT" -- python3 -c "$client" "$SCOPE/max" 1048576 utf-8
  [ "$output" = "{\"path\":\"$SCOPE/max\",\"bytes_written\":1048576}" ]
  [ "$(stat -c %s "$SCOPE/max")" -eq 1048576 ]

  run -65 --separate-stderr viv run --agent "$AGENT" -- python3 -c "$client" "$SCOPE/over" 1048577 utf-8
  [ "$output" = "" ]
  [ "$stderr" = "fs-file-write: cannot write '$SCOPE/over': content of 1048577 bytes exceeds the 1048576-byte limit" ]
  run -65 --separate-stderr viv run --agent "$AGENT" -- python3 -c "$client" "$SCOPE/over" 1048577 base64
  [ "$stderr" = "fs-file-write: cannot write '$SCOPE/over': content of 1048577 bytes exceeds the 1048576-byte limit" ]
  [ ! -e "$SCOPE/over" ]
  [ "$(ls -A "$SCOPE")" = max ]
}

# ---------------------------------------------------------------------------------------------
# argv through the real stub: usage errors are 64 with one line on stderr

@test "an unknown option is a usage error" {
  assert_usage_error "unknown option '--mode'" --path "$SCOPE/x" --content x --mode 0600
}

@test "a duplicated option is a usage error" {
  assert_usage_error "option '--path' is given twice" --path "$SCOPE/x" --path "$SCOPE/y" --content x
  assert_usage_error "option '--content' is given twice" --path "$SCOPE/x" --content x --content y
}

@test "an abbreviated option is a usage error" {
  assert_usage_error "unknown option '--pat'" --pat "$SCOPE/x" --content x
  assert_usage_error "unknown option '--cont'" --path "$SCOPE/x" --cont x
}

@test "an option without its value is a usage error" {
  assert_usage_error "option '--path' needs a value" --content x --path
  assert_usage_error "missing required option '--content'" --path "$SCOPE/x"
}

@test "a value that looks like an option is taken literally" {
  run -0 --separate-stderr fsw --path "$SCOPE/x" --content --path
  [ "$output" = "{\"path\":\"$SCOPE/x\",\"bytes_written\":6}" ]
  [ "$(cat "$SCOPE/x")" = "--path" ]
  run -0 --separate-stderr fsw --path "$SCOPE/y" --content --help
  [ "$(cat "$SCOPE/y")" = "--help" ]
  run -0 --separate-stderr fsw "--path=$SCOPE/z" "--content=a=b"
  [ "$(cat "$SCOPE/z")" = "a=b" ]
}

@test "-- ends the options and nothing may follow it" {
  run -0 --separate-stderr fsw --path "$SCOPE/x" --content x --
  [ "$(cat "$SCOPE/x")" = x ]
  rm "$SCOPE/x"
  assert_usage_error "unexpected argument '--content'" --path "$SCOPE/x" -- --content x
  assert_usage_error "unexpected argument 'extra'" --path "$SCOPE/x" --content x extra
}

@test "a value outside the schema's enum is a usage error" {
  assert_usage_error "option '--encoding' must be one of 'utf-8', 'base64'" --path "$SCOPE/x" --content x --encoding hex
}

@test "every example in fs-file-write(1) runs in a jail and prints what the page says" {
  check_man_examples fs-file-write 3 "s|/srv/reports|$SCOPE|g"
  # What the page says was written is on the host.
  [ "$(cat "$SCOPE/2026/week-48.md")" = "# Week 48" ]
  [ "$(base64 <"$SCOPE/logo.bin")" = "iVBORw==" ]
  [ ! -e /etc/cron.d/job ]
}
