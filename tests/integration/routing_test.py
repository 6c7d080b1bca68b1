#!/usr/bin/env python3
"""Rate limits, load-aware routing and failover with real processes: one
hub, several agents, each agent with its own fake vendor (reached under the
real vendor host name through the resolver shim), on 127.0.0.1. Checks that
a vendor's 429 never reaches a user while another agent can answer, that a
killed agent's requests fail over before their first byte and the agent is
penalised and then used again, that a user over their rate gets 429 with
Retry-After while another user is untouched, and that the ledger bills each
request once, failed attempts for nothing.

Usage: routing_test.py --hub BIN --agent BIN --fakes DIR --node NODE [--case NAME ...]
Ends with "routing: N passed, N failed".
"""

import http.client
import json
import os
import subprocess
import sys
import threading
import time

from billing_test import hub_chain, hub_json
from harness import WAIT, Proc, run_cases
from passthrough_test import FAKE_VENDOR, chat, opt, post

MODELS = "fake-echo, fake-chunks-6-slow-100, fake-chunks-20-slow-50, fake-think-1500"


def start_world(w, vendors, hub_extra="", hub_sections=""):
    """Starts one fake vendor per entry of `vendors` (its --behaviour, or
    None), the hub, user alice with a token, and one approved agent per
    vendor. Returns a dict with the API port, the token and the agents."""
    fakes = os.path.abspath(opt(w, "fakes"))
    node = opt(w, "node")
    certs = w.path("vendor-certs")
    os.mkdir(certs)
    subprocess.run([os.path.join(fakes, "make_test_ca"), certs, "api.openai.com"],
                   check=True, capture_output=True, timeout=WAIT)
    ports = []
    for i, behaviour in enumerate(vendors):
        argv = [node, FAKE_VENDOR, "--tls", os.path.join(certs, "leaf.pem"),
                os.path.join(certs, "leaf.key"), "--record", w.path("vendor%d.jsonl" % i)]
        if behaviour:
            argv += ["--behaviour", behaviour]
        v = Proc("vendor%d" % i, argv, w.dir)
        w.procs.append(v)
        ports.append(int(v.wait_for(r"fake-vendor listening on 127\.0\.0\.1:(\d+)").group(1)))

    w.write_hub_conf(0)
    conf = open(w.path("hub.conf")).read()
    open(w.path("hub.conf"), "w").write("user_listen = 127.0.0.1:0\n" + hub_extra + conf + hub_sections)
    w.hub = Proc("hub", [w.hub_bin, "run", "--config", w.path("hub.conf")], w.dir)
    w.procs.append(w.hub)
    w.port = int(w.hub.wait_for(r"agent listener ready on 127\.0\.0\.1:(\d+)").group(1))
    w.pin = w.hub.wait_for(r"hub public key pin: (sha256/[A-Za-z0-9+/=]+)", after_mark=False).group(1)
    api = int(w.hub.wait_for(r"user API ready on 127\.0\.0\.1:(\d+)", after_mark=False).group(1))
    w.cli("user", "add", "alice")
    w.cli("user", "credit", "alice", "100")
    token = w.cli("token", "create", "alice").splitlines()[-1].strip()

    agents = []
    for i, vport in enumerate(ports):
        name = "ag%d" % i
        pub, conf_path = w.new_agent(name, models="unused")
        text = open(conf_path).read()
        text = text[:text.index("[provider p]")]
        text = text.replace("log_level = debug\n", "log_level = debug\nca_file = %s\n" %
                            os.path.join(certs, "ca.pem"))
        text += ("[provider oai]\ntype = openai\napi_key = sk-vendor-%d\nmodels = %s\n"
                 "max_parallel = 32\n" % (i, MODELS))
        open(conf_path, "w").write(text)
        w.cli("agent", "approve", pub, "--owner", "bob")
        env = dict(os.environ)
        env["LD_PRELOAD"] = os.path.join(fakes, "fake_dns.so")
        env["TG_FAKE_DNS"] = "api.openai.com=127.0.0.1:%d" % vport
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
        p = Proc(name, [w.agent_bin, "run", "--config", conf_path], w.dir, env=env)
        w.procs.append(p)
        agents.append({"name": name, "pub": pub, "conf": conf_path, "env": env, "proc": p,
                       "vendor": "vendor%d.jsonl" % i})
    for a in agents:
        a["proc"].wait_for(r"tunnel ready: hub")
    return {"api": api, "token": token, "agents": agents}


def vendor_count(w, agent, status=None):
    path = w.path(agent["vendor"])
    if not os.path.exists(path):
        return 0
    n = 0
    with open(path) as f:
        for line in f:
            if not line.endswith("\n"):
                break  # the fake vendor is still writing this record: next poll
            rec = json.loads(line)
            if status is None or rec.get("status") == status:
                n += 1
    return n


def wait_vendor_count(w, agent, n, timeout=5.0):
    """The fake vendor writes a record once its side of a request is over,
    which may be just after the user got the answer: wait for it."""
    deadline = time.monotonic() + timeout
    while vendor_count(w, agent) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    return vendor_count(w, agent)


def wait_ledger(w, user, requests, spent=None, timeout=20.0):
    """Waits until `user` has `requests` settled entries and, if given,
    `spent` micro-units: zero-cost entries (attempts refused or lost) can
    make up a count while a paid entry is still on its way."""
    deadline = time.monotonic() + timeout
    while True:
        u = hub_json(w, "user", "show", user)
        if u["requests"] >= requests and (spent is None or u["spent_micros"] >= spent):
            return u
        if time.monotonic() > deadline:
            raise AssertionError("not settled: %r" % u)
        time.sleep(0.1)


def case_a_vendor_429_never_reaches_users_while_others_answer(w):
    env = start_world(w, ["429", None])
    statuses = []
    for _ in range(20):
        s, _, b = post(env["api"], "/v1/chat/completions", chat("fake-echo"), env["token"])
        statuses.append(s)
    bad, good = env["agents"]
    wait_vendor_count(w, good, 20)
    print("    statuses %s; 429-vendor saw %d, good vendor %d" %
          (sorted(set(statuses)), vendor_count(w, bad), vendor_count(w, good)))
    assert statuses == [200] * 20, statuses
    assert vendor_count(w, good) == 20, vendor_count(w, good)
    # Billed once per request; the refused attempts (if any reached the
    # 429 vendor) settle at zero cost, as entries of their own.
    u = wait_ledger(w, "alice", 20 + vendor_count(w, bad), spent=20 * (5 * 3 + 5 * 7))
    assert u["spent_micros"] == 20 * (5 * 3 + 5 * 7), u
    h = hub_json(w, "ledger", "verify")
    assert h["ok"], h
    for c in h["chains"]:
        if c["agent"] == bad["pub"]:
            assert c["total_cost"] == 0, c


def case_killed_agent_fails_over_is_penalised_then_used_again(w):
    env = start_world(w, [None, None], hub_sections="[routing]\npenalty = 5s\n")
    a, b = env["agents"]
    results = []
    lock = threading.Lock()

    def one():
        c = http.client.HTTPConnection("127.0.0.1", env["api"], timeout=20)
        # The vendor thinks 1.5 s before its first byte: killed mid-think,
        # a's requests have sent nothing to their users and must move to b.
        c.request("POST", "/v1/chat/completions", body=json.dumps(chat("fake-think-1500", stream=True)),
                  headers={"authorization": "Bearer " + env["token"], "content-type": "application/json"})
        r = c.getresponse()
        body = r.read()
        with lock:
            results.append((r.status, body.rstrip().endswith(b"[DONE]")))
        c.close()

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    time.sleep(0.3)
    a["proc"].proc.kill()  # mid-load: some of its streams had bytes, some not yet
    a["proc"].proc.wait(5)
    killed_at = time.monotonic()
    for _ in range(6):  # sent while a is gone: all answered by b
        assert post(env["api"], "/v1/chat/completions", chat("fake-echo"), env["token"])[0] == 200
    for t in threads:
        t.join(30)
    complete = sum(1 for s, done in results if s == 200 and done)
    print("    %d answers complete of %d; a's vendor saw %d (killed mid-think), b's vendor %d" %
          (complete, len(results), vendor_count(w, a), vendor_count(w, b)))
    deadline = time.monotonic() + 5
    while vendor_count(w, a) + vendor_count(w, b) < 12 and time.monotonic() < deadline:
        time.sleep(0.02)  # records are written once the vendor's side is over
    assert vendor_count(w, a) + vendor_count(w, b) >= 12
    assert complete == len(results) == 12, results  # every one moved to b before its first byte
    # a comes back at once: penalised for 5 s (its tunnel was lost), then one probe.
    before = vendor_count(w, a)
    w.hub.mark()
    p = Proc(a["name"], [w.agent_bin, "run", "--config", a["conf"]], w.dir, env=a["env"])
    w.procs.append(p)
    a["proc"] = p
    p.mark()
    w.hub.wait_for(r"agent %s registered" % a["pub"].replace("+", r"\+"))
    for _ in range(6):
        assert post(env["api"], "/v1/chat/completions", chat("fake-echo"), env["token"])[0] == 200
    assert time.monotonic() - killed_at < 4.5, "too slow to observe the penalty"
    assert vendor_count(w, a) == before, "a penalised agent got new requests"
    time.sleep(max(0.0, killed_at + 5.3 - time.monotonic()))
    for _ in range(10):
        assert post(env["api"], "/v1/chat/completions", chat("fake-echo"), env["token"])[0] == 200
    used = wait_vendor_count(w, a, before + 1, timeout=2.0) - before
    print("    after the penalty a served %d of 10" % used)
    assert used >= 1, "the agent was never used again after its penalty"
    # Billed once per answered request (34 of them, 50 micro-units each);
    # the attempts lost with a cost nothing.
    u = wait_ledger(w, "alice", 34, spent=34 * 50)
    assert u["spent_micros"] == 34 * 50, u
    assert hub_json(w, "ledger", "verify")["ok"]


def case_user_over_rpm_gets_429_others_untouched(w):
    env = start_world(w, [None])
    w.cli("user", "add", "greedy")
    w.cli("user", "credit", "greedy", "100")
    greedy = w.cli("token", "create", "greedy").splitlines()[-1].strip()
    out = w.cli("user", "limits", "greedy", "--rpm", "6")
    assert "6 requests/minute" in out, out
    s, h, b = post(env["api"], "/v1/chat/completions", chat("fake-echo"), greedy)
    assert s == 200 and h.get("x-ratelimit-limit-requests") == "6", (s, h)
    s, h, b = post(env["api"], "/v1/chat/completions", chat("fake-echo"), greedy)
    assert s == 429, (s, b)
    err = json.loads(b)["error"]
    assert err["code"] == "rate_limit_exceeded", err
    assert int(h["retry-after"]) >= 1, h
    assert h["x-ratelimit-remaining-requests"] == "0", h
    # Anthropic's format for the same refusal.
    s, _, b = post(env["api"], "/v1/messages",
                   {"model": "fake-echo", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
                   None, headers={"x-api-key": greedy, "anthropic-version": "2023-06-01"})
    assert s == 429 and json.loads(b)["error"]["type"] == "rate_limit_error", (s, b)
    # alice (hub.conf default: 600/min) is untouched.
    for _ in range(10):
        assert post(env["api"], "/v1/chat/completions", chat("fake-echo"), env["token"])[0] == 200
    # Refused requests are never billed.
    assert hub_json(w, "user", "show", "greedy")["requests"] <= 1


def case_all_agents_out_of_capacity_is_429_with_retry_after(w):
    env = start_world(w, ["429"])
    s, h, b = post(env["api"], "/v1/chat/completions", chat("fake-echo"), env["token"])
    assert s == 429, (s, b)
    assert "retry-after" in h, h


CASES = {name[len("case_"):]: fn for name, fn in sorted(globals().items())
         if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_cases(CASES, label="routing"))
