#!/usr/bin/env python3
"""Billing and the dual ledger with real processes: hub, agent and the fake
vendor on 127.0.0.1 (setup shared with passthrough_test.py). Every model
costs 3 micro-units per input token, 1 per cached input token and 7 per
output token (harness.World.write_prices); the fake vendor's token counts
are deterministic (words of the last message in, one token per chunk out).

Usage: billing_test.py --hub BIN --agent BIN --fakes DIR --node NODE [--case NAME ...]
Ends with "billing: N passed, N failed".
"""

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time

from harness import WAIT, Proc, run_cases
from passthrough_test import chat, post, setup

SETTLE_WAIT = 20.0


def hub_json(w, *args, expect=0):
    return json.loads(w.cli(*args, "--json", expect=expect))


def agent_cli(w, env, *args, expect=0):
    r = subprocess.run([w.agent_bin] + list(args) + ["--config", env["agent_conf"]],
                       capture_output=True, text=True, timeout=WAIT, cwd=w.dir)
    if r.returncode != expect:
        raise AssertionError("tokengo-agent %s exited %d, want %d:\n%s%s" %
                             (" ".join(args), r.returncode, expect, r.stdout, r.stderr))
    return r.stdout


def agent_verify(w, env, expect=0):
    return json.loads(agent_cli(w, env, "ledger", "verify", "--json", expect=expect))


def wait_settled(w, env, user, requests):
    """Waits until `user` has `requests` settled requests and the agent's
    outbox is empty with as many entries; returns (user show, agent verify)."""
    deadline = time.monotonic() + SETTLE_WAIT
    while True:
        u = hub_json(w, "user", "show", user)
        a = agent_verify(w, env)
        if u["requests"] >= requests and a["entries"] >= requests and a["outbox"] == 0:
            return u, a
        if time.monotonic() > deadline:
            raise AssertionError("not settled: user %r, agent %r" % (u, a))
        time.sleep(0.1)


def export(w, env):
    lines = agent_cli(w, env, "ledger", "export").splitlines()
    return [json.loads(l) for l in lines if l.startswith('{"agent"')]


def hub_chain(w, pubkey):
    db = sqlite3.connect(w.path("tokengo-hub.db"))
    try:
        return db.execute("SELECT seq, request_id, cost, credit, hex(hash) FROM ledger "
                          "WHERE agent = ? ORDER BY seq", (pubkey,)).fetchall()
    finally:
        db.close()


def anthropic(model, stream=False, text="one two three"):
    return {"model": model, "max_tokens": 100, "stream": stream,
            "messages": [{"role": "user", "content": text}]}


def case_every_api_settles_once_with_exact_costs(w):
    env = setup(w, hub_sections="[billing]\ncheckpoint_every = 2\n")
    w.cli("agent", "approve", env["pubkey"], "--owner", "bob", "--tier", "0.8")
    api, tok = env["api"], env["token"]
    expected = []  # (cost, credit) per request

    s, _, b = post(api, "/v1/chat/completions", chat("fake-echo"), tok)
    assert s == 200, (s, b)
    expected.append(5 * 3 + 5 * 7)  # 5 words in, 5 chunks out

    # Streamed without include_usage: the hub asks for the usage chunk and
    # keeps it from this user.
    s, _, b = post(api, "/v1/chat/completions", chat("fake-chunks-6", stream=True), tok)
    assert s == 200, (s, b)
    assert b.rstrip().endswith(b"data: [DONE]"), b[-200:]
    assert b'"usage":{' not in b.replace(b" ", b""), "usage chunk shown to a user who did not ask"
    expected.append(5 * 3 + 6 * 7)

    # Streamed with include_usage: the user asked, the user sees it.
    body = chat("fake-chunks-6", stream=True)
    body["stream_options"] = {"include_usage": True}
    s, _, b = post(api, "/v1/chat/completions", body, tok)
    assert s == 200, (s, b)
    assert b'"usage":{' in b.replace(b" ", b""), b[-400:]
    expected.append(5 * 3 + 6 * 7)

    s, _, b = post(api, "/v1/embeddings", {"model": "fake-echo", "input": "a b c"}, tok)
    assert s == 200, (s, b)
    expected.append(3 * 3)

    for stream in (False, True):
        s, _, b = post(api, "/v1/messages", anthropic("fake-chunks-5", stream), None,
                       headers={"x-api-key": tok, "anthropic-version": "2023-06-01"})
        assert s == 200, (s, b)
        expected.append(3 * 3 + 5 * 7)

    u, a = wait_settled(w, env, "alice", len(expected))
    credits = [c * 8 // 10 for c in expected]
    print("    costs %s -> %d micro-units; credits at tier 0.8 -> %d" %
          (expected, sum(expected), sum(credits)))
    assert u["requests"] == len(expected), u
    assert u["spent_micros"] == sum(expected), (u, expected)
    assert u["balance_micros"] == 1000 * 10**6 - sum(expected), u
    assert a["ok"] and a["agreed"] == len(expected) and a["disputed"] == 0, a
    assert a["total_cost"] == sum(expected) and a["total_credit"] == sum(credits), a
    # checkpoint_every = 2: a checkpoint after every settled batch that
    # brought the chain 2 or more entries further (batches may hold several).
    assert a["checkpoints"] >= 1, a
    h = hub_json(w, "ledger", "verify")
    assert h["ok"], h
    [chain] = [c for c in h["chains"] if c["agent"] == env["pubkey"]]
    assert chain["head"] == a["head"] and chain["head_seq"] == a["head_seq"], (chain, a)
    assert chain["total_credit"] == sum(credits), chain
    # Entry for entry, the same chain on both sides.
    mine = [(e["seq"], e["request_id"], e["cost"], e["credit"], e["hash"].upper()) for e in export(w, env)]
    assert mine == hub_chain(w, env["pubkey"]), (mine, hub_chain(w, env["pubkey"]))


def case_balance_under_the_minimum_is_402(w):
    env = setup(w, hub_sections="[billing]\nmin_balance = 0.0001\n")
    w.cli("user", "add", "poor")
    w.cli("user", "credit", "poor", "0.00009")
    tok = w.cli("token", "create", "poor").splitlines()[-1].strip()
    s, h, b = post(env["api"], "/v1/chat/completions", chat("fake-echo"), tok)
    assert s == 402, (s, b)
    err = json.loads(b)["error"]
    assert err["type"] == "insufficient_quota" and "0.000090" in err["message"], err
    assert h.get("x-request-id"), h
    s, _, b = post(env["api"], "/v1/messages", anthropic("fake-chunks-5"), None,
                   headers={"x-api-key": tok, "anthropic-version": "2023-06-01"})
    assert s == 402, (s, b)
    doc = json.loads(b)
    assert doc["type"] == "error" and doc["error"]["type"] == "billing_error", doc
    # A credit lets the same user through.
    w.cli("user", "credit", "poor", "1")
    s, _, b = post(env["api"], "/v1/chat/completions", chat("fake-echo"), tok)
    assert s == 200, (s, b)


def case_user_gone_mid_stream_is_billed_identically_on_both_sides(w):
    env = setup(w)
    body = json.dumps(chat("fake-chunks-400-slow-20", stream=True)).encode()
    sock = socket.create_connection(("127.0.0.1", env["api"]), timeout=WAIT)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " +
                 env["token"].encode() + b"\r\ncontent-type: application/json\r\ncontent-length: " +
                 str(len(body)).encode() + b"\r\n\r\n" + body)
    got = b""
    while got.count(b"data: ") < 5:
        got += sock.recv(65536)
    sock.close()
    u, a = wait_settled(w, env, "alice", 1)
    [e] = export(w, env)
    print("    aborted after ~5 chunks: billed in=%d out=%d estimated=%s cost=%d" %
          (e["input"], e["output"], e["estimated"], e["cost"]))
    assert e["estimated"] is True, e       # no usage chunk was ever sent
    assert 5 <= e["output"] < 400, e        # what was forwarded, not what was asked
    assert e["cost"] > 0 and u["spent_micros"] == e["cost"], (e, u)
    assert a["agreed"] == 1 and a["disputed"] == 0, a  # the agent read the same bytes
    assert hub_json(w, "ledger", "verify")["ok"]


def case_empty_or_failed_answers_cost_nothing(w):
    env = setup(w)
    # A 500 (after the agent's own retries; no other agent to fail over to),
    # then a 429 (which pauses the provider: it goes last).
    s, _, _ = post(env["api"], "/v1/chat/completions", chat("fake-500", stream=True), env["token"])
    assert s == 500
    s, h, _ = post(env["api"], "/v1/chat/completions", chat("fake-429"), env["token"])
    assert s == 429 and h.get("retry-after") == "2", (s, h)
    u, a = wait_settled(w, env, "alice", 2)
    assert u["spent_micros"] == 0 and a["total_cost"] == 0, (u, a)
    assert a["agreed"] == 2, a


def case_rebuild_from_edge_restores_what_the_hub_lost(w):
    env = setup(w, hub_sections="[billing]\ncheckpoint_every = 1\n")
    api, tok = env["api"], env["token"]
    for _ in range(3):
        assert post(api, "/v1/chat/completions", chat("fake-echo"), tok)[0] == 200
    wait_settled(w, env, "alice", 3)
    # A backup of the hub's database, taken now.
    env["agent"].mark()
    w.hub.signal(15)
    assert w.hub.wait_exit() == 0
    backup = w.path("backup")
    os.mkdir(backup)
    for f in os.listdir(w.dir):
        if f.startswith("tokengo-hub.db"):
            shutil.copy(w.path(f), os.path.join(backup, f))
    restart_hub(w)
    env["agent"].wait_for(r"tunnel ready: hub")
    for _ in range(3):
        assert post(api, "/v1/chat/completions", chat("fake-echo"), tok)[0] == 200
    wait_settled(w, env, "alice", 6)
    env["agent"].mark()
    # The disk dies; the operator restores the backup: the hub lost 3 entries.
    w.hub.signal(15)
    assert w.hub.wait_exit() == 0
    for f in os.listdir(w.dir):
        if f.startswith("tokengo-hub.db"):
            os.remove(w.path(f))
    for f in os.listdir(backup):
        shutil.copy(os.path.join(backup, f), w.path(f))
    restart_hub(w)
    env["agent"].wait_for(r"tunnel ready: hub")
    w.hub.wait_for(r"the hub lost settlements")
    assert len(hub_chain(w, env["pubkey"])) == 3
    # Until the import the agent gets no calls: an entry settled now would
    # be the hub's entry 4, not the agent's, and fork the chain for good.
    status, _, body = post(api, "/v1/chat/completions", chat("fake-echo"), tok)
    assert status == 503, (status, body)
    assert len(hub_chain(w, env["pubkey"])) == 3
    with open(w.path("edge.jsonl"), "w") as f:
        f.write(agent_cli(w, env, "ledger", "export"))
    out = w.cli("ledger", "import", w.path("edge.jsonl"))
    print("    " + out)
    assert "restored 3 entries" in out, out
    mine = [(e["seq"], e["request_id"], e["cost"], e["credit"], e["hash"].upper()) for e in export(w, env)]
    assert mine == hub_chain(w, env["pubkey"])
    h = hub_json(w, "ledger", "verify")
    assert h["ok"], h
    # The backup predates the three requests, so the hub no longer knows who
    # sent them: they are restored to the chain without a user to debit.
    u = hub_json(w, "user", "show", "alice")
    assert u["requests"] == 3, u
    # Importing twice changes nothing.
    assert "already holds" in w.cli("ledger", "import", w.path("edge.jsonl"))
    # The running hub sees the chains agree again (its sweep compares them)
    # and routes calls to the agent; they extend the one chain.
    w.hub.wait_for(r"its ledger agrees with the hub's again")
    assert post(api, "/v1/chat/completions", chat("fake-echo"), tok)[0] == 200
    wait_settled(w, env, "alice", 4)
    deadline = time.monotonic() + SETTLE_WAIT
    while agent_verify(w, env)["entries"] < 7:
        assert time.monotonic() < deadline, agent_verify(w, env)
        time.sleep(0.1)
    mine = [(e["seq"], e["request_id"], e["cost"], e["credit"], e["hash"].upper()) for e in export(w, env)]
    assert len(mine) == 7 and mine == hub_chain(w, env["pubkey"]), mine
    a = agent_verify(w, env)
    assert a["ok"] and a["disputed"] == 0, a


def case_sighup_reloads_prices_without_repricing(w):
    env = setup(w)
    api, tok = env["api"], env["token"]
    assert post(api, "/v1/chat/completions", chat("fake-echo"), tok)[0] == 200
    wait_settled(w, env, "alice", 1)
    # Version 1 must keep its meaning: a changed table under the same
    # version is refused and the old prices stay in force.
    open(w.path("prices.conf"), "w").write(
        "version = 1\n[price all]\nmodel = *\ninput = 1\noutput = 1\n")
    w.hub.mark()
    w.hub.signal(1)
    w.hub.wait_for(r"SIGHUP: .*keeping the prices in force")
    # Version 2 applies to new requests only.
    open(w.path("prices.conf"), "w").write(
        "version = 2\n[price all]\nmodel = *\ninput = 10000000\noutput = 20000000\n")
    w.hub.signal(1)
    w.hub.wait_for(r"prices version 2 \(1 models\) replace version 1")
    assert post(api, "/v1/chat/completions", chat("fake-echo"), tok)[0] == 200
    u, a = wait_settled(w, env, "alice", 2)
    first, second = export(w, env)
    assert (first["price_version"], first["cost"]) == (1, 5 * 3 + 5 * 7), first
    assert (second["price_version"], second["cost"]) == (2, 5 * 10 + 5 * 20), second
    assert a["agreed"] == 2, a  # the agent got version 2 before the entry that uses it
    assert hub_json(w, "ledger", "verify")["ok"]


def restart_hub(w):
    """Starts the hub again on the ports it had (agents and users reconnect)."""
    conf = open(w.path("hub.conf")).read()
    conf = conf.replace("agent_listen = 127.0.0.1:0\n", "agent_listen = 127.0.0.1:%d\n" % w.port)
    api_port = getattr(w, "api_port", None)
    if api_port is None:
        api_port = int(w.hub.wait_for(r"user API ready on 127\.0\.0\.1:(\d+)", after_mark=False).group(1))
        w.api_port = api_port
    conf = conf.replace("user_listen = 127.0.0.1:0\n", "user_listen = 127.0.0.1:%d\n" % api_port)
    open(w.path("hub.conf"), "w").write(conf)
    w.hub.log.close()
    before = os.path.getsize(w.hub.log_path)  # the new hub appends to the same log
    w.hub = Proc("hub", [w.hub_bin, "run", "--config", w.path("hub.conf")], w.dir)
    w.hub.read_from = before
    w.procs.append(w.hub)
    w.hub.wait_for(r"user API ready")


CASES = {name[len("case_"):]: fn for name, fn in sorted(globals().items())
         if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_cases(CASES, label="billing"))
