#!/usr/bin/env bats
# fs-file-read through the real stub, broker and jail. Reads are confined exactly like
# fs-file-write's writes: every refusal is one stderr line with exit 77, recorded as a kind=deny
# security event, and the host is checked unchanged afterwards. Attacks are planted from the host
# side (links, special files, mounts, /proc) and from inside the jail when the agent's workspace
# overlaps its scope, including a race that swaps a directory for a symlink while reading. A FIFO
# is refused without ever blocking; a huge file is read up to the cap and said to be truncated.
#
# Scripts passed to `bash -c` inside the jail are single-quoted on purpose: their variables expand
# in the jail. bats' `run` sets stderr and stderr_lines.
# shellcheck disable=SC2016,SC2154

load ../../test/bats/helpers
load ../../test/bats/fs-helpers

setup() {
  fs_setup
}

teardown() {
  fs_teardown
}

fsr() {
  viv run --agent "$AGENT" -- fs-file-read "$@"
}

# ---------------------------------------------------------------------------------------------
# Allowed behaviour

@test "a file is read as UTF-8 text and the call is recorded" {
  printf 'héllo\nworld\n' >"$SCOPE/note.md"
  run -0 --separate-stderr fsr --path "$SCOPE/note.md"
  [ "$output" = "{\"path\":\"$SCOPE/note.md\",\"encoding\":\"utf-8\",\"content\":\"héllo\\nworld\\n\",\"bytes_read\":13,\"size\":13,\"truncated\":false}" ]
  [ "$stderr" = "" ]
  [ "$(jq -j .content <<<"$output" | sha256sum)" = "$(sha256sum <"$SCOPE/note.md")" ]
  run -0 viv-log --agent "$AGENT" --cap fs-file-read
  [[ "$output" == *" kind=call cap=fs-file-read "*"args.path=$SCOPE/note.md"* ]]
  [[ "$output" == *" kind=result cap=fs-file-read "*"exit=0"* ]]
}

# syncs_of CALL_JSON: runs one call on a fresh connection of the agent's socket (HELLO and CALL
# back to back) with the broker's every thread traced, and prints its fsync and fdatasync counts,
# then what each synced (the log's WAL as 'wal', a directory as 'dir', a file as 'file'), then
# the syncs in the order they ran, each one ended before the next began unless marked '~'.
syncs_of() {
  local trace=$BATS_TEST_TMPDIR/syncs.$RANDOM
  strace -f -qq -y -e trace=fsync,fdatasync -o "$trace" -p "$BROKER_PID" 2>/dev/null &
  local tracer=$!
  wait_for grep -q "^TracerPid:[[:space:]]*$tracer\$" "/proc/$BROKER_PID/status"
  node "$VIV_ROOT/test/raw-client.mjs" "$STATE/agents/$AGENT/run/broker.sock" "hellocall:$1" read >"$trace.out"
  kill -TERM "$tracer"
  wait "$tracer" || true
  grep -q '"type":"result","exit":0' "$trace.out"
  echo "fsync=$(grep -c ' fsync(' "$trace") fdatasync=$(grep -c ' fdatasync(' "$trace")"
  sed -nE 's/.*sync\([0-9]+<([^>]*)>.*/\1/p' "$trace" | while read -r path; do
    if [[ $path == "$STATE/audit.db-wal" ]]; then echo wal
    elif [ -d "$path" ]; then echo dir
    else echo file; fi
  done | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}'
  echo
  sed -nE 's/.*sync\([0-9]+<([^>]*)>(.*)/\1 \2/p' "$trace" | while read -r path rest; do
    local kind=file
    if [[ $path == "$STATE/audit.db-wal" ]]; then kind=wal; elif [ -d "$path" ]; then kind=dir; fi
    [[ $rest == *unfinished* ]] && kind="~$kind"
    printf '%s ' "$kind"
  done
  echo
}

@test "a read's intent and outcome are made durable by one sync, a write's by two around its own" {
  command -v strace >/dev/null || skip "strace is not installed"
  printf 'one sync\n' >"$SCOPE/note.md"
  run -0 syncs_of "[\"fs-file-read\",\"--path\",\"$SCOPE/note.md\"]"
  [ "${lines[0]}" = "fsync=1 fdatasync=0" ]
  [ "${lines[1]}" = "wal=1 " ]
  # The control: a write's intent is durable before it runs, the file and its directory are
  # synced, then its outcome (so the trace does see every sync).
  run -0 syncs_of "[\"fs-file-write\",\"--path\",\"$SCOPE/out.md\",\"--content\",\"x\"]"
  [ "${lines[0]}" = "fsync=3 fdatasync=1" ]
  [ "${lines[1]}" = "dir=1 file=1 wal=2 " ]
  # The intent's sync ends before the file is synced, and the outcome's begins after the directory's.
  [ "${lines[2]}" = "wal file dir wal " ]
  run -0 viv-log --agent "$AGENT" --cap fs-file-read
  [[ "${lines[0]}" == *" kind=call cap=fs-file-read "* ]]
  [[ "${lines[1]}" == *" kind=result cap=fs-file-read "*"exit=0"* ]]
}

@test "a write's effect waits for its intent's sync, and its reply for its outcome's: each sync held 100 ms" {
  command -v strace >/dev/null || skip "strace is not installed"
  local trace=$BATS_TEST_TMPDIR/held
  # delay_exit holds every fsync and fdatasync 100 ms after it is done, before the broker sees it return.
  strace -f -qq -ttt -y -e trace=fsync,fdatasync,renameat,sendto -e inject=fsync,fdatasync:delay_exit=100000 -o "$trace" -p "$BROKER_PID" 2>/dev/null &
  local tracer=$!
  wait_for grep -q "^TracerPid:[[:space:]]*$tracer\$" "/proc/$BROKER_PID/status"
  node "$VIV_ROOT/test/raw-client.mjs" "$STATE/agents/$AGENT/run/broker.sock" "hellocall:[\"fs-file-write\",\"--path\",\"$SCOPE/held.md\",\"--content\",\"x\"]" read >"$trace.out"
  kill -TERM "$tracer"
  wait "$tracer" || true
  grep -q '"type":"result","exit":0' "$trace.out"
  # Start times (-ttt) of the log's syncs, of the rename (the effect) and of the RESULT's send.
  local wal rename reply
  wal=$(grep "sync([0-9]*<$STATE/audit.db-wal>" "$trace" | awk '{print $2}' | paste -sd ' ')
  rename=$(grep -m1 ' renameat(' "$trace" | awk '{print $2}')
  reply=$(grep ' sendto(' "$trace" | tail -n 1 | awk '{print $2}')
  read -r intent outcome extra <<<"$wal"
  echo "log syncs at $wal; rename at $rename; reply at $reply"
  # Two commits: the hello with the intent, and the outcome.
  [ -n "$outcome" ]
  [ -z "$extra" ]
  [ -n "$rename" ]
  [ -n "$reply" ]
  # Each waited out the 100 ms its sync was held.
  awk -v a="$intent" -v b="$rename" 'BEGIN { exit !(b - a >= 0.1) }'
  awk -v a="$outcome" -v b="$reply" 'BEGIN { exit !(b - a >= 0.1) }'
  [ "$(cat "$SCOPE/held.md")" = x ]
}

@test "a file in a subdirectory, an empty file and a byte-order mark are read exactly" {
  mkdir -p "$SCOPE/a/b"
  printf '\357\273\277bom' >"$SCOPE/a/b/bom.txt"
  : >"$SCOPE/a/empty"
  run -0 --separate-stderr fsr --path "$SCOPE/a/b/bom.txt"
  [ "$(jq -j .content <<<"$output" | od -An -tx1 | tr -d ' \n')" = efbbbf626f6d ]
  run -0 --separate-stderr fsr --path "$SCOPE/a/empty"
  [ "$(jq -c '[.content, .bytes_read, .size, .truncated]' <<<"$output")" = '["",0,0,false]' ]
}

@test "invalid UTF-8 is bad data (65) telling to use base64, and base64 gives the exact bytes" {
  printf 'ok \377\376 not text\000' >"$SCOPE/blob"
  assert_fails 65 fs-file-read "cannot read '$SCOPE/blob': not valid UTF-8 text; read it with --encoding base64" --path "$SCOPE/blob"
  [ -z "$(deny_reasons)" ]
  run -0 --separate-stderr fsr --path "$SCOPE/blob" --encoding base64
  [ "$(jq -r .content <<<"$output" | base64 -d | sha256sum)" = "$(sha256sum <"$SCOPE/blob")" ]
  [ "$(jq -c '[.encoding, .bytes_read, .truncated]' <<<"$output")" = '["base64",15,false]' ]
}

@test "--max-bytes cuts the read, says so, and never cuts a character in half" {
  printf 'aé€😀z' >"$SCOPE/chars"   # 1 + 2 + 3 + 4 + 1 bytes
  local n expected=(0 1 1 3 3 3 6 6 6 6 10 11)
  for n in 0 1 2 3 4 5 6 7 8 9 10 11; do
    run -0 --separate-stderr fsr --path "$SCOPE/chars" --max-bytes "$n"
    [ "$(jq -r .bytes_read <<<"$output")" = "${expected[$n]}" ]
    [ "$(jq -r .size <<<"$output")" = 11 ]
    [ "$(jq -r .truncated <<<"$output")" = "$([ "$n" -lt 11 ] && echo true || echo false)" ]
    [ "$(jq -j .content <<<"$output")" = "$(head -c "${expected[$n]}" "$SCOPE/chars")" ]
  done
  run -0 --separate-stderr fsr --path "$SCOPE/chars" --max-bytes 5 --encoding base64
  [ "$(jq -r .content <<<"$output" | base64 -d | od -An -tx1 | tr -s ' ')" = " 61 c3 a9 e2 82" ]
}

@test "a huge file is read up to the default cap of 256 KiB, or 1 MiB at most, never whole" {
  truncate -s 10G "$SCOPE/huge"
  run -0 --separate-stderr fsr --path "$SCOPE/huge" --encoding base64
  [ "$(jq -c '[.bytes_read, .size, .truncated]' <<<"$output")" = '[262144,10737418240,true]' ]
  run -0 --separate-stderr fsr --path "$SCOPE/huge" --encoding base64 --max-bytes 1048576
  [ "$(jq -c '[.bytes_read, .truncated]' <<<"$output")" = '[1048576,true]' ]
  [ "$(jq -r .content <<<"$output" | base64 -d | tr -d '\0' | wc -c)" -eq 0 ]
  # NUL bytes are valid UTF-8, and escaping them must still fit one reply.
  run -0 --separate-stderr fsr --path "$SCOPE/huge" --max-bytes 100000
  [ "$(jq -c '[.bytes_read, .truncated]' <<<"$output")" = '[100000,true]' ]
  assert_fails 65 fs-file-read "cannot read '$SCOPE/huge': its text escapes to more JSON than one reply holds; read it with --encoding base64 or a smaller --max-bytes" --path "$SCOPE/huge" --max-bytes 1048576
  run -64 --separate-stderr fsr --path "$SCOPE/huge" --max-bytes 1048577
  [ "$stderr" = "fs-file-read: option '--max-bytes' must be at most 1048576" ]
}

@test "a missing file and a directory are bad data (65), not denials" {
  mkdir "$SCOPE/dir"
  assert_fails 65 fs-file-read "cannot read '$SCOPE/nope': '$SCOPE/nope' does not exist" --path "$SCOPE/nope"
  assert_fails 65 fs-file-read "cannot read '$SCOPE/no/such': '$SCOPE/no' does not exist" --path "$SCOPE/no/such"
  assert_fails 65 fs-file-read "cannot read '$SCOPE/dir': '$SCOPE/dir' is a directory" --path "$SCOPE/dir"
  [ -z "$(deny_reasons)" ]
}

# ---------------------------------------------------------------------------------------------
# Refused by the scope check

@test "'..', relative paths, siblings, /proc and the granted directory itself are refused" {
  assert_fails 77 fs-file-read "cannot read '$SCOPE/../outside/secret': path has a '..' component" --path "$SCOPE/../outside/secret"
  assert_fails 77 fs-file-read "cannot read '$OUTSIDE/secret': outside granted path '$SCOPE'" --path "$OUTSIDE/secret"
  mkdir "$HOST/scope-evil"
  echo evil >"$HOST/scope-evil/x"
  assert_fails 77 fs-file-read "cannot read '$HOST/scope-evil/x': outside granted path '$SCOPE'" --path "$HOST/scope-evil/x"
  assert_fails 77 fs-file-read "cannot read 'scope/x': path not an absolute path" --path scope/x
  assert_fails 77 fs-file-read "cannot read '/proc/self/root$OUTSIDE/secret': outside granted path '$SCOPE'" --path "/proc/self/root$OUTSIDE/secret"
  assert_fails 77 fs-file-read "cannot read '/proc/1/environ': outside granted path '$SCOPE'" --path /proc/1/environ
  assert_fails 77 fs-file-read "cannot read '/etc/shadow': outside granted path '$SCOPE'" --path /etc/shadow
  assert_fails 77 fs-file-read "cannot read '$SCOPE': outside granted path '$SCOPE'" --path "$SCOPE"
  [ "$(deny_reasons | wc -l)" -eq 8 ]
}

# ---------------------------------------------------------------------------------------------
# Refused by the confined read: links, special files and mounts planted in the scope

@test "a symlink leaf, dangling or not, is refused and nothing of its target is read" {
  ln -s "$OUTSIDE/secret" "$SCOPE/leaf"
  ln -s "$OUTSIDE/nothing" "$SCOPE/dangling"
  assert_fails 77 fs-file-read "cannot read '$SCOPE/leaf': '$SCOPE/leaf' is a symlink" --path "$SCOPE/leaf"
  assert_fails 77 fs-file-read "cannot read '$SCOPE/dangling': '$SCOPE/dangling' is a symlink" --path "$SCOPE/dangling"
  run -0 viv-log --agent "$AGENT" --json
  [[ "$output" != *"outside secret"* ]]
  [ "$(jq -r 'select(.kind == "deny") | .stage' <<<"$output" | sort -u)" = execute ]
}

@test "a symlink ancestor and magic links to /proc are refused" {
  ln -s "$OUTSIDE" "$SCOPE/link"
  assert_fails 77 fs-file-read "cannot read '$SCOPE/link/secret': '$SCOPE/link' is a symlink" --path "$SCOPE/link/secret"
  ln -s /proc/self/root "$SCOPE/root"
  assert_fails 77 fs-file-read "cannot read '$SCOPE/root$OUTSIDE/secret': '$SCOPE/root' is a symlink" --path "$SCOPE/root$OUTSIDE/secret"
  ln -s /proc/self/environ "$SCOPE/environ"
  assert_fails 77 fs-file-read "cannot read '$SCOPE/environ': '$SCOPE/environ' is a symlink" --path "$SCOPE/environ"
}

@test "a hard link is refused: a second name inside the scope for a file that may live outside it" {
  ln "$OUTSIDE/secret" "$SCOPE/hardlink"
  assert_fails 77 fs-file-read "cannot read '$SCOPE/hardlink': '$SCOPE/hardlink' has 2 hard links" --path "$SCOPE/hardlink"
}

@test "a FIFO with no writer is refused at once, never blocking the broker" {
  mkfifo "$SCOPE/fifo"
  local start
  start=$(date +%s)
  assert_fails 77 fs-file-read "cannot read '$SCOPE/fifo': '$SCOPE/fifo' is a FIFO" --path "$SCOPE/fifo"
  [ $(($(date +%s) - start)) -lt 10 ]
  # The broker still answers other calls.
  echo fine >"$SCOPE/after"
  run -0 fsr --path "$SCOPE/after"
}

@test "sockets and device nodes are refused and never opened" {
  python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$SCOPE/sock"
  mknod "$SCOPE/zero" c 1 5
  mknod "$SCOPE/loop" b 7 0
  assert_fails 77 fs-file-read "cannot read '$SCOPE/sock': '$SCOPE/sock' is a socket" --path "$SCOPE/sock"
  assert_fails 77 fs-file-read "cannot read '$SCOPE/zero': '$SCOPE/zero' is a character device" --path "$SCOPE/zero"
  assert_fails 77 fs-file-read "cannot read '$SCOPE/loop': '$SCOPE/loop' is a block device" --path "$SCOPE/loop"
}

@test "a mount point inside the scope is refused" {
  mkdir "$SCOPE/mnt"
  mount --bind "$OUTSIDE" "$SCOPE/mnt"
  assert_fails 77 fs-file-read "cannot read '$SCOPE/mnt/secret': '$SCOPE/mnt' crosses a mount point" --path "$SCOPE/mnt/secret"
}

# ---------------------------------------------------------------------------------------------
# The agent's own workspace overlaps its scope: attacks from inside the jail

@test "links planted from inside the jail in an overlapping workspace are refused" {
  fs_overlap
  run -0 --separate-stderr viv run --agent "$AGENT" -- bash -c '
    ws=$1 outside=$2
    mkdir -p /workspace/out
    ln -s /etc/shadow /workspace/out/shadow
    ln -s "$outside" /workspace/out/o
    ln -s /proc/self/root /workspace/out/root
    echo mine >/workspace/keep
    ln /workspace/keep /workspace/out/hard
    for p in "$ws/out/shadow" "$ws/out/o/secret" "$ws/out/root/etc/shadow" "$ws/out/hard"; do
      fs-file-read --path "$p"
      echo "$?"
    done
  ' _ "$WS" "$OUTSIDE"
  [ "$(echo "$output" | tr '\n' ' ')" = "77 77 77 77 " ]
  [ "${stderr_lines[0]}" = "fs-file-read: cannot read '$WS/out/shadow': '$WS/out/shadow' is a symlink" ]
  [ "${stderr_lines[1]}" = "fs-file-read: cannot read '$WS/out/o/secret': '$WS/out/o' is a symlink" ]
  [ "${stderr_lines[2]}" = "fs-file-read: cannot read '$WS/out/root/etc/shadow': '$WS/out/root' is a symlink" ]
  [ "${stderr_lines[3]}" = "fs-file-read: cannot read '$WS/out/hard': '$WS/out/hard' has 2 hard links" ]
  [ "$(deny_reasons | wc -l)" -eq 4 ]
}

@test "a directory swapped with a symlink while reading never lets a read escape" {
  fs_overlap
  local n=300
  # In the jail, SWAP_LOOP exchanges out/d (a directory) and out/l (a symlink to $OUTSIDE) while the calls run.
  run -0 viv run --agent "$AGENT" -- bash -c '
    ws=$1 n=$2 swap=$3 outside=$4
    mkdir -p /workspace/out/d
    echo inside >/workspace/out/d/secret
    ln -s "$outside" /workspace/out/l
    python3 -c "$swap" /workspace/out d l /workspace/stop >/workspace/swaps &
    swapper=$!
    ok=0 denied=0 other=0
    for i in $(seq 1 "$n"); do
      fs-file-read --path "$ws/out/d/secret" >>/workspace/read 2>>/workspace/errors
      case $? in
        0) ok=$((ok + 1)) ;;
        77) denied=$((denied + 1)) ;;
        *) other=$((other + 1)) ;;
      esac
    done
    touch /workspace/stop
    wait "$swapper"
    echo "ok=$ok denied=$denied other=$other"
  ' _ "$WS" "$n" "$SWAP_LOOP" "$OUTSIDE"
  [[ "$output" =~ ^ok=([0-9]+)\ denied=([0-9]+)\ other=0$ ]]
  local ok=${BASH_REMATCH[1]} denied=${BASH_REMATCH[2]}
  [ "$(cat "$WS/swaps")" -gt 0 ]
  # Both outcomes happened, so the race was real.
  [ "$ok" -gt 0 ]
  [ "$denied" -gt 0 ]
  # Every read that succeeded read the file inside; none read the outside secret.
  [ "$(jq -c .content "$WS/read" | sort | uniq -c | tr -s ' ')" = " $ok \"inside\\n\"" ]
  [ "$(grep -c "^fs-file-read: cannot read '$WS/out/d/secret': '$WS/out/d' is a symlink$" "$WS/errors")" -eq "$denied" ]
  [ "$(deny_reasons | wc -l)" -eq "$denied" ]
}

@test "a file swapped with a FIFO while reading never blocks and never reads the FIFO" {
  fs_overlap
  local n=200
  # In the jail, SWAP_LOOP exchanges out/f (a regular file) and out/p (a FIFO nobody writes) while the calls run.
  run -0 viv run --agent "$AGENT" -- bash -c '
    ws=$1 n=$2 swap=$3
    mkdir -p /workspace/out
    echo content >/workspace/out/f
    mkfifo /workspace/out/p
    python3 -c "$swap" /workspace/out f p /workspace/stop >/workspace/swaps &
    swapper=$!
    ok=0 denied=0 other=0
    for i in $(seq 1 "$n"); do
      timeout 10 fs-file-read --path "$ws/out/f" >>/workspace/read 2>>/workspace/errors
      case $? in
        0) ok=$((ok + 1)) ;;
        77) denied=$((denied + 1)) ;;
        *) other=$((other + 1)) ;;
      esac
    done
    touch /workspace/stop
    wait "$swapper"
    echo "ok=$ok denied=$denied other=$other"
  ' _ "$WS" "$n" "$SWAP_LOOP"
  [[ "$output" =~ ^ok=([0-9]+)\ denied=([0-9]+)\ other=0$ ]]
  local ok=${BASH_REMATCH[1]} denied=${BASH_REMATCH[2]}
  [ "$(cat "$WS/swaps")" -gt 0 ]
  [ "$ok" -gt 0 ]
  [ "$denied" -gt 0 ]
  [ "$(jq -c .content "$WS/read" | sort -u)" = '"content\n"' ]
  [ "$(grep -vc "^fs-file-read: cannot read '$WS/out/f': '$WS/out/f' is a FIFO$" "$WS/errors" || true)" -eq 0 ]
}

# ---------------------------------------------------------------------------------------------
# Interface

@test "usage errors are 64: unknown option, bad encoding, negative or fractional --max-bytes" {
  run -64 --separate-stderr fsr --path "$SCOPE/x" --offset 3
  [ "$stderr" = "fs-file-read: unknown option '--offset'" ]
  run -64 --separate-stderr fsr --path "$SCOPE/x" --encoding latin1
  [ "$stderr" = "fs-file-read: option '--encoding' must be one of 'utf-8', 'base64'" ]
  run -64 --separate-stderr fsr --path "$SCOPE/x" --max-bytes -1
  [ "$stderr" = "fs-file-read: option '--max-bytes' must be at least 0" ]
  run -64 --separate-stderr fsr --path "$SCOPE/x" --max-bytes 1.5
  [ "$stderr" = "fs-file-read: option '--max-bytes' needs a whole number, not '1.5'" ]
}

@test "viv caps lists fs-file-read as low risk and the jail can read its schema" {
  run -0 viv caps
  [[ "$output" == *$'fs-file-read\trisk=low\tscopes=path\t'* ]]
  run -0 --separate-stderr fsr --help
  [ "$(jq -r '."x-vivary-risk"' <<<"$output")" = low ]
}

@test "every example in fs-file-read(1) runs in a jail and prints what the page says" {
  printf 'buy milk\n' >"$SCOPE/todo.md"
  printf '\211PNG\r\n\032\n' >"$SCOPE/logo.png"
  head -c 59 /dev/zero >>"$SCOPE/logo.png"
  ln -s /etc/passwd "$SCOPE/passwd"
  check_man_examples fs-file-read 3 "s|/srv/notes|$SCOPE|g"
}
