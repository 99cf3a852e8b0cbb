#!/usr/bin/env bats
# fs-dir-list through the real stub, broker and jail. Listings are confined like fs-file-write's
# writes: a symlinked or mounted directory on the way is refused with 77 and a kind=deny record;
# inside a listing a symlink is reported as one and never followed; the recursive walk is bounded
# in depth and entries, and says when it was cut short. Attacks are planted from the host side and
# from inside the jail, including a race that swaps a directory for a symlink while listing.
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

fdl() {
  viv run --agent "$AGENT" -- fs-dir-list "$@"
}

# names: the entries of the listing in $output as "name type size" lines.
names() {
  jq -r '.entries[] | "\(.name) \(.type) \(.size // "-")"' <<<"$output"
}

@test "the granted directory is listed with each entry's type and size, symlinks not followed" {
  mkdir "$SCOPE/dir"
  printf 'hello' >"$SCOPE/file"
  ln -s "$OUTSIDE" "$SCOPE/link"
  mkfifo "$SCOPE/fifo"
  touch -d '2025-01-02T03:04:05Z' "$SCOPE/file"
  run -0 --separate-stderr fdl --path "$SCOPE"
  [ "$stderr" = "" ]
  [ "$(names)" = "$(printf 'dir directory -\nfifo fifo -\nfile file 5\nlink symlink -')" ]
  [ "$(jq -r '.entries[] | select(.name == "file") | .mtime' <<<"$output")" = 2025-01-02T03:04:05.000Z ]
  [ "$(jq -r '"\(.path) \(.truncated)"' <<<"$output")" = "$SCOPE false" ]
  run -0 viv-log --agent "$AGENT" --cap fs-dir-list
  [[ "$output" == *" kind=call cap=fs-dir-list "*"args.path=$SCOPE"* ]]
  [[ "$output" == *" kind=result cap=fs-dir-list "*"exit=0"* ]]
}

@test "a recursive listing walks subdirectories, never through a symlink to outside" {
  mkdir -p "$SCOPE/a/b" "$OUTSIDE/deep"
  echo x >"$SCOPE/a/b/c.txt"
  echo y >"$OUTSIDE/deep/z"
  ln -s "$OUTSIDE" "$SCOPE/a/out"
  ln -s /proc/self/root "$SCOPE/root"
  run -0 --separate-stderr fdl --path "$SCOPE" --recursive
  [ "$(names)" = "$(printf 'a directory -\na/b directory -\na/b/c.txt file 2\na/out symlink -\nroot symlink -')" ]
  run -0 --separate-stderr fdl --path "$SCOPE/a/b"
  [ "$(names)" = "c.txt file 2" ]
}

@test "a deep tree is cut at 16 levels and a wide one at 10000 entries, each saying truncated" {
  local d="$SCOPE/deep" i
  for i in $(seq 1 20); do d="$d/$i"; done
  mkdir -p "$d"
  run -0 --separate-stderr fdl --path "$SCOPE/deep" --recursive
  [ "$(jq -r .truncated <<<"$output")" = true ]
  [ "$(jq -r '.entries | length' <<<"$output")" -eq 17 ]
  [ "$(jq -r '.entries[-1].name' <<<"$output")" = "$(seq -s / 1 17)" ]
  # A tree within the bound is not truncated.
  run -0 --separate-stderr fdl --path "$SCOPE/deep/1/2/3/4/5" --recursive
  [ "$(jq -c '[(.entries | length), .truncated]' <<<"$output")" = '[15,false]' ]
  mkdir "$SCOPE/wide"
  python3 -c 'import os, sys
for i in range(10001): open(os.path.join(sys.argv[1], "f%05d" % i), "w").close()' "$SCOPE/wide"
  run -0 --separate-stderr fdl --path "$SCOPE/wide"
  [ "$(jq -c '[(.entries | length), .truncated, .entries[0].name, .entries[-1].name]' <<<"$output")" = '[10000,true,"f00000","f09999"]' ]
  rm "$SCOPE/wide/f10000"
  run -0 --separate-stderr fdl --path "$SCOPE/wide"
  [ "$(jq -c '[(.entries | length), .truncated]' <<<"$output")" = '[10000,false]' ]
}

@test "a missing directory and a file are bad data (65), not denials" {
  echo x >"$SCOPE/file"
  assert_fails 65 fs-dir-list "cannot list '$SCOPE/nope': '$SCOPE/nope' does not exist" --path "$SCOPE/nope"
  assert_fails 65 fs-dir-list "cannot list '$SCOPE/file': '$SCOPE/file' is a regular file, not a directory" --path "$SCOPE/file"
  [ -z "$(deny_reasons)" ]
}

@test "'..', siblings, relative paths and /proc are refused by the scope check" {
  assert_fails 77 fs-dir-list "cannot list '$SCOPE/..': path has a '..' component" --path "$SCOPE/.."
  assert_fails 77 fs-dir-list "cannot list '$OUTSIDE': outside granted path '$SCOPE'" --path "$OUTSIDE"
  mkdir "$HOST/scope-evil"
  assert_fails 77 fs-dir-list "cannot list '$HOST/scope-evil': outside granted path '$SCOPE'" --path "$HOST/scope-evil"
  assert_fails 77 fs-dir-list "cannot list 'scope': path not an absolute path" --path scope
  assert_fails 77 fs-dir-list "cannot list '/proc/self/root$SCOPE': outside granted path '$SCOPE'" --path "/proc/self/root$SCOPE"
  assert_fails 77 fs-dir-list "cannot list '/proc/1/fd': outside granted path '$SCOPE'" --path /proc/1/fd
  assert_fails 77 fs-dir-list "cannot list '$HOST': outside granted path '$SCOPE'" --path "$HOST"
}

@test "a symlinked directory, on the way or at the end, and a mount point are refused" {
  ln -s "$OUTSIDE" "$SCOPE/link"
  assert_fails 77 fs-dir-list "cannot list '$SCOPE/link': '$SCOPE/link' is a symlink" --path "$SCOPE/link"
  assert_fails 77 fs-dir-list "cannot list '$SCOPE/link/deep': '$SCOPE/link' is a symlink" --path "$SCOPE/link/deep"
  ln -s /proc/self/cwd "$SCOPE/cwd"
  assert_fails 77 fs-dir-list "cannot list '$SCOPE/cwd': '$SCOPE/cwd' is a symlink" --path "$SCOPE/cwd"
  mkdir "$SCOPE/mnt"
  mount --bind "$OUTSIDE" "$SCOPE/mnt"
  assert_fails 77 fs-dir-list "cannot list '$SCOPE/mnt': '$SCOPE/mnt' crosses a mount point" --path "$SCOPE/mnt"
  assert_fails 77 fs-dir-list "cannot list '$SCOPE': '$SCOPE/mnt' crosses a mount point" --path "$SCOPE" --recursive
  run -0 viv-log --agent "$AGENT" --json
  [[ "$output" != *secret* ]]
}

@test "a granted directory replaced by a symlink from inside the jail is refused" {
  fs_overlap
  run -0 --separate-stderr viv run --agent "$AGENT" -- bash -c '
    ln -s "$2" /workspace/out
    fs-dir-list --path "$1/out" --recursive
    echo "$?"
  ' _ "$WS" "$OUTSIDE"
  [ "$output" = 77 ]
  [ "${stderr_lines[0]}" = "fs-dir-list: cannot list '$WS/out': granted path '$WS/out' contains a symlink" ]
  assert_deny_logged fs-dir-list "cannot list '$WS/out': granted path '$WS/out' contains a symlink"
}

@test "a directory swapped with a symlink while listing never lists the outside" {
  fs_overlap
  local n=200
  mkdir -p "$OUTSIDE/escaped-dir"
  run -0 viv run --agent "$AGENT" -- bash -c '
    ws=$1 n=$2 swap=$3 outside=$4
    mkdir -p /workspace/out/d/inner
    ln -s "$outside" /workspace/out/l
    python3 -c "$swap" /workspace/out d l /workspace/stop >/workspace/swaps &
    swapper=$!
    ok=0 denied=0 other=0
    for i in $(seq 1 "$n"); do
      fs-dir-list --path "$ws/out" --recursive >>/workspace/lists 2>>/workspace/errors
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
  [ "$ok" -gt 0 ]
  # Every listing saw only the real directory, under one name or the other (or both, when a swap
  # fell between two entries), and never anything of the outside.
  [ "$(grep -c -e escaped -e secret "$WS/lists" || true)" -eq 0 ]
  [ "$(jq -r '.entries[].name' "$WS/lists" | sort -u | tr '\n' ' ')" = "d d/inner l l/inner " ]
  [ "$(jq -c '.entries[] | select(.type == "symlink" and (.name | contains("/")))' "$WS/lists" | wc -l)" -eq 0 ]
  [ "$(grep -vc "^fs-dir-list: cannot list '$WS/out': '$WS/out/[dl]' is a symlink$" "$WS/errors" || true)" -eq 0 ]
  [ "$(deny_reasons | wc -l)" -eq "$denied" ]
}

@test "viv caps lists fs-dir-list as low risk and usage errors are 64" {
  run -0 viv caps
  [[ "$output" == *$'fs-dir-list\trisk=low\tscopes=path\t'* ]]
  run -64 --separate-stderr fdl --path "$SCOPE" --recursive=yes
  [ "$stderr" = "fs-dir-list: option '--recursive' is a flag and takes no value" ]
  run -64 --separate-stderr fdl --path "$SCOPE" --depth 3
  [ "$stderr" = "fs-dir-list: unknown option '--depth'" ]
}

@test "every example in fs-dir-list(1) runs in a jail and prints what the page says" {
  printf 'buy milk\n' >"$SCOPE/todo.md"
  printf '\211PNG\r\n\032\n' >"$SCOPE/logo.png"
  head -c 59 /dev/zero >>"$SCOPE/logo.png"
  ln -s /etc/passwd "$SCOPE/passwd"
  mkdir "$SCOPE/archive"
  echo old >"$SCOPE/archive/2025.md"
  check_man_examples fs-dir-list 2 "s|/srv/notes|$SCOPE|g"
}
