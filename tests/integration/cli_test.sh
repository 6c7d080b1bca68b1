#!/usr/bin/env bash
# Command-line behaviour of both programs, run as real processes:
# help, version, bad input (clear message, exit 2), key files, hub certificate.
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

# expect_out WANT CMD... : exit 0 and stdout exactly WANT.
expect_out() {
  local want="$1"; shift
  local out
  if ! out="$("$@" 2>/dev/null)"; then fail "$* failed"; return; fi
  if [ "$out" != "$want" ]; then fail "$* printed '$out', want '$want'"; return; fi
  ok
}

for prog in "$agent" "$hub"; do
  name="$(basename "$prog")"
  expect 0 "^usage: $name COMMAND" "$prog" --help
  expect 0 "keygen" "$prog" --help
  expect 0 "^$name [0-9]+\.[0-9]+\.[0-9]+ \(.*libuv" "$prog" --version
  expect 2 "no command given" "$prog"
  expect 2 "unknown command 'launch'" "$prog" launch
  expect 2 "unknown option '--frob'" "$prog" --frob
  expect 2 "keygen: unknown option '--frob'" "$prog" keygen --frob
  expect 2 "keygen: option '--out' needs a value" "$prog" keygen --out
done

# keygen: a 0600 key file, its public key printed; never silently replaced.
pub="$("$agent" keygen --out id.key 2>/dev/null)" && ok || fail "agent keygen failed"
[ "$(stat -c %a id.key)" = "600" ] && ok || fail "key file mode is $(stat -c %a id.key)"
[[ "$pub" =~ ^[A-Za-z0-9+/]{43}=$ ]] && ok || fail "public key is not 32 bytes of base64: $pub"
expect_out "$pub" "$agent" pubkey --key id.key
expect 1 "already exists" "$agent" keygen --out id.key
pub2="$("$agent" keygen --out id.key --force 2>/dev/null)" && ok || fail "keygen --force failed"
[ "$pub2" != "$pub" ] && ok || fail "--force did not make a new key"
chmod 644 id.key
expect 1 "readable by others" "$agent" pubkey --key id.key
expect 1 "no such file|not found|No such" "$agent" pubkey --key missing.key

# hub cert: created on first call with the key at 0600, same pin afterwards.
pin="$("$hub" cert --cert hub.crt --key hub-tls.key --name hub.test 2>/dev/null)" && ok || fail "hub cert failed"
[[ "$pin" =~ ^sha256/[A-Za-z0-9+/]{43}=$ ]] && ok || fail "pin has the wrong form: $pin"
[ "$(stat -c %a hub-tls.key)" = "600" ] && ok || fail "TLS key mode is $(stat -c %a hub-tls.key)"
expect_out "$pin" "$hub" cert --cert hub.crt --key hub-tls.key --name hub.test
expect_out "$pin" "$hub" pin --cert hub.crt
expect 1 "hub.crt.missing" "$hub" pin --cert hub.crt.missing
grep -q "BEGIN CERTIFICATE" hub.crt && ok || fail "hub.crt is not PEM"

echo "cli: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
