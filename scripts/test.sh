#!/usr/bin/env bash
# Installs what is needed and runs every test suite: bun test (unit and spawn tests), then the
# bats suites against real jails and a real broker (shellcheck runs as one of them). Ends with
# one line "N passed, N failed" summing all suites; exits non-zero if anything failed.
set -uo pipefail
# Root is needed (apt-get, jails under per-agent uids): as another user, run again under sudo.
if [ "$(id -u)" -ne 0 ]; then exec sudo -E -- "$0" "$@"; fi
cd "$(dirname "$0")/.." || exit 1
./scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

node_modules/.bin/bun test 2>&1 | tee "$out/bun.log"
bun_rc=${PIPESTATUS[0]}
bun_pass=$(sed -n 's/^ *\([0-9][0-9]*\) pass$/\1/p' "$out/bun.log" | tail -n 1)
bun_fail=$(sed -n 's/^ *\([0-9][0-9]*\) fail$/\1/p' "$out/bun.log" | tail -n 1)

# Two bats runs side by side, each serial within: the suites of test/bats (some of which give
# their agents fixed names, so fixed uids, which the kill switch and the checks for leftover
# processes go by) and the capabilities' suites (whose agents have unique names).
# After the capabilities' suites, the suites that test the jail's guarantees run again on the
# systemd-nspawn backend (VIV_BACKEND, test/bats/helpers.bash); their agents' names are unique
# to each run, so they may overlap the bubblewrap runs. Their lines are marked [nspawn].
mapfile -t core < <(find test/bats -name '*.bats' | sort)
mapfile -t caps < <(find capabilities -name '*.bats' | sort)
nspawn=(test/bats/jail.bats test/bats/seccomp.bats test/bats/limits.bats test/bats/selftest.bats test/bats/smoke.bats test/bats/workspace-owner.bats)
bats --timing --formatter tap "${core[@]}" >"$out/bats-core.log" 2>&1 &
core_pid=$!
(
  rc=0
  bats --timing --formatter tap "${caps[@]}" >"$out/bats-caps.log" 2>&1 || rc=$?
  VIV_BACKEND=nspawn bats --timing --formatter tap "${nspawn[@]}" 2>&1 | sed -E 's/^(not )?ok [0-9]+ /&[nspawn] /' >"$out/bats-nspawn.log" || rc=$?
  exit "$rc"
) &
caps_pid=$!
bats_rc=0
wait "$core_pid" || bats_rc=$?
wait "$caps_pid" || bats_rc=$?
cat "$out/bats-core.log" "$out/bats-caps.log" "$out/bats-nspawn.log" | tee "$out/bats.log"
bats_pass=$(grep -c '^ok ' "$out/bats.log")
bats_fail=$(grep -c '^not ok ' "$out/bats.log")

# The failures again, just above the summary, so that the tail of a long run names them.
if [ "$bats_fail" -gt 0 ] || [ "${bun_fail:-0}" -gt 0 ]; then
  echo "failed:"
  grep -a '^(fail)' "$out/bun.log" | sort -u
  awk '/^not ok / { show = 1; n = 0 } /^ok / { show = 0 } show && n++ < 12' "$out/bats.log"
fi
passed=$(( ${bun_pass:-0} + bats_pass ))
failed=$(( ${bun_fail:-0} + bats_fail ))
# A runner that failed without reporting a failing test still counts as one failure.
if [ "$bun_rc" -ne 0 ] && [ "${bun_fail:-0}" -eq 0 ]; then failed=$((failed + 1)); fi
if [ "$bats_rc" -ne 0 ] && [ "$bats_fail" -eq 0 ]; then failed=$((failed + 1)); fi
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
