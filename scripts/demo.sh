#!/usr/bin/env bash
# vivary's main job, end to end: an agent in a bubblewrap jail uses its capabilities under the
# example policy. Allowed writes land and are read back, a page served on loopback is read, an
# event is added to a real Radicale, a light is switched on a loopback Home Assistant, an order on
# a loopback WooCommerce waits until this script approves it as the operator, while a denied path,
# a symlink escape, a redirect off the grant, a foreign attendee, an ungranted device and an
# ungranted contact are refused; then the audit log shows all of it. Every provider runs on this
# machine's loopback, its secret in the vault: no account anywhere is needed.
# shellcheck source=scripts/demo-common.bash
source "$(dirname "$0")/demo-common.bash"

# The site web-page-read may read.
mkdir "$run/site"
python3 capabilities/web-page-read/fixture-server.py "$run/site" 127.0.0.1 &
pids+=($!)
wait_file "$run/site/port"
site_port=$(cat "$run/site/port")

# A real Radicale with one user, "demo", and a calendar "work".
cal_password=$(secret)
printf '%s' "$cal_password" >"$run/cal-password"
printf 'machine 127.0.0.1 login demo password %s\n' "$cal_password" >"$run/netrc"
"$bun" test/radicale.ts --user demo --password-file "$run/cal-password" --calendar work >"$run/cal.url" &
pids+=($!)

# Home Assistant's and WooCommerce's REST APIs, as loopback servers that check the credential.
ha_token=$(secret)
printf '%s' "$ha_token" >"$run/ha-token"
"$bun" test/fake-home-assistant.ts --token-file "$run/ha-token" >"$run/ha.url" &
pids+=($!)
shop_secret="cs_$(secret)"
printf '%s' "$shop_secret" >"$run/shop-secret"
"$bun" test/fake-woocommerce.ts --key ck_0123456789abcdef0123456789abcdef01234567 --secret-file "$run/shop-secret" >"$run/shop.url" &
pids+=($!)
wait_file "$run/ha.url"
wait_file "$run/shop.url"
wait_file "$run/cal.url"
cal_home=$(head -n 1 "$run/cal.url")

echo "== viv secret set: the providers' secrets go into the vault (the policy only names them)"
printf '%s\n' "$cal_password" | viv secret set --state "$state" caldav-demo
printf '%s\n' "$ha_token" | viv secret set --state "$state" ha-demo
printf '%s\n' "$shop_secret" | viv secret set --state "$state" shop-demo
printf '%s\n' "$(secret)" | viv secret set --state "$state" sms-demo
viv secret list --state "$state"

# The example policy names ports 8080 to 8083; the demo's servers listen where they could.
policy=$state/demo.kdl
sed -e "s|127.0.0.1:8080|127.0.0.1:$site_port|" -e "s|http://127.0.0.1:8081/demo/|$cal_home|" \
  -e "s|http://127.0.0.1:8082|$(head -n 1 "$run/ha.url")|" -e "s|http://127.0.0.1:8083|$(head -n 1 "$run/shop.url")|" \
  policy/examples/demo.kdl >"$policy"
mkdir -p /srv/vivary-demo/reports
rm -rf /srv/vivary-demo/workspace

echo "== viv policy check $policy"
viv policy check "$policy"

# The operator: approves the first order that waits, after showing what the broker asks.
(
  for _ in $(seq 1 1200); do
    line=$(viv approvals --state "$state" 2>/dev/null | head -n 1) || true
    if [ -n "$line" ]; then
      echo "== operator: viv approvals"
      echo "$line"
      id=${line#id=}
      id=${id%% *}
      echo "== operator: viv approve $id"
      viv approve --state "$state" "$id"
      exit 0
    fi
    sleep 0.1
  done
) &
pids+=($!)

echo "== viv run --agent scribe -- bash policy/examples/demo-agent.sh"
status=0
viv run --agent scribe --policy "$policy" --state "$state" -- bash -c "$(cat policy/examples/demo-agent.sh)" demo-agent "http://127.0.0.1:$site_port" || status=$?
echo "== the agent exited $status; the host now holds:"
find /srv/vivary-demo/reports -type f -printf '%p (%s bytes)\n' | sort
echo "== the calendar 'work' on Radicale holds $(curl -sS --netrc-file "$run/netrc" -X PROPFIND -H 'Depth: 1' "${cal_home}work/" | grep -o '\.ics</' | wc -l) event(s)"
echo "== viv-log --state $state"
viv-log --state "$state"
echo "== viv-log verify"
viv-log verify --state "$state"
