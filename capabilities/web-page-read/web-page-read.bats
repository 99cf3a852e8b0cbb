#!/usr/bin/env bats
# web-page-read through the real stub, broker and jail, against a real headless Chromium and a
# small site on loopback (fixture-server.py). The grants name loopback explicitly, which is the
# only way a loopback address is ever reachable. SSRF attempts come in every form the issue
# lists; for each, the call is refused with its reason, recorded, and a trap listener on another
# loopback address counts the connections (and datagrams) that got through: there must be none.
#
# Scripts passed to `bash -c` inside the jail are single-quoted on purpose: their variables
# expand in the jail, with values handed over as positional arguments. bats' `run` sets stderr
# and stderr_lines.
# shellcheck disable=SC2016,SC2154

load ../../test/bats/helpers

setup_file() {
  SITE="$BATS_FILE_TMPDIR/site"
  mkdir -p "$SITE"
  python3 "$BATS_TEST_DIRNAME/fixture-server.py" "$SITE" 127.0.0.1 127.0.0.2 3>&- &
  echo "$!" >"$SITE/pid"
  wait_for test -s "$SITE/port"
  export SITE
}

teardown_file() {
  kill "$(cat "$SITE/pid")" 2>/dev/null || true
}

setup() {
  viv_setup
  PORT=$(cat "$SITE/port")
  ORIGIN="http://127.0.0.1:$PORT"
  TRAP="http://127.0.0.2:$PORT"
  AGENT="r$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  policy_reader "$AGENT" "$ORIGIN/*"
  start_broker
  export PORT ORIGIN TRAP AGENT
}

teardown() {
  stop_broker
}

# policy_reader NAME PATTERN [NAME PATTERN]...: agents granted web-page-read under PATTERN each.
policy_reader() {
  : >"$POLICY"
  while [ "$#" -gt 0 ]; do
    printf 'agent "%s" {\n    grant "web-page-read" {\n        url "%s"\n    }\n}\n' "$1" "$2" >>"$POLICY"
    shift 2
  done
}

# wpr ARGS...: web-page-read ARGS... from inside the agent's jail.
wpr() {
  viv run --agent "$AGENT" -- web-page-read "$@"
}

trap_count() {
  cat "$SITE/trap-connections"
}

# browser_pid [AGENT]: the pid of the agent's browser as viv ps shows it, or -.
browser_pid() {
  viv ps --state "$STATE" | sed -n "s/^agent=${1:-$AGENT} .* browser=\([0-9-]*\) caps=.*$/\1/p"
}

# browser_gone: true once viv ps shows no browser for the agent.
browser_gone() {
  [ "$(browser_pid)" = - ]
}

# no_process_of UID: true once no process runs as UID.
no_process_of() {
  [ "$(pgrep -c -u "$1")" -eq 0 ]
}

# blocked_of_last: the blocked destinations of the agent's last result record, one per line.
blocked_of_last() {
  viv-log --agent "$AGENT" --json | jq -r 'select(.kind == "result")' | jq -rs 'last | (.blocked // [])[]'
}

# assert_denied URL REASON: reading URL exits 77 with REASON as its one stderr line, prints
# nothing, and the trap listener saw no connection.
assert_denied() {
  local before
  before=$(trap_count)
  run -77 --separate-stderr wpr --url "$1"
  [ "$output" = "" ]
  [ "${#stderr_lines[@]}" -eq 1 ]
  [ "${stderr_lines[0]}" = "web-page-read: $2" ]
  [ "$(trap_count)" = "$before" ]
}

# ---------------------------------------------------------------------------------------------
# Reading

@test "a loopback page under an explicit grant is read as markdown without scripts, styles or boilerplate" {
  run -0 --separate-stderr wpr --url "$ORIGIN/article"
  [ "$stderr" = "" ]
  [ "${lines[0]}" = "# Governed Reading" ]
  [[ "$output" == *"The broker decides every call an agent makes"* ]]
  [[ "$output" == *"[link to more]($ORIGIN/more)"* ]]
  [[ "$output" == *"A third paragraph closes the article"* ]]
  [[ "$output" != *"tracker-should-not-appear"* ]]
  [[ "$output" != *"color: red"* ]]
  [[ "$output" != *"menu-boilerplate"* ]]
  [[ "$output" != *"footer-boilerplate"* ]]
  [[ "$output" != *"<"* ]]
  run -0 viv-log --agent "$AGENT" --cap web-page-read
  [[ "$output" == *" kind=call cap=web-page-read "*"args.url=$ORIGIN/article"* ]]
  [[ "$output" == *" kind=result cap=web-page-read "*"exit=0"* ]]
  # The page asks for nothing outside the grant, and the browser, new for this first call, asks
  # for nothing of its own (an update check, say) that would be blocked on the call's account.
  [ -z "$(blocked_of_last)" ]
}

@test "--format json prints the page's url, final url, status, title, markdown and size" {
  run -0 --separate-stderr wpr --url "$ORIGIN/redirect/302?to=$ORIGIN/article" --format json --wait-for load
  [ "$(jq -r .url <<<"$output")" = "$ORIGIN/redirect/302?to=$ORIGIN/article" ]
  [ "$(jq -r .final_url <<<"$output")" = "$ORIGIN/article" ]
  [ "$(jq -r .status <<<"$output")" = 200 ]
  [ "$(jq -r .title <<<"$output")" = "Governed Reading" ]
  [ "$(jq -r .truncated <<<"$output")" = false ]
  [ "$(jq -r '.bytes > 1000' <<<"$output")" = true ]
  [[ "$(jq -r .markdown <<<"$output")" == "# Governed Reading"* ]]
}

@test "--wait-for takes a CSS selector, and a bad one is a usage error" {
  run -0 --separate-stderr wpr --url "$ORIGIN/article" --wait-for "article p a[href]"
  [ "${lines[0]}" = "# Governed Reading" ]
  run -64 --separate-stderr wpr --url "$ORIGIN/article" --wait-for "p[[["
  [ "$stderr" = "web-page-read: --wait-for 'p[[[' is not a valid CSS selector" ]
}

@test "each spelling of the granted address is that address and reads the page" {
  local host
  for host in 127.0.0.1 2130706433 0x7f000001 0177.0.0.1 127.1 127.0.0.1. 0x7f.1; do
    run -0 --separate-stderr wpr --url "http://$host:$PORT/article" --wait-for load --format json
    [ "$(jq -r .final_url <<<"$output")" = "$ORIGIN/article" ]
  done
}

# ---------------------------------------------------------------------------------------------
# Refused before the browser is asked

@test "a URL outside the grant is denied with 77 and recorded" {
  assert_denied "http://127.0.0.1.evil.example:$PORT/" "cannot read 'http://127.0.0.1.evil.example:$PORT/': outside granted url '$ORIGIN/*'"
  assert_denied "http://127.0.0.1:$((PORT + 1))/" "cannot read 'http://127.0.0.1:$((PORT + 1))/': outside granted url '$ORIGIN/*'"
  assert_denied "https://127.0.0.1:$PORT/" "cannot read 'https://127.0.0.1:$PORT/': outside granted url '$ORIGIN/*'"
  local line
  line=$(viv-log --agent "$AGENT" --cap web-page-read | grep ' kind=deny ' | tail -n 1)
  [[ "$line" == *" agent=$AGENT kind=deny cap=web-page-read "*"stage=authorize exit=77 reason="* ]]
  [ "$(viv-log --agent "$AGENT" --json | jq -r 'select(.kind == "deny") | .reason' | tail -n 1)" = "cannot read 'https://127.0.0.1:$PORT/': outside granted url '$ORIGIN/*'" ]
  [ "$(browser_pid)" = - ]
}

@test "IP literals of another loopback address in every spelling are denied and reach nothing" {
  local u
  for u in "http://2130706434:$PORT/" "http://0177.0.0.2:$PORT/" "http://0x7f000002:$PORT/" "http://127.2:$PORT/" \
           "http://0x7f.0.0.2:$PORT/" "http://[::1]:$PORT/" "http://[::ffff:127.0.0.2]:$PORT/" "http://[::ffff:127.0.0.1]:$PORT/" \
           "http://[::ffff:7f00:2]:$PORT/" "http://[0:0:0:0:0:0:0:1]:$PORT/" "http://localhost:$PORT/" "http://LOCALHOST.:$PORT/"; do
    run -77 --separate-stderr wpr --url "$u"
    [[ "${stderr_lines[0]}" == "web-page-read: cannot read '"*"': outside granted url '$ORIGIN/*'" ]]
  done
  [ "$(trap_count)" = 0 ]
  [ "$(viv-log --agent "$AGENT" --json | jq -r 'select(.kind == "deny") | .reason' | grep -c "outside granted url")" -eq 12 ]
}

@test "userinfo, file:, data: and javascript: URLs are denied" {
  assert_denied "http://127.0.0.1:$PORT@127.0.0.2:$PORT/" "cannot read 'http://127.0.0.1:$PORT@127.0.0.2:$PORT/': URL has userinfo (user:password@)"
  assert_denied "http://u:p@127.0.0.1:$PORT/article" "cannot read 'http://u:p@127.0.0.1:$PORT/article': URL has userinfo (user:password@)"
  assert_denied "file:///etc/passwd" "cannot read 'file:///etc/passwd': scheme 'file:' is not http or https"
  assert_denied "data:text/html,<p>hi</p>" "cannot read 'data:text/html,<p>hi</p>': scheme 'data:' is not http or https"
  assert_denied "javascript:alert(1)" "cannot read 'javascript:alert(1)': scheme 'javascript:' is not http or https"
}

@test "a near-universal grant is refused when the policy loads" {
  printf 'agent "a" {\n    grant "web-page-read" {\n        url "https://*"\n    }\n}\n' >"$BATS_TEST_TMPDIR/broad.kdl"
  run -78 --separate-stderr viv policy check "$BATS_TEST_TMPDIR/broad.kdl"
  [ "${stderr_lines[0]}" = "viv: $BATS_TEST_TMPDIR/broad.kdl:3: url 'https://*' refused: matches every host" ]
}

# ---------------------------------------------------------------------------------------------
# Refused by the proxy: what a granted page does next

@test "redirects from a granted page to another loopback or a private address are refused and reach nothing" {
  local how u
  for how in redirect/301 redirect/302 redirect/307 meta js; do
    u="$ORIGIN/$how?to=$TRAP/"
    assert_denied "$u" "cannot read '$u': it went to '$TRAP/': outside the grant"
    [[ "$(blocked_of_last)" == *"$TRAP/ (outside the grant)"* ]]
  done
  u="$ORIGIN/redirect/302?to=http://169.254.169.254/latest/meta-data/"
  assert_denied "$u" "cannot read '$u': it went to 'http://169.254.169.254/latest/meta-data/': outside the grant"
  u="$ORIGIN/redirect/302?to=http://10.0.0.1/"
  assert_denied "$u" "cannot read '$u': it went to 'http://10.0.0.1/': outside the grant"
  [ "$(trap_count)" = 0 ]
}

@test "a granted name that resolves to loopback is refused by the proxy without a grant naming the address" {
  stop_broker
  policy_reader "$AGENT" "http://localhost:$PORT/*"
  start_broker
  run -77 --separate-stderr wpr --url "http://localhost:$PORT/article"
  [[ "${stderr_lines[0]}" =~ ^web-page-read:\ cannot\ read\ \'http://localhost:$PORT/article\':\ \'localhost\'\ is\ a\ loopback\ address\ \((127\.0\.0\.1|::1)\)\ that\ no\ grant\ names$ ]]
  [[ "$(blocked_of_last)" == *"http://localhost:$PORT/article ('localhost' is a loopback address"* ]]
}

@test "a granted page's images, frames, scripts, fetches, workers, WebSockets and WebRTC reach nothing outside the grant" {
  run -0 --separate-stderr wpr --url "$ORIGIN/subresources?to=$TRAP/"
  [ "${lines[0]}" = "# Subresources" ]
  [ "$(trap_count)" = 0 ]
  local blocked
  blocked=$(blocked_of_last)
  [[ "$blocked" == *"$TRAP/img.png (outside the grant)"* ]]
  [[ "$blocked" == *"$TRAP/frame (outside the grant)"* ]]
  [[ "$blocked" == *"$TRAP/script.js (outside the grant)"* ]]
  [[ "$blocked" == *"$TRAP/fetch (outside the grant)"* ]]
  [[ "$blocked" == *"$TRAP/worker (outside the grant)"* ]]
  # A WebSocket goes through the proxy as a tunnel to host:port.
  [[ "$blocked" == *"127.0.0.2:$PORT (outside the grant)"* ]]
  # One record for the call, with every refusal in it.
  [ "$(viv-log --agent "$AGENT" --json | jq -r 'select(.kind == "result")' | jq -s length)" -eq 1 ]
}

@test "a granted page cannot navigate its tab to file: or data:, or open popups" {
  local u
  for u in "$ORIGIN/js?to=file:///etc/passwd" "$ORIGIN/js?to=data:text/html,<title>pwned</title>" "$ORIGIN/meta?to=file:///etc/passwd"; do
    # Chromium refuses these navigations: the tab stays on the granted page, and that is read.
    run -0 --separate-stderr wpr --url "$u" --format json
    [ "$(jq -r .final_url <<<"$output")" = "$(jq -r .url <<<"$output")" ]
    [[ "$(jq -r .final_url <<<"$output")" == "$ORIGIN/"* ]]
    [[ "$(jq -r '.title + .markdown' <<<"$output")" != *"root:x:0:0"* ]]
    [[ "$(jq -r '.title + .markdown' <<<"$output")" != *"pwned"* ]]
  done
  u="$ORIGIN/redirect/302?to=file:///etc/passwd"
  run -77 --separate-stderr wpr --url "$u"
  [ "$output" = "" ]
  [ "$stderr" = "web-page-read: cannot read '$u': it redirects to a URL that is not http or https (net::ERR_UNSAFE_REDIRECT)" ]
  run -0 --separate-stderr wpr --url "$ORIGIN/popup?to=$TRAP/popup" --format json
  [ "$(jq -r .final_url <<<"$output")" = "$ORIGIN/popup?to=$TRAP/popup" ]
  [ "$(trap_count)" = 0 ]
}

@test "a download is refused and nothing is saved" {
  run -65 --separate-stderr wpr --url "$ORIGIN/download"
  [ "$output" = "" ]
  [ "$stderr" = "web-page-read: cannot read '$ORIGIN/download': not a page (a download, which is refused, or an aborted load)" ]
  # Not saved as a download, and not even in a cache: pages live in an in-memory context.
  [ "$(grep -rl secret-download "$STATE/agents/$AGENT/browser" | wc -l)" -eq 0 ]
  [ "$(find "$STATE/agents/$AGENT/browser" -name 'x.bin*' | wc -l)" -eq 0 ]
}

@test "markdown is cut to fit, and a page that loads more than 32 MiB is refused" {
  run -0 --separate-stderr wpr --url "$ORIGIN/big" --format json --wait-for load
  [ "$(jq -r .truncated <<<"$output")" = true ]
  [ "${#output}" -le $((1536 * 1024)) ]
  [ "$(jq -r '.markdown | length > 500000' <<<"$output")" = true ]
  run -0 --separate-stderr wpr --url "$ORIGIN/big" --wait-for load
  [ "$(printf '%s\n' "$output" | wc -c)" -le $((1024 * 1024 + 1)) ]
  run -65 --separate-stderr wpr --url "$ORIGIN/heavy"
  [ "$stderr" = "web-page-read: cannot read '$ORIGIN/heavy': the page loads more than 33554432 bytes" ]
}

# ---------------------------------------------------------------------------------------------
# Time, failure and isolation

@test "a page that never finishes loading times out within the limit" {
  run -75 --separate-stderr wpr --url "$ORIGIN/hang" --timeout 3s
  [ "$stderr" = "web-page-read: cannot read '$ORIGIN/hang': timed out after 3s" ]
  run -0 viv-log --agent "$AGENT" --cap web-page-read
  [[ "$output" == *" kind=result cap=web-page-read "*"exit=75"* ]]
  # From the intent record to the outcome record: the 3 s, a cold browser's start included, plus
  # at most 1 s to ask the browser whether it still answers and 1 s to record the outcome.
  local call result ms
  call=$(viv-log --agent "$AGENT" --json | jq -r 'select(.kind == "call") | .ts' | tail -n 1)
  result=$(viv-log --agent "$AGENT" --json | jq -r 'select(.kind == "result") | .ts' | tail -n 1)
  ms=$(($(date -d "$result" +%s%3N) - $(date -d "$call" +%s%3N)))
  [ "$ms" -ge 3000 ]
  [ "$ms" -lt 5000 ]
}

@test "a killed browser is restarted and the next call works" {
  run -0 wpr --url "$ORIGIN/article" --wait-for load
  local pid
  pid=$(browser_pid)
  [[ "$pid" =~ ^[0-9]+$ ]]
  kill -KILL "$pid"
  wait_for browser_gone
  run -0 --separate-stderr wpr --url "$ORIGIN/article" --wait-for load
  [ "${lines[0]}" = "# Governed Reading" ]
  [[ "$(browser_pid)" =~ ^[0-9]+$ ]]
  [ "$(browser_pid)" != "$pid" ]
}

@test "a hung browser fails the call cleanly and is replaced for the next call" {
  run -0 wpr --url "$ORIGIN/article" --wait-for load
  local pid
  pid=$(browser_pid)
  kill -STOP "$pid"
  run --separate-stderr wpr --url "$ORIGIN/article" --timeout 2s
  [ "$status" -eq 75 ] || [ "$status" -eq 69 ]
  [ "${#stderr_lines[@]}" -eq 1 ]
  [[ "${stderr_lines[0]}" == "web-page-read: "* ]]
  run -0 --separate-stderr wpr --url "$ORIGIN/article" --wait-for load
  [ "${lines[0]}" = "# Governed Reading" ]
  [ "$(browser_pid)" != "$pid" ]
  [ ! -e "/proc/$pid" ] || [ "$(awk '/^State:/ {print $2}' "/proc/$pid/status")" = Z ]
}

@test "two agents' browsers share no cookies or storage" {
  stop_broker
  local other="o${AGENT#r}"
  policy_reader "$AGENT" "$ORIGIN/*" "$other" "$ORIGIN/*"
  start_broker
  run -0 wpr --url "$ORIGIN/cookie/set?v=alpha" --wait-for load
  run -0 --separate-stderr wpr --url "$ORIGIN/cookie/get" --wait-for load
  [[ "$output" == *"cookie=v=alpha"* ]]
  [[ "$output" == *"storage=alpha"* ]]
  run -0 --separate-stderr viv run --agent "$other" -- web-page-read --url "$ORIGIN/cookie/get" --wait-for load
  [[ "$output" == *"cookie=none"* ]]
  [[ "$output" == *"storage=none"* ]]
  [ "$(browser_pid "$AGENT")" != "$(browser_pid "$other")" ]
  [ "$(stat -c %u "/proc/$(browser_pid "$AGENT")")" != "$(stat -c %u "/proc/$(browser_pid "$other")")" ]
}

@test "the browser runs as its own unprivileged uid, sandboxed, in its own network namespace, with no DevTools port" {
  run -0 wpr --url "$ORIGIN/article" --wait-for load
  local pid uid
  pid=$(browser_pid)
  uid=$(agent_uid "$AGENT")
  [ "$(stat -c %u "/proc/$pid")" -eq $((uid + 1000000)) ]
  [ "$(readlink "/proc/$pid/ns/net")" != "$(readlink /proc/self/ns/net)" ]
  grep -q -- '--remote-debugging-pipe' "/proc/$pid/cmdline"
  [ "$(tr '\0' '\n' <"/proc/$pid/cmdline" | grep -c -e '--no-sandbox' -e '--remote-debugging-port')" -eq 0 ]
  # Renderers run under seccomp-bpf (mode 2): Chromium's sandbox is on.
  local renderer
  renderer=$(pgrep -u "$((uid + 1000000))" -f -- '--type=renderer' | head -n 1)
  [ -n "$renderer" ]
  [ "$(awk '/^Seccomp:/ {print $2}' "/proc/$renderer/status")" = 2 ]
  # No process of the browser's uid listens on the host's network.
  [ "$(ss -Hltnup | grep -cF "pid=$pid,")" -eq 0 ]
}

@test "viv caps lists web-page-read and the jail can read its schema" {
  run -0 viv caps
  [[ "$output" == *"web-page-read"* ]]
  run -0 --separate-stderr wpr --help
  [ "$(jq -r .title <<<"$output")" = web-page-read ]
  [ "$(jq -r '."x-vivary-risk"' <<<"$output")" = low ]
}

@test "every example in web-page-read(1) runs in a jail and prints what the page says" {
  # The pages' examples use port 8080 for the granted origin and 8081 for another port.
  check_man_examples --prefix web-page-read 4 "s/8081/$((PORT + 1))/g" "s/8080/$PORT/g"
}

@test "concurrent calls of one agent get tabs of its browser up to a bound of 4" {
  # Five calls at once of a page that never finishes: four hold a tab until their timeout, the
  # fifth is refused at once. Then three at once of a real page all succeed.
  run -0 viv run --agent "$AGENT" -- bash -c '
    for i in 1 2 3 4 5; do
      web-page-read --url "$1/hang" --timeout 6s >/dev/null 2>"/tmp/err$i" &
    done
    wait
    cat /tmp/err1 /tmp/err2 /tmp/err3 /tmp/err4 /tmp/err5 | sort | uniq -c | sed "s/^ *//"
  ' _ "$ORIGIN"
  [ "${lines[0]}" = "4 web-page-read: cannot read '$ORIGIN/hang': timed out after 6s" ]
  [ "${lines[1]}" = "1 web-page-read: the agent already has 4 pages open" ]
  [ "${#lines[@]}" -eq 2 ]
  run -0 viv run --agent "$AGENT" -- bash -c '
    for i in 1 2 3; do web-page-read --url "$1/article" --wait-for load | head -n 1 & done
    wait
  ' _ "$ORIGIN"
  [ "$output" = "$(printf '# Governed Reading\n# Governed Reading\n# Governed Reading')" ]
}

@test "viv kill and the broker's stop end the agent's browser and everything it started" {
  run -0 wpr --url "$ORIGIN/article" --wait-for load
  local pid buid
  pid=$(browser_pid)
  buid=$(stat -c %u "/proc/$pid")
  [ "$(pgrep -c -u "$buid")" -gt 1 ]
  run -0 viv kill "$AGENT" --state "$STATE"
  wait_for no_process_of "$buid"
  # The next broker starts it again on demand; its stop ends it too.
  stop_broker
  start_broker
  run -0 wpr --url "$ORIGIN/article" --wait-for load
  [ "$(pgrep -c -u "$buid")" -gt 1 ]
  stop_broker
  wait_for no_process_of "$buid"
}
