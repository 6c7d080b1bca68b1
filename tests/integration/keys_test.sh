#!/usr/bin/env bash
# `tokengo-agent keys` run as a real process: keys set (key on stdin only),
# list, seal-all, the key file and passphrase sources, check-config on the
# sealed file, and that no command ever prints a key or takes it from argv.
set -uo pipefail
agent="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
fails=0
passes=0
all_output="$work/all-output.log"  # every byte any command printed
: >"$all_output"

ok()   { passes=$((passes + 1)); }
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

KEY_A="sk-proj-KEYSTOREITEST-a1b2c3d4e5f6"
KEY_B="sk-ant-KEYSTOREITEST-b7c8d9e0f1"
KEY_C="sk-KEYSTOREITEST-c2d3e4f5a6"
PIN="sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

# expect CODE PATTERN CMD... (stdin: /dev/null): exit code and a pattern in stdout+stderr.
expect() {
  local code="$1" pattern="$2"; shift 2
  local out rc
  out="$("$@" 2>&1 </dev/null)"; rc=$?
  printf '%s\n' "$out" >>"$all_output"
  if [ "$rc" -ne "$code" ]; then fail "$* exited $rc, want $code: $out"; return; fi
  if ! grep -qE -- "$pattern" <<<"$out"; then fail "$* output lacks /$pattern/: $out"; return; fi
  ok
}

# expect_in INPUT CODE PATTERN CMD...: the same with INPUT on stdin (printf
# is a shell builtin: the key is never in a process's argv).
expect_in() {
  local input="$1" code="$2" pattern="$3"; shift 3
  local out rc
  out="$(printf '%s' "$input" | "$@" 2>&1)"; rc=$?
  printf '%s\n' "$out" >>"$all_output"
  if [ "$rc" -ne "$code" ]; then fail "$* exited $rc, want $code: $out"; return; fi
  if ! grep -qE -- "$pattern" <<<"$out"; then fail "$* output lacks /$pattern/: $out"; return; fi
  ok
}

absent() {  # absent KEY FILE WHAT
  if grep -qF -- "$1" "$2"; then fail "$3 holds the key"; else ok; fi
}

write_conf() {  # write_conf FILE [GLOBAL LINES]
  cat >"$1" <<EOF
# test agent.conf
hub = wss://hub.test:8443/tunnel
hub_pin = $PIN
$2

[provider a]
type = openai
api_key = $KEY_A
models = gpt-4o-mini

# second vendor
[provider b]
type = anthropic
api_key = $KEY_B
models = claude-3-5-haiku-latest

[provider c]
type = local
url = http://127.0.0.1:11434
models = llama3.2
EOF
  chmod 640 "$1"
}

# ---- first set-up: plain keys work, with one warning per provider ----------
write_conf agent.conf ""
sed -i '/^models = llama3.2/i api_key = '"$KEY_C" agent.conf
cp agent.conf original.conf
expect 0 "agent.conf: ok" "$agent" check-config --config agent.conf
expect 0 "WARN.*agent.conf:8: api_key of \[provider a\] is stored in plain text; run 'tokengo-agent keys set a' or 'keys seal-all'" \
  "$agent" check-config --config agent.conf
n="$("$agent" check-config --config agent.conf 2>&1 | tee -a "$all_output" | grep -c 'stored in plain text')"
[ "$n" = "3" ] && ok || fail "want 3 plain-text warnings, got $n"
expect 0 "^a +openai +plain$" "$agent" keys list --config agent.conf
expect 0 "^PROVIDER +TYPE +API_KEY$" "$agent" keys list --config agent.conf

# ---- keys set: the key from stdin, sealed in place ---------------------------
expect_in "$KEY_A"$'\n' 0 "^sealed api_key of \[provider a\] into agent.conf \(seal key file seal.key\)$" \
  "$agent" keys set a --config agent.conf
absent "$KEY_A" agent.conf "agent.conf after keys set"
grep -qE '^api_key = sealed:v1:keyfile:[A-Za-z0-9+/]+=*$' agent.conf && ok || fail "no sealed api_key line"
[ "$(stat -c %a agent.conf)" = "640" ] && ok || fail "agent.conf mode changed to $(stat -c %a agent.conf)"
[ "$(stat -c %a seal.key)" = "600" ] && ok || fail "seal.key mode is $(stat -c %a seal.key)"
[ "$(stat -c %s seal.key)" = "32" ] && ok || fail "seal.key is $(stat -c %s seal.key) bytes"
# Every other byte is kept: only line 8 differs.
diff <(sed 8d original.conf) <(sed 8d agent.conf) >/dev/null && ok || fail "keys set changed other lines"
[ "$(wc -l <agent.conf)" = "$(wc -l <original.conf)" ] && ok || fail "line count changed"
ls agent.conf.tmp-* >/dev/null 2>&1 && fail "a temporary file was left behind" || ok
expect 0 "^agent.conf: ok$" "$agent" check-config --config agent.conf
out="$("$agent" check-config --config agent.conf 2>&1)"
printf '%s\n' "$out" >>"$all_output"
grep -q "provider a\] is stored in plain text" <<<"$out" && fail "still warns about a: $out" || ok
expect 0 "^a +openai +sealed \(keyfile\)$" "$agent" keys list --config agent.conf
expect 0 "^b +anthropic +plain$" "$agent" keys list --config agent.conf

# keys set again replaces the sealed value; the key file is reused.
cp seal.key seal.key.before
expect_in "$KEY_A-v2" 0 "sealed api_key of \[provider a\]" "$agent" keys set a --config agent.conf
cmp -s seal.key seal.key.before && ok || fail "the seal key file was replaced"
[ "$(grep -c '^api_key = sealed:' agent.conf)" = "1" ] && ok || fail "want one sealed line"
expect 0 "agent.conf: ok" "$agent" check-config --config agent.conf

# A section without api_key gets one right after its header.
write_conf nokey.conf ""
expect_in "$KEY_C" 0 "sealed api_key of \[provider c\]" "$agent" keys set c --config nokey.conf
[ "$(sed -n '/^\[provider c\]/{n;p}' nokey.conf | cut -c1-28)" = "api_key = sealed:v1:keyfile:" ] && ok \
  || fail "api_key not added after [provider c]: $(cat nokey.conf)"
expect 0 "^c +local +sealed \(keyfile\)$" "$agent" keys list --config nokey.conf

# ---- the key never comes from argv, and bad input is refused -----------------
cp agent.conf before-argv.conf
expect 2 "keys: takes arguments: set PROVIDER \| list \| seal-all, got 3" \
  "$agent" keys set a "$KEY_B" --config agent.conf
expect 2 "keys: unknown subcommand; use: keys set PROVIDER \| keys list \| keys seal-all" \
  "$agent" keys "$KEY_B" --config agent.conf
expect 1 "no \[provider\] section of that name in agent.conf \(providers: a, b, c\)" \
  "$agent" keys set "$KEY_B" --config agent.conf
expect 2 "keys set: needs one PROVIDER name \(the key is read from stdin" "$agent" keys set --config agent.conf
expect 2 "keys list: takes no further arguments" "$agent" keys list b --config agent.conf
expect 1 "keys set: stdin: no key given \(empty input\)" "$agent" keys set b --config agent.conf
expect_in "$KEY_B"$'\nmore\n' 1 "stdin: more than one line" "$agent" keys set b --config agent.conf
expect_in "sk bad key" 1 "stdin: the key has a space, control or non-ASCII byte at position 3" \
  "$agent" keys set b --config agent.conf
cmp -s agent.conf before-argv.conf && ok || fail "a refused command changed agent.conf"

# While keys set waits for its key, its command line holds no key.
mkfifo keypipe
"$agent" keys set b --config agent.conf <keypipe >argv-run.log 2>&1 &
pid=$!
exec 3>keypipe  # lets the shell open the pipe and exec the agent
cmdline=""
for _ in $(seq 100); do
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
  [[ "$cmdline" == *"keys set"* ]] && break
  sleep 0.05
done
[[ "$cmdline" == *"keys set b --config agent.conf"* ]] && ok || fail "unexpected cmdline: $cmdline"
[[ "$cmdline" != *"$KEY_B"* ]] && ok || fail "the key is in argv"
printf '%s\n' "$KEY_B" >&3
exec 3>&-
wait "$pid" && ok || fail "keys set from a pipe failed: $(cat argv-run.log)"
cat argv-run.log >>"$all_output"
absent "$KEY_B" agent.conf "agent.conf after keys set b"
expect 0 "^b +anthropic +sealed \(keyfile\)$" "$agent" keys list --config agent.conf

# ---- a sealed key is bound to its provider and to the key file ---------------
sealed_a="$(grep -m1 '^api_key = sealed:' agent.conf)"
sed "/^\[provider b\]/,/^models/{s|^api_key = .*|$sealed_a|}" agent.conf >moved.conf
chmod 600 moved.conf
expect 1 "moved.conf:14: \[provider b\]: api_key: value was sealed for \[provider a\] type openai, not for \[provider b\] type anthropic" \
  "$agent" check-config --config moved.conf
sed "0,/^type = openai/s//type = azure\nresource = r\ndeployment = d/" agent.conf >retyped.conf
expect 1 "sealed for \[provider a\] type openai, not for \[provider a\] type azure" \
  "$agent" check-config --config retyped.conf
chmod 644 seal.key
expect 1 "seal key file is accessible by group or others \(mode 0644\); run: chmod 600 .*seal.key" \
  "$agent" check-config --config agent.conf
expect 1 "accessible by group or others" "$agent" keys set c --config agent.conf
chmod 600 seal.key
mv seal.key seal.key.real
head -c 32 /dev/urandom >seal.key && chmod 600 seal.key
expect 1 "agent.conf:8: \[provider a\]: api_key: sealed value does not open with this seal key file \(wrong key, or the value was altered\)" \
  "$agent" check-config --config agent.conf
rm seal.key
expect 1 "seal.key: cannot open seal key file: No such file" "$agent" check-config --config agent.conf
mv seal.key.real seal.key
# One base64 character of the nonce changed (to a different one).
line_a="$(grep -m1 '^api_key = sealed:' agent.conf)"
c="${line_a:30:1}"; [ "$c" = "A" ] && r="B" || r="A"
awk -v new="${line_a:0:30}$r${line_a:31}" 'NR == 8 { print new; next } { print }' agent.conf >tampered.conf
expect 1 "tampered.conf:8: \[provider a\]: api_key: sealed value does not open" \
  "$agent" check-config --config tampered.conf
sed 's|^\(api_key = sealed:v1:keyfile:\).*|\1QUJD|' agent.conf >short.conf
expect 1 "short.conf:8: \[provider a\]: api_key: sealed value: box is 3 bytes, must be 43\.\.1320 \(truncated\?\)" \
  "$agent" check-config --config short.conf
sed 's|^\(api_key = sealed:v1:keyfile:\).*|\1not*base64|' agent.conf >b64.conf
expect 1 "b64.conf:8: \[provider a\]: api_key: sealed value: box: base64" \
  "$agent" check-config --config b64.conf

# ---- seal-all migrates a first set-up config in one write --------------------
write_conf all.conf ""
expect 0 "sealed api_key of \[provider b\] into all.conf" "$agent" keys seal-all --config all.conf
absent "$KEY_A" all.conf "all.conf after seal-all"
absent "$KEY_B" all.conf "all.conf after seal-all"
[ "$(grep -c '^api_key = sealed:v1:keyfile:' all.conf)" = "2" ] && ok || fail "seal-all sealed $(grep -c '^api_key = sealed' all.conf) keys"
expect 0 "^all.conf: ok$" "$agent" check-config --config all.conf
expect 0 "nothing to seal: no api_key in all.conf is in plain text" "$agent" keys seal-all --config all.conf

# ---- passphrase source: Argon2id, from the environment or a file -------------
mkdir pass && cd pass
write_conf agent.conf "seal_with = passphrase"
expect_in "$KEY_A" 1 "no passphrase: set seal_passphrase_file in the config or the environment variable TOKENGO_PASSPHRASE" \
  "$agent" keys set a --config agent.conf
expect_in "$KEY_A" 0 "sealed api_key of \[provider a\] into agent.conf \(passphrase from TOKENGO_PASSPHRASE, argon2id\)" \
  env TOKENGO_PASSPHRASE="router words" "$agent" keys set a --config agent.conf
expect 0 "sealed api_key of \[provider b\]" env TOKENGO_PASSPHRASE="router words" "$agent" keys seal-all --config agent.conf
absent "$KEY_A" agent.conf "passphrase agent.conf"
absent "$KEY_B" agent.conf "passphrase agent.conf"
[ ! -e seal.key ] && ok || fail "passphrase mode made a key file"
# One salt for the whole file: a single Argon2id run opens every key.
[ "$(grep '^api_key = sealed:v1:argon2id:' agent.conf | cut -d: -f4 | sort -u | wc -l)" = "1" ] && ok \
  || fail "more than one salt: $(grep '^api_key' agent.conf)"
expect 0 "agent.conf: ok" env TOKENGO_PASSPHRASE="router words" "$agent" check-config --config agent.conf
expect 1 "agent.conf:8: \[provider a\]: api_key: no passphrase" "$agent" check-config --config agent.conf
expect 1 "does not open with this passphrase" env TOKENGO_PASSPHRASE="wrong words" "$agent" check-config --config agent.conf
printf 'router words\n' >pass.txt && chmod 600 pass.txt
sed -i 's/^seal_with = passphrase$/seal_with = passphrase\nseal_passphrase_file = pass.txt/' agent.conf
expect 0 "agent.conf: ok" "$agent" check-config --config agent.conf
chmod 640 pass.txt
expect 1 "passphrase file is accessible by group or others \(mode 0640\); run: chmod 600" \
  "$agent" check-config --config agent.conf
cd ..

# ---- no command printed a key ------------------------------------------------
for k in "$KEY_A" "$KEY_B" "$KEY_C"; do
  absent "$k" "$all_output" "the output of the commands"
done

echo "keys: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
