#!/usr/bin/env bats
# `workspace "PATH" owner="keep"`: the operator's own directory, lent to a jail through an
# idmapped mount. Checked from both sides: inside, the owner's files are the agent's and nothing
# else is; on the host, what the agent made is the owner's, and no mount outlives the run (a
# normal end, a SIGKILL of viv run, the kill switch). A filesystem that cannot be idmapped, a
# workspace root owns, and a workspace without owner="keep" that the agent does not own are
# refused. The owner and a third user are numeric uids no one else on the host has. The suite runs on
# either backend (VIV_BACKEND; scripts/test.sh runs it on both).
#
# Scripts passed to `sh -c` inside the jail are single-quoted on purpose: they expand in the jail.
# shellcheck disable=SC2016,SC2154

load helpers

setup() {
  viv_setup
  AGENT="wo$(od -An -N5 -tx1 /dev/urandom | tr -d ' \n')"
  # Owner, its group and a third uid: below the agents' range (200000 and up), in no one's use.
  OWN=$((150000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 20000 * 3))
  OGID=$((OWN + 1))
  THIRD=$((OWN + 2))
  # The workspace sits in a directory the agent's uid cannot even enter: root mounts it.
  PRIVATE="$BATS_TEST_TMPDIR/private"
  WS="$PRIVATE/ws"
  mkdir -p "$WS"
  chmod 0700 "$PRIVATE"
  echo owner-secret >"$WS/mine"
  chmod 0600 "$WS/mine"
  chown -R "$OWN:$OGID" "$WS"
  chmod 0750 "$WS"
  echo third-party >"$WS/third"
  chown "$THIRD:$THIRD" "$WS/third"
  chmod 0644 "$WS/third"
  echo outside-secret >"$PRIVATE/secret"
  ln -s "$PRIVATE/secret" "$WS/out"
  chown -h "$OWN:$OGID" "$WS/out"
  write_policy keep
  start_broker
  AUID=$(agent_uid "$AGENT")
  [ -n "$AUID" ]
  export AGENT WS OWN OGID THIRD AUID PRIVATE
}

teardown() {
  if [ -n "${VIV_PID:-}" ]; then kill -KILL "$VIV_PID" 2>/dev/null || true; fi
  local p
  for p in $(pgrep -u "${AUID:-none}" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
  stop_broker
  # Whatever a failed test left mounted below its directory.
  local m
  for m in $(lent_mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
  if [ -n "${RAMFS:-}" ]; then umount -l "$RAMFS" 2>/dev/null || true; fi
}

# write_policy OWNER: the agent with the workspace (owner=OWNER, or none for "") and fs-file-write on it.
write_policy() {
  local owner=""
  [ -n "$1" ] && owner=" owner=\"$1\""
  cat >"$POLICY" <<KDL
agent "$AGENT" {
    workspace "${2:-$WS}"$owner
    grant "fs-file-write" {
        path "${2:-$WS}"
    }
}
KDL
}

jail() {
  viv run --agent "$AGENT" -- "$@"
}

# lent_mounts: mount points below this test's directory, as the host's mount table has them.
lent_mounts() {
  awk -v d="$BATS_TEST_TMPDIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo
}

no_lent_mounts() {
  [ -z "$(lent_mounts)$(ls -A "$STATE/agents/$AGENT/mnt" 2>/dev/null)" ]
}

no_agent_processes() {
  ! pgrep -u "$AUID" >/dev/null
}

has_lent_mount() {
  [ -n "$(lent_mounts)" ]
}

@test "inside the jail the owner's workspace and files are the agent's, and it reads them" {
  run -0 jail sh -c 'stat -c "%u:%g %a" /workspace /workspace/mine; cat /workspace/mine; id -u'
  [ "${lines[0]}" = "1000:1000 750" ]
  [ "${lines[1]}" = "1000:1000 600" ]
  [ "${lines[2]}" = owner-secret ]
  [ "${lines[3]}" = 1000 ]
  no_lent_mounts
}

@test "what the agent creates and changes is the workspace owner's on the host, not the agent's" {
  run -0 jail sh -c 'echo made >/workspace/new && mkdir /workspace/d && echo deep >/workspace/d/f && echo more >>/workspace/mine && echo ok'
  [ "$output" = ok ]
  [ "$(stat -c '%u:%g' "$WS/new" "$WS/d" "$WS/d/f" "$WS/mine" "$WS")" = "$(printf '%s\n' "$OWN:$OGID" "$OWN:$OGID" "$OWN:$OGID" "$OWN:$OGID" "$OWN:$OGID")" ]
  [ "$(cat "$WS/new")" = made ]
  [ "$(printf 'owner-secret\nmore')" = "$(cat "$WS/mine")" ]
  # Nothing anywhere belongs to the agent's host uid.
  [ -z "$(find "$PRIVATE" -uid "$AUID" -print -quit)" ]
}

@test "a third uid's file shows as nobody's and the agent cannot write it" {
  run -0 --separate-stderr jail sh -c 'stat -c "%u:%g" /workspace/third; cat /workspace/third; echo x >>/workspace/third && echo wrote; chmod 666 /workspace/third && echo chmodded; true'
  [ "${lines[0]}" = "65534:65534" ]
  [ "${lines[1]}" = third-party ]
  [ "${#lines[@]}" -eq 2 ]
  [ "$(cat "$WS/third")" = third-party ]
  [ "$(stat -c '%u:%g %a' "$WS/third")" = "$THIRD:$THIRD 644" ]
}

@test "the agent can chown nothing and a setuid file in the workspace gives it nothing" {
  cp /usr/bin/id "$WS/suid-id"
  chown "$THIRD:$THIRD" "$WS/suid-id"
  chmod 4755 "$WS/suid-id"
  cp /usr/bin/id "$WS/own-suid-id"
  chown "$OWN:$OGID" "$WS/own-suid-id"
  chmod 6755 "$WS/own-suid-id"
  run -0 jail sh -c '
    echo x >/workspace/f
    chown 0 /workspace/f 2>/dev/null && echo chowned-root
    chown 1001 /workspace/f 2>/dev/null && echo chowned-other
    chgrp 0 /workspace/f 2>/dev/null && echo chgrp-root
    /workspace/suid-id -u; /workspace/own-suid-id -u
    grep " /workspace " /proc/self/mountinfo'
  [ "${lines[0]}" = 1000 ]
  [ "${lines[1]}" = 1000 ]
  [[ "${lines[2]}" == *" /workspace rw,nosuid,nodev,"*"idmapped"* ]]
  [ "${#lines[@]}" -eq 3 ]
  [ "$(stat -c '%u:%g' "$WS/f")" = "$OWN:$OGID" ]
}

@test "setuid and setgid bits the agent sets are cleared when the run ends, and the operator's own are kept" {
  cp /usr/bin/id "$WS/operators-suid"
  chown "$OWN:$OGID" "$WS/operators-suid"
  chmod 4755 "$WS/operators-suid"
  # Changed before the run, so not the agent's doing (a ctime cannot be set back).
  run -0 --separate-stderr jail sh -c 'cp /usr/bin/id /workspace/planted && chmod 6755 /workspace/planted && mkdir /workspace/d && cp /usr/bin/id /workspace/d/deep && chmod 4711 /workspace/d/deep && chmod u+s /workspace/mine && stat -c %a /workspace/planted /workspace/d/deep /workspace/mine'
  [ "$output" = "$(printf '6755
4711
4600')" ]
  [ "$stderr" = "viv: cleared the setuid/setgid bits the agent set on '$WS/d/deep', '$WS/mine', '$WS/planted'" ]
  [ "$(stat -c '%a %u:%g' "$WS/planted" "$WS/d/deep" "$WS/mine" "$WS/operators-suid")" = "$(printf '%s\n' "755 $OWN:$OGID" "711 $OWN:$OGID" "600 $OWN:$OGID" "4755 $OWN:$OGID")" ]
  no_lent_mounts
}

@test "a symlink in the workspace reaches nothing outside it, neither in the jail nor through fs-file-write" {
  run -0 jail sh -c 'cat /workspace/out 2>/dev/null || echo refused; ls /workspace/out/.. >/dev/null 2>&1 || echo no-parent'
  [ "$output" = "$(printf 'refused\nno-parent')" ]
  run -77 --separate-stderr jail fs-file-write --path "$WS/out" --content x
  [ "$(cat "$PRIVATE/secret")" = outside-secret ]
  [ "$(stat -c '%u' "$PRIVATE/secret")" = 0 ]
}

@test "fs-file-write, run as root on the host, leaves the owner's files and directories in the workspace" {
  run -0 jail fs-file-write --path "$WS/notes/today/a.md" --content hello
  [ "$(cat "$WS/notes/today/a.md")" = hello ]
  [ "$(stat -c '%u:%g' "$WS/notes" "$WS/notes/today" "$WS/notes/today/a.md")" = "$(printf '%s\n' "$OWN:$OGID" "$OWN:$OGID" "$OWN:$OGID")" ]
  # The agent then works on it as its own.
  run -0 jail sh -c 'printf " again" >>/workspace/notes/today/a.md && cat /workspace/notes/today/a.md'
  [ "$output" = "hello again" ]
}

@test "a SIGKILL of viv run leaves its mount, and the next run sweeps it" {
  viv run --agent "$AGENT" -- sh -c 'cp /usr/bin/id /workspace/planted && chmod 4755 /workspace/planted && exec sleep 60' &
  VIV_PID=$!
  wait_for has_lent_mount
  wait_for pgrep -u "$AUID" sleep
  kill -KILL "$VIV_PID"
  wait "$VIV_PID" 2>/dev/null || true
  VIV_PID=""
  wait_for no_agent_processes
  # The killed run had no chance to take it back, nor to clear what the agent set.
  has_lent_mount
  [ "$(stat -c %a "$WS/planted")" = 4755 ]
  run -0 --separate-stderr jail true
  [[ "$stderr" == "viv: cleared the setuid/setgid bits the agent set on '$STATE/agents/$AGENT/mnt/ws-"*"/planted'" ]]
  [ "$(stat -c %a "$WS/planted")" = 755 ]
  no_lent_mounts
}

@test "the kill switch ends the jail and its mount is taken back" {
  viv run --agent "$AGENT" -- sleep 60 2>"$BATS_TEST_TMPDIR/run.err" &
  VIV_PID=$!
  wait_for pgrep -u "$AUID" sleep
  has_lent_mount
  # While lent, the mount is the agent's uid's way in and no one else's: the workspace's parent
  # is closed to others, and so is the directory above the mount.
  local m
  m=$(lent_mounts)
  [ "$(stat -c '%u:%g' "$m/mine")" = "$AUID:$AUID" ]
  [ "$(stat -c '%u:%g %a' "$(dirname "$m")")" = "0:$AUID 710" ]
  run -0 setpriv --reuid="$AUID" --regid="$AUID" --clear-groups cat "$m/mine"
  [ "$output" = owner-secret ]
  run ! setpriv --reuid="$THIRD" --regid="$THIRD" --clear-groups stat "$m/mine"
  run ! setpriv --reuid="$OWN" --regid="$OGID" --clear-groups stat "$m/mine"
  run -0 viv kill "$AGENT" --reason 'idmap test'
  local rc=0
  wait "$VIV_PID" || rc=$?
  VIV_PID=""
  [ "$rc" -eq 77 ]
  no_lent_mounts
}

@test "a workspace on a filesystem without idmapped mounts is refused with 78 and nothing is mounted" {
  RAMFS="$PRIVATE/ram"
  mkdir "$RAMFS"
  mount -t ramfs ramfs "$RAMFS"
  chown "$OWN:$OGID" "$RAMFS"
  stop_broker
  write_policy keep "$RAMFS"
  start_broker
  run -78 --separate-stderr jail true
  [ "$stderr" = "viv: workspace '$RAMFS' cannot be lent with owner=\"keep\": its filesystem (ramfs), or one mounted below it, does not support idmapped mounts (Invalid argument)" ]
  [ "$(lent_mounts)" = "$RAMFS" ]
  [ -z "$(ls -A "$STATE/agents/$AGENT/mnt")" ]
}

@test "a workspace root owns is refused with 78" {
  chown 0:0 "$WS"
  run -78 --separate-stderr jail true
  [ "$stderr" = "viv: workspace '$WS' cannot be lent with owner=\"keep\": '$WS' belongs to 0:0; a workspace of root's (uid or gid 0) cannot be lent to an agent" ]
  no_lent_mounts
}

@test "without owner=\"keep\" a workspace the agent does not own is still refused (negative control)" {
  stop_broker
  write_policy ""
  start_broker
  run -78 --separate-stderr jail true
  [ "$stderr" = "viv: workspace '$WS' belongs to uid $OWN, not the agent's uid $AUID; chown it" ]
  no_lent_mounts
}

@test "an idmapping the wrong way round fails these checks (negative control of the direction)" {
  # The same helper with each map line's two ids swapped: the agent's id would be sent to the owner's.
  sed -e 's/"%lu %lu 1\\n", from, to)/"%lu %lu 1\\n", to, from)/' -e 's/"%lu %lu 1\\n", gfrom, gto)/"%lu %lu 1\\n", gto, gfrom)/' \
    "$VIV_ROOT/images/idmap-mount.c" >"$BATS_TEST_TMPDIR/reversed.c"
  run ! cmp -s "$VIV_ROOT/images/idmap-mount.c" "$BATS_TEST_TMPDIR/reversed.c"
  # A copy of the build with that helper in place of its own (viv run takes the helper of its build).
  local d="$BATS_TEST_TMPDIR/dist"
  mkdir -p "$d/bin"
  cp "$VIV_ROOT/dist/bin/vivary" "$d/bin/vivary"
  ln -s vivary "$d/bin/viv"
  cp -a "$VIV_ROOT/dist/libexec" "$VIV_ROOT/dist/nspawn-root" "$d/"
  cc -O2 -o "$d/libexec/viv-idmap-mount" "$BATS_TEST_TMPDIR/reversed.c"
  # Open to others, or the jail could not even enter /workspace.
  chmod 0755 "$WS"
  run -0 --separate-stderr "$d/bin/viv" run --backend "$VIV_BACKEND" --agent "$AGENT" -- sh -c 'stat -c "%u:%g" /workspace/mine; cat /workspace/mine || echo unreadable; echo x >/workspace/new || echo uncreatable'
  [ "${lines[0]}" = "65534:65534" ]
  [ "${lines[1]}" = unreadable ]
  [ "${lines[2]}" = uncreatable ]
  [ ! -e "$WS/new" ]
  no_lent_mounts
}
