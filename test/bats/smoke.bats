#!/usr/bin/env bats
# The governed call end to end through the built binaries: a jailed command writes a file via
# fs-file-write and the audit log shows the call; a grant's rate limit holds.
#
# Scripts for the jail are single-quoted on purpose; bats' `run` sets stderr.
# shellcheck disable=SC2016,SC2154

load helpers

setup() {
  viv_setup
  # A name of this run only: the suite runs on each backend, and its runs may overlap others'.
  SCRIBE="scribe-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
  policy_one_agent "$SCRIBE" "$HOST/out"
  mkdir -p "$HOST/out"
}

teardown() {
  stop_broker
}

@test "a jailed agent writes a granted file and viv-log shows the call" {
  run -0 viv run --agent "$SCRIBE" -- fs-file-write --path "$HOST/out/a.txt" --content hi
  [ "$output" = "{\"path\":\"$HOST/out/a.txt\",\"bytes_written\":2}" ]
  [ "$(cat "$HOST/out/a.txt")" = hi ]
  run -0 viv-log
  [[ "$output" == *"kind=call cap=fs-file-write"*"args.path=$HOST/out/a.txt"* ]]
}

@test "a call over the grant's rate is refused with 75 and recorded" {
  cat >"$POLICY" <<KDL
agent "$SCRIBE" {
    grant "fs-file-write" {
        path "$HOST/out"
        rate 2 per="hour"
    }
}
KDL
  run -0 --separate-stderr viv run --agent "$SCRIBE" -- sh -c '
    for i in 1 2 3; do fs-file-write --path "$1/r$i" --content x >/dev/null; echo "$?"; done' _ "$HOST/out"
  [ "$output" = "$(printf '0\n0\n75')" ]
  [ "$stderr" = "fs-file-write: rate limit of 2 calls per hour reached" ]
  [ ! -e "$HOST/out/r3" ]
  run -0 viv-log --cap fs-file-write
  [[ "$output" == *"kind=deny cap=fs-file-write"*"stage=rate exit=75"* ]]
}
