#!/usr/bin/env bats
# commerce-order-create through the real stub, broker and jail, against a loopback server that
# speaks the WooCommerce REST API v3 and checks the basic auth credential
# (test/fake-woocommerce.ts, which logs every request it receives). Every order waits for an
# operator's approval (risk critical), which shows the shop's real total; the grant's spending
# limits are reserved before the approval is queued, so a burst of orders never crosses them, and
# they hold across a broker restart. Provider errors are one line with 69 or 65, and a random
# canary secret never reaches a record, a result or an error line, even when the shop echoes it.
#
# shellcheck disable=SC2016,SC2154

load ../../test/bats/helpers

KEY="ck_0123456789abcdef0123456789abcdef01234567"

setup() {
  viv_setup
  AGENT="shop-$(od -An -N5 -tx1 /dev/urandom | tr -d ' \n')"
  CANARY="cs_canary-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  export VIVARY_VAULT_KEY="$BATS_TEST_TMPDIR/keys/vault.key"
  printf '%s' "$CANARY" >"$BATS_TEST_TMPDIR/secret"
  RECEIVED="$BATS_TEST_TMPDIR/received.ndjson"
  : >"$RECEIVED"
  "$VIV_ROOT/node_modules/.bin/bun" "$VIV_ROOT/test/fake-woocommerce.ts" --key "$KEY" \
    --secret-file "$BATS_TEST_TMPDIR/secret" --log "$RECEIVED" >"$BATS_TEST_TMPDIR/fake.url" 2>"$BATS_TEST_TMPDIR/fake.err" &
  FAKE_PID=$!
  wait_for test -s "$BATS_TEST_TMPDIR/fake.url"
  FAKE_URL=$(head -n 1 "$BATS_TEST_TMPDIR/fake.url")
  cat >"$POLICY" <<KDL
// The shop the agent orders from; its consumer secret is in the vault as shop-key.
provider "shop" {
    kind "woocommerce"
    url "$FAKE_URL"
    consumer-key "$KEY"
    currency "EUR"
    delivery-days "3"
    credential "shop-key"
}
agent "$AGENT" {
    grant "commerce-order-create" {
        provider "shop"
        sku "BOOK-*"
        sku "ORDER-*"
        sku "ECHO-*"
        sku "SERVER-ERROR"
        sku "GARBAGE"
        sku "SLOW"
        max-quantity "3"
        shipping-address "home" first-name="Jane" last-name="Doe" address-1="1 Main Street" city="Paris" postcode="75001" country="FR"
        spend max="50.00" per="day" currency="EUR"
        per-order max="30.00"
        approval timeout="2m"
    }
}
KDL
  printf '%s\n' "$CANARY" | viv secret set shop-key
  start_broker
  RUN_PIDS=()
  export AGENT CANARY RECEIVED
}

teardown() {
  local p
  for p in "${RUN_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  stop_broker
  if [ -n "${FAKE_PID:-}" ]; then kill "$FAKE_PID" 2>/dev/null || true; fi
}

# order ARGS...: commerce-order-create ARGS... called from inside the agent's jail.
order() {
  viv run --agent "$AGENT" -- commerce-order-create "$@"
}

# order_in_background NAME ARGS...: an order whose exit status lands in NAME.rc, streams in NAME.out/.err.
order_in_background() {
  local name=$1
  shift
  (
    rc=0
    order "$@" >"$BATS_TEST_TMPDIR/$name.out" 2>"$BATS_TEST_TMPDIR/$name.err" || rc=$?
    echo "$rc" >"$BATS_TEST_TMPDIR/$name.rc"
  ) &
  RUN_PIDS+=($!)
}

pending_count() { viv approvals | wc -l; }
has_pending() { [ "$(pending_count)" -ge "${1:-1}" ]; }
rc_count() { find "$BATS_TEST_TMPDIR" -maxdepth 1 -name '*.rc' | wc -l; }
has_rcs() { [ "$(rc_count)" -ge "$1" ]; }
orders_received() { jq -s '[.[] | select(.path == "/wp-json/wc/v3/orders")] | length' "$RECEIVED"; }
received_count() { wc -l <"$RECEIVED" | tr -d ' '; }
approve_all() {
  local id
  for id in $(viv approvals --json | jq -r .id); do viv approve "$id" >/dev/null; done
}

# refute_canary TEXT: TEXT holds no spelling of the canary (raw, base64 of it and of the basic
# auth pair, hex, URL-encoded).
# refute_canary TEXT: TEXT holds no spelling of the canary (secret_spellings).
refute_canary() {
  refute_secret "$1" "$CANARY" "$KEY"
}

@test "a granted order waits for approval showing the shop's real total, then reaches the shop once" {
  order_in_background a --sku BOOK-1 --quantity 2 --shipping-address-id home --confirm
  wait_for has_pending
  run -0 viv approvals --json
  [ "$(jq -r .target <<<"$output")" = "2 x BOOK-1 \"A Small Book\" at 12.50 EUR = 25.00 EUR, shipped to 'home'" ]
  [ "$(jq -r .risk <<<"$output")" = critical ]
  [ "$(orders_received)" -eq 0 ]
  viv approve "$(viv approvals --json | jq -r .id)"
  wait_for has_rcs 1
  [ "$(cat "$BATS_TEST_TMPDIR/a.rc")" -eq 0 ]
  [ "$(cat "$BATS_TEST_TMPDIR/a.err")" = "" ]
  [[ "$(cat "$BATS_TEST_TMPDIR/a.out")" =~ ^\{\"order_id\":[0-9]+,\"total_amount\":\"25.00\",\"currency\":\"EUR\",\"estimated_delivery\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}\"\}$ ]]
  [ "$(orders_received)" -eq 1 ]
  [ "$(jq -c 'select(.path == "/wp-json/wc/v3/orders") | [.auth_ok, .order.line_items, .order.shipping.city]' "$RECEIVED")" = '[true,[{"product_id":11,"quantity":2,"subtotal":"25.00","total":"25.00"}],"Paris"]' ]
  run -0 viv-log --agent "$AGENT" --cap commerce-order-create
  [[ "$output" == *"kind=approval-request "*"budget_id="*'charges="[{\"budget\":\"spend\",\"key\":\"EUR\",\"amount\":\"25.00\"}]"'* ]]
  [[ "$output" == *" kind=result cap=commerce-order-create "*" exit=0 scrubbed=0"* ]]
}

@test "a SKU outside the grant, a quantity over the bound and a missing --confirm ask the shop nothing" {
  run -77 --separate-stderr order --sku PEN-1 --quantity 1 --shipping-address-id home --confirm
  [ "$stderr" = "commerce-order-create: cannot order SKU 'PEN-1': not granted" ]
  run -77 --separate-stderr order --sku BOOK-1 --quantity 4 --shipping-address-id home --confirm
  [ "$stderr" = "commerce-order-create: cannot order 4 of 'BOOK-1': at most 3 per order" ]
  run -77 --separate-stderr order --sku BOOK-1 --quantity 1 --shipping-address-id work --confirm
  [ "$stderr" = "commerce-order-create: cannot ship to 'work': not a granted shipping address" ]
  run -64 --separate-stderr order --sku BOOK-1 --quantity 1 --shipping-address-id home
  [ "$stderr" = "commerce-order-create: missing required option '--confirm'" ]
  [ "$(received_count)" -eq 0 ]
  [ "$(pending_count)" -eq 0 ]
  run -0 viv-log --agent "$AGENT" --cap commerce-order-create
  [[ "$output" == *"kind=deny cap=commerce-order-create "*"stage=authorize exit=77 reason=\"cannot order SKU 'PEN-1': not granted\""* ]]
}

@test "an order over the per-order limit is denied at its real price, before any approval or order" {
  # 3 x BOOK-2 at 30 EUR is 90.00 EUR: the price is the shop's, looked up first.
  run -77 --separate-stderr order --sku BOOK-2 --quantity 3 --shipping-address-id home --confirm
  [ "$stderr" = "commerce-order-create: 90.00 EUR is over the 'per-order' limit of 30.00 EUR" ]
  [ "$(pending_count)" -eq 0 ]
  [ "$(orders_received)" -eq 0 ]
  [ "$(jq -r .path "$RECEIVED")" = /wp-json/wc/v3/products ]
  run -0 viv-log --agent "$AGENT" --cap commerce-order-create
  [[ "$output" == *"kind=deny cap=commerce-order-create "*"stage=budget exit=77 "*"budget=per-order key=EUR amount=\"90.00 EUR\" max=\"30.00 EUR\""* ]]
  # The negative control: one book (30.00 EUR, at the limit) is asked for approval.
  order_in_background one --sku BOOK-2 --quantity 1 --shipping-address-id home --confirm
  wait_for has_pending
}

@test "a burst of concurrent orders never spends more than the daily ceiling" {
  # Five orders of 25.00 EUR at once against 50.00 EUR a day: two are reserved and wait for
  # approval, three are denied at once; approving everything pending orders exactly two.
  local i
  for i in 1 2 3 4 5; do order_in_background "b$i" --sku BOOK-1 --quantity 2 --shipping-address-id home --confirm; done
  wait_for has_rcs 3
  wait_for has_pending 2
  [ "$(pending_count)" -eq 2 ]
  approve_all
  wait_for has_rcs 5
  [ "$(cat "$BATS_TEST_TMPDIR"/b*.rc | sort | uniq -c | sed 's/^ *//' | tr '\n' ' ')" = "2 0 3 75 " ]
  [ "$(orders_received)" -eq 2 ]
  [ "$(jq -rs '[.[] | select(.path == "/wp-json/wc/v3/orders") | .order.line_items[0].total] | join(" ")' "$RECEIVED")" = "25.00 25.00" ]
  run -0 grep -h "commerce-order-create:" "$BATS_TEST_TMPDIR"/b1.err "$BATS_TEST_TMPDIR"/b2.err "$BATS_TEST_TMPDIR"/b3.err "$BATS_TEST_TMPDIR"/b4.err "$BATS_TEST_TMPDIR"/b5.err
  [ "${#lines[@]}" -eq 3 ]
  [ "${lines[0]}" = "commerce-order-create: 'spend' budget of 50.00 EUR per day would be exceeded: 50.00 EUR used, this call 25.00 EUR" ]
}

@test "a denied approval gives its amount back" {
  order_in_background d --sku BOOK-1 --quantity 2 --shipping-address-id home --confirm
  wait_for has_pending
  viv deny "$(viv approvals --json | jq -r .id)" --reason "not today"
  wait_for has_rcs 1
  [ "$(cat "$BATS_TEST_TMPDIR/d.rc")" -eq 77 ]
  # 50.00 EUR is still there: two more orders of 25.00 EUR wait for approval at once.
  order_in_background e1 --sku BOOK-1 --quantity 2 --shipping-address-id home --confirm
  order_in_background e2 --sku BOOK-1 --quantity 2 --shipping-address-id home --confirm
  wait_for has_pending 2
  run -0 viv-log --agent "$AGENT" --cap commerce-order-create
  [[ "$output" == *"kind=deny cap=commerce-order-create "*"stage=approval exit=77 "*" released="* ]]
}

@test "the daily ceiling survives a broker restart" {
  local i
  for i in 1 2; do
    order_in_background "r$i" --sku BOOK-1 --quantity 2 --shipping-address-id home --confirm
    wait_for has_pending
    approve_all
    wait_for has_rcs "$i"
  done
  [ "$(cat "$BATS_TEST_TMPDIR"/r1.rc "$BATS_TEST_TMPDIR"/r2.rc | tr '\n' ' ')" = "0 0 " ]
  stop_broker
  start_broker
  run -75 --separate-stderr order --sku BOOK-1 --quantity 1 --shipping-address-id home --confirm
  [ "$stderr" = "commerce-order-create: 'spend' budget of 50.00 EUR per day would be exceeded: 50.00 EUR used, this call 12.50 EUR" ]
  [ "$(pending_count)" -eq 0 ]
  [ "$(orders_received)" -eq 2 ]
}

@test "an order the shop refuses gives its amount back; one that fails with 500 keeps it" {
  # ORDER-REFUSED and ORDER-500 cost 1.00 EUR each; BOOK-2 costs 30.00 of the 50.00 EUR.
  order_in_background x --sku ORDER-REFUSED --quantity 1 --shipping-address-id home --confirm
  wait_for has_pending
  approve_all
  wait_for has_rcs 1
  [ "$(cat "$BATS_TEST_TMPDIR/x.rc")" -eq 69 ]
  [ "$(cat "$BATS_TEST_TMPDIR/x.err")" = "commerce-order-create: provider 'shop' refused the order: woocommerce_rest_invalid_product_id: Product ID provided is invalid. (HTTP 400)" ]
  order_in_background y --sku ORDER-500 --quantity 1 --shipping-address-id home --confirm
  wait_for has_pending
  approve_all
  wait_for has_rcs 2
  [ "$(cat "$BATS_TEST_TMPDIR/y.err")" = "commerce-order-create: provider 'shop' failed: HTTP 500" ]
  run -0 viv-log --agent "$AGENT" --cap commerce-order-create
  [[ "$output" == *" kind=result cap=commerce-order-create "*" exit=69 scrubbed=0 released="* ]]
  # 1.00 EUR is kept of the 50.00 (32.00 would show had the refused one been kept too): one
  # book of 30.00 waits for approval, a second is refused with what is used.
  order_in_background z --sku BOOK-2 --quantity 1 --shipping-address-id home --confirm
  wait_for has_pending
  run -75 --separate-stderr order --sku BOOK-2 --quantity 1 --shipping-address-id home --confirm
  [ "$stderr" = "commerce-order-create: 'spend' budget of 50.00 EUR per day would be exceeded: 31.00 EUR used, this call 30.00 EUR" ]
}

@test "provider errors are one line with 69 or 65, before any approval" {
  run -69 --separate-stderr order --sku SERVER-ERROR --quantity 1 --shipping-address-id home --confirm
  [ "$stderr" = "commerce-order-create: provider 'shop' failed: HTTP 500" ]
  run -65 --separate-stderr order --sku GARBAGE --quantity 1 --shipping-address-id home --confirm
  [ "$stderr" = "commerce-order-create: provider 'shop' sent a product list that is not a JSON array (HTTP 200)" ]
  run -65 --separate-stderr order --sku BOOK-9 --quantity 1 --shipping-address-id home --confirm
  [ "$stderr" = "commerce-order-create: no product with SKU 'BOOK-9' in the shop of provider 'shop'" ]
  run -69 --separate-stderr order --sku SLOW --quantity 1 --shipping-address-id home --confirm
  [ "$stderr" = "commerce-order-create: provider 'shop' failed: no reply within 15000 ms" ]
  printf 'cs_wrong\n' | viv secret set shop-key
  run -69 --separate-stderr order --sku BOOK-1 --quantity 1 --shipping-address-id home --confirm
  [ "$stderr" = "commerce-order-create: provider 'shop' refused the product lookup: woocommerce_rest_cannot_view: Sorry, you cannot list resources. (HTTP 401)" ]
  [ "$(jq -r .auth_ok "$RECEIVED" | tail -n 1)" = false ]
  [ "$(pending_count)" -eq 0 ]
  [ "$(orders_received)" -eq 0 ]
  run -0 viv-log --agent "$AGENT" --cap commerce-order-create
  [[ "$output" == *"kind=deny cap=commerce-order-create "*"stage=quote exit=65 "* ]]
}

@test "the secret reaches the shop and never a record, a result or an error line, even when echoed" {
  run -69 --separate-stderr order --sku ECHO-SECRET --quantity 1 --shipping-address-id home --confirm
  [[ "$stderr" == "commerce-order-create: provider 'shop' refused the product lookup: woocommerce_rest_invalid_sku: unknown key: secret [secret scrubbed] basic [secret scrubbed] hex [secret scrubbed]"* ]]
  refute_canary "$stderr"
  order_in_background ok --sku ORDER-ECHO --quantity 1 --shipping-address-id home --confirm
  wait_for has_pending
  approve_all
  wait_for has_rcs 1
  [ "$(cat "$BATS_TEST_TMPDIR/ok.rc")" -eq 0 ]
  refute_canary "$(cat "$BATS_TEST_TMPDIR/ok.out" "$BATS_TEST_TMPDIR/ok.err")"
  # A product named after the secret: the operator's view and the request record show it scrubbed.
  order_in_background nm --sku ECHO-NAME --quantity 1 --shipping-address-id home --confirm
  wait_for has_pending
  run -0 viv approvals --json
  [[ "$(jq -r .target <<<"$output")" == '1 x ECHO-NAME "Echo secret [secret scrubbed] basic [secret scrubbed] hex [secret scrubbed]'* ]]
  refute_canary "$output"
  viv deny "$(viv approvals --json | jq -r .id)"
  wait_for has_rcs 2
  # The canary did reach the shop: every request was authenticated.
  [ "$(jq -r .auth_ok "$RECEIVED" | sort -u)" = true ]
  run -0 viv-log
  refute_canary "$output"
  run -0 viv-log --json
  refute_canary "$output"
  stop_broker
  local f
  for f in "$STATE"/audit.db*; do refute_canary "$(tr -d '\0' <"$f")"; done
  # The negative control: the search finds the canary where it is.
  run -1 refute_canary "$(cat "$BATS_TEST_TMPDIR/secret")"
}

@test "every example in commerce-order-create(1) runs in a jail and prints what the page says" {
  local dir="$BATS_TEST_TMPDIR/examples" n=0 f cmd expected
  man_examples commerce-order-create "$dir"
  for f in "$dir"/*.cmd; do
    n=$((n + 1))
    cmd=$(cat "$f")
    expected=$(cat "${f%.cmd}.out")
    rm -f "$BATS_TEST_TMPDIR/ex.rc"
    (
      rc=0
      viv run --agent "$AGENT" -- sh -c "$cmd 2>&1" >"$BATS_TEST_TMPDIR/ex.out" || rc=$?
      echo "$rc" >"$BATS_TEST_TMPDIR/ex.rc"
    ) &
    RUN_PIDS+=($!)
    # The order waits for its approval; the page says so.
    wait_for sh -c "[ -e '$BATS_TEST_TMPDIR/ex.rc' ] || [ \"\$(viv approvals | wc -l)\" -ge 1 ]"
    approve_all
    wait_for test -e "$BATS_TEST_TMPDIR/ex.rc"
    output=$(cat "$BATS_TEST_TMPDIR/ex.out")
    [ -n "$expected" ]
    [ "${output:0:${#expected}}" = "$expected" ]
  done
  [ "$n" -eq 2 ]
}

@test "a secret removed while the order waits for approval denies it, and gives its amount back" {
  order_in_background w --sku BOOK-1 --quantity 2 --shipping-address-id home --confirm
  wait_for has_pending
  viv secret rm shop-key
  approve_all
  wait_for has_rcs 1
  [ "$(cat "$BATS_TEST_TMPDIR/w.rc")" -eq 69 ]
  [[ "$(cat "$BATS_TEST_TMPDIR/w.err")" == "commerce-order-create: credential 'shop-key' unavailable: "* ]]
  [ "$(orders_received)" -eq 0 ]
  run -0 viv-log --agent "$AGENT" --cap commerce-order-create
  [[ "$output" == *"kind=deny cap=commerce-order-create "*"stage=credential exit=69 "*" released="* ]]
}
