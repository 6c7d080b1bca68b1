#!/usr/bin/env bash
# Operator commands over the agent registry, run as real processes:
# agent approve/revoke/list, enroll, and bad input (clear message, exit 2).
set -uo pipefail
agent="$1"
hub="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
fails=0
passes=0

ok()   { passes=$((passes + 1)); }
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# expect CODE PATTERN CMD... : exit code and a pattern in stdout+stderr.
expect() {
  local code="$1" pattern="$2"; shift 2
  local out rc
  out="$("$@" 2>&1)"; rc=$?
  if [ "$rc" -ne "$code" ]; then fail "$* exited $rc, want $code: $out"; return; fi
  if ! grep -qE -- "$pattern" <<<"$out"; then fail "$* output lacks /$pattern/: $out"; return; fi
  ok
}

# re TEXT: TEXT with regex metacharacters escaped (base64 keys hold '+' and '/').
re() { sed 's/[][\\.*^$+?(){}|/]/\\&/g' <<<"$1"; }

key="$("$agent" keygen --out a.key 2>/dev/null)" || fail "agent keygen failed"
other="$("$agent" keygen --out b.key 2>/dev/null)" || fail "agent keygen failed"
unknown="$("$agent" keygen --out c.key 2>/dev/null)" || fail "agent keygen failed"
k="$(re "$key")"; o="$(re "$other")"; u="$(re "$unknown")"

# list and revoke never create a registry: a typo in --db is an error.
expect 1 "registry 'tokengo-hub.db' does not exist" "$hub" agent list
[ ! -e tokengo-hub.db ] && ok || fail "agent list created the registry"

# approve: the default registry file is created with mode 0600.
expect 0 "^approved $k owner=alice tier=0.85$" "$hub" agent approve "$key" --owner alice --tier 0.85
[ "$(stat -c %a tokengo-hub.db)" = "600" ] && ok || fail "registry mode is $(stat -c %a tokengo-hub.db)"
expect 0 "^already approved: $k" "$hub" agent approve "$key" --owner alice --tier 0.85
expect 0 "^changed tier of $k owner=alice tier=0.9$" "$hub" agent approve "$key" --owner alice --tier 0.9
expect 1 "already approved for owner 'alice'" "$hub" agent approve "$key" --owner bob
expect 0 "^approved $o owner=bob tier=1$" "$hub" agent approve "$other" --owner bob --db tokengo-hub.db

# list: a table with the key, owner, status, tier, online flag; --json too.
expect 0 "^PUBKEY +OWNER +STATUS +TIER +ONLINE +LAST SEEN +LAST ADDRESS" "$hub" agent list
expect 0 "^$k +alice +approved +0\.9 +no +never +-$" "$hub" agent list
expect 0 "\"pubkey\":\"$k\",\"owner\":\"alice\",\"status\":\"approved\",\"tier_ppm\":900000" "$hub" agent list --json
if command -v python3 >/dev/null; then
  n="$("$hub" agent list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
  [ "$n" = "2" ] && ok || fail "list --json is not a JSON array of 2 agents: $n"
fi

# revoke: shown as revoked; again is a no-op; unknown key is an error.
expect 0 "^revoked $k" "$hub" agent revoke "$key"
expect 0 "^$k +alice +revoked " "$hub" agent list
expect 0 "\"status\":\"revoked\"" "$hub" agent list --json
expect 0 "already revoked" "$hub" agent revoke "$key"
expect 1 "$u is not in the registry" "$hub" agent revoke "$unknown"
expect 0 "^approved again $k owner=carol" "$hub" agent approve "$key" --owner carol

# enroll: a one-time token on stdout, a note on stderr, a fresh token each time.
t1="$("$hub" enroll --owner dave --tier 0.5 --ttl 2h 2>/dev/null)" && ok || fail "enroll failed"
[[ "$t1" =~ ^tge_[0-9a-f]{64}$ ]] && ok || fail "token has the wrong form: $t1"
t2="$("$hub" enroll --owner dave 2>/dev/null)" && ok || fail "enroll failed"
[ "$t1" != "$t2" ] && ok || fail "enroll printed the same token twice"
expect 0 "shown only this once" "$hub" enroll --owner dave
if command -v strings >/dev/null; then
  ! strings tokengo-hub.db* | grep -q "${t1#tge_}" && ok || fail "the token is stored in clear"
fi

# bad input: exit 2 and a message naming the problem.
expect 2 "'1\.5' is above 1" "$hub" agent approve "$key" --owner alice --tier 1.5
expect 2 "'abc' is not a decimal number" "$hub" agent approve "$key" --owner alice --tier abc
expect 2 "more than 6 decimals" "$hub" agent approve "$key" --owner alice --tier 0.1234567
expect 2 "'-0\.1' is negative" "$hub" agent approve "$key" --owner alice --tier -0.1
expect 2 "owner name 'a b' has a character" "$hub" agent approve "$key" --owner "a b"
expect 2 "at most 64" "$hub" agent approve "$key" --owner "$(printf 'x%.0s' {1..65})"
expect 2 "--owner NAME is required" "$hub" agent approve "$key"
expect 2 "'not-a-key' is not base64 of 32 bytes" "$hub" agent approve not-a-key --owner alice
expect 2 "not base64 of 32 bytes" "$hub" agent revoke QUJD
expect 2 "agent approve: takes PUBKEY" "$hub" agent approve --owner alice
expect 2 "unknown subcommand 'frob'" "$hub" agent frob
expect 2 "agent: takes arguments" "$hub" agent
expect 2 "option '--owner' does not apply" "$hub" agent revoke "$key" --owner alice
expect 2 "option '--tier' does not apply" "$hub" agent list --tier 1
expect 2 "agent list: takes no PUBKEY" "$hub" agent list "$key"
expect 2 "enroll: --owner NAME is required" "$hub" enroll
expect 2 "--ttl '5s' is outside 1m\.\.30d" "$hub" enroll --owner dave --ttl 5s
expect 2 "--ttl '1y' has no unit" "$hub" enroll --owner dave --ttl 1y
expect 2 "--tier '2' is above 1" "$hub" enroll --owner dave --tier 2
expect 2 "enroll: takes no arguments" "$hub" enroll extra --owner dave

echo "agent admin: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
