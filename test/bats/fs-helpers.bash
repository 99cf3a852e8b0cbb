# Helpers shared by the suites of the confined filesystem capabilities that read (fs-file-read,
# fs-dir-list): an agent granted them on one host directory, snapshots of the host to compare
# before and after an attack, and assertions on the refusal line and its kind=deny record.
# Load after helpers.bash. They follow fs-file-write.bats' own helpers.
# shellcheck shell=bash disable=SC2154

# fs_setup: a random agent (prefix fr) granted fs-file-read and fs-dir-list on $HOST/scope, a
# directory $OUTSIDE beside it holding a secret, and a broker.
fs_setup() {
  viv_setup
  AGENT="fr$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  SCOPE="$HOST/scope"
  OUTSIDE="$BATS_TEST_TMPDIR/outside"
  mkdir -p "$SCOPE" "$OUTSIDE"
  printf 'outside secret\n' >"$OUTSIDE/secret"
  fs_policy "$SCOPE"
  start_broker
  export AGENT SCOPE OUTSIDE
}

fs_teardown() {
  if [ -n "${SCOPE:-}" ] && mountpoint -q "$SCOPE/mnt" 2>/dev/null; then umount "$SCOPE/mnt"; fi
  stop_broker
}

# fs_policy SCOPE_DIR [WORKSPACE]: the agent's policy, granting reads, listings and writes under SCOPE_DIR.
fs_policy() {
  local ws=""
  [ -n "${2:-}" ] && ws="workspace \"$2\""
  cat >"$POLICY" <<KDL
agent "$AGENT" {
    $ws
    grant "fs-file-read" {
        path "$1"
    }
    grant "fs-dir-list" {
        path "$1"
    }
    grant "fs-file-write" {
        path "$1"
    }
}
KDL
}

# fs_overlap: the agent's workspace is $HOST/ws and its grants $HOST/ws/out, below it.
fs_overlap() {
  stop_broker
  WS="$HOST/ws"
  fs_policy "$WS/out" "$WS"
  start_broker
}

# snapshot DIR...: every entry below DIR with its type, mode, owner, size, inode, links, mtime and
# link target, then a hash of every regular file up to 64 MiB.
snapshot() {
  find "$@" -printf '%p %y %m %U %s %i %n %T@ %l\n' | LC_ALL=C sort
  # Contents up to 64 MiB are hashed; a bigger file (the sparse 10 GiB one) is known by its
  # size, inode and mtime above, which hashing it twice per assertion would add minutes to.
  find "$@" -type f -size -64M -exec sha256sum {} + | LC_ALL=C sort
}

# deny_reasons: the reasons of the agent's kind=deny records, in order, unshortened.
deny_reasons() {
  viv-log --agent "$AGENT" --json | jq -r 'select(.kind == "deny") | .reason'
}

# assert_deny_logged CAP REASON: the agent's latest security event is a kind=deny of CAP with REASON.
assert_deny_logged() {
  local line
  line=$(viv-log --agent "$AGENT" --cap "$1" | grep ' kind=deny ' | tail -n 1)
  [[ "$line" == *" agent=$AGENT kind=deny cap=$1 "*" reason="* ]]
  [ "$(deny_reasons | tail -n 1)" = "$2" ]
}

# assert_fails CODE CAP REASON ARGS...: CAP ARGS... from the jail exits CODE with "CAP: REASON" as
# its one stderr line and nothing on stdout, changes nothing on the host, and when CODE is 77 is
# recorded as a denial with REASON.
assert_fails() {
  local code=$1 cap=$2 reason=$3 before
  shift 3
  before=$(snapshot "$HOST" "$OUTSIDE")
  run "-$code" --separate-stderr viv run --agent "$AGENT" -- "$cap" "$@"
  [ "$output" = "" ]
  [ "${#stderr_lines[@]}" -eq 1 ]
  [ "${stderr_lines[0]}" = "$cap: $reason" ]
  [ "$(snapshot "$HOST" "$OUTSIDE")" = "$before" ]
  if [ "$code" -eq 77 ]; then assert_deny_logged "$cap" "$reason"; fi
}
