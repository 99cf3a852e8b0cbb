#!/usr/bin/env bats
# Every shell script in the tree passes shellcheck, and no bats assertion is written as an `&&`
# list of tests, which bats cannot see fail.

load helpers

@test "every shell script passes shellcheck" {
  cd "$VIV_ROOT"
  mapfile -t scripts < <(git ls-files -co --exclude-standard | grep -E '\.(sh|bash|bats)$|^\.ci/run$')
  [ "${#scripts[@]}" -gt 3 ]
  run shellcheck -x "${scripts[@]}"
  echo "$output"
  [ "$status" -eq 0 ]
}

# A line that is only tests joined by &&: under `set -e` a failing left half does not stop the
# test, so `[ "$a" = x ] && [ "$b" = y ]` asserts nothing about $a unless it is the last line.
AND_LIST='^[[:space:]]*(\[\[?|test) [^;|&]*(\]\]?)?[[:space:]]*&&[[:space:]]*(\[\[?|test) [^;|&]*(\]\]?)?[[:space:]]*$'

@test "no bats assertion is an && list of tests, whose failing left half bats would ignore" {
  # The pattern finds such a line (so an empty result below means something), and not a test
  # that guards an action or a fallback.
  run grep -cE "$AND_LIST" <<<$'  [ "$a" = x ] && [ "$b" = y ]\n[[ $c == d* ]] && test -n "$e"\n  [ -L "$d" ] && continue\n  [ -n "$x" ] && y=1\n[ "$(f)" = "$([ 1 -lt 2 ] && echo t || echo f)" ]'
  [ "$output" = 2 ]
  cd "$VIV_ROOT"
  mapfile -t suites < <(git ls-files -co --exclude-standard | grep -E '\.(bats|bash)$')
  run grep -nE "$AND_LIST" "${suites[@]}"
  echo "$output"
  [ "$status" -eq 1 ]
}
