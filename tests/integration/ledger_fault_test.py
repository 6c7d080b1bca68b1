#!/usr/bin/env python3
"""Exactly once under faults: a steady streaming load through a real hub and
agent to the fake vendor while the hub, the agent, or both are killed with
SIGKILL at random moments and restarted. Afterwards both ledgers verify,
the two chains are identical entry for entry, no request is settled twice,
every request the fake vendor completed (its own record is the ground
truth) is settled exactly once, and the money adds up to the micro-unit.

Usage: ledger_fault_test.py --hub BIN --agent BIN --fakes DIR --node NODE
       [--seed N] [--seconds S]
Ends with "ledger-faults: N passed, N failed".
"""

import http.client
import json
import os
import random
import sqlite3
import sys
import threading
import time

from billing_test import agent_verify, export, hub_chain, hub_json, restart_hub
from harness import WAIT, Proc, run_cases
from passthrough_test import chat, setup

WORKERS = 6
MODEL = "fake-chunks-6-slow-100"  # about 0.6 s per answer, 6 content chunks


def opt(w, name, default):
    args = w.extra_args
    return args[args.index("--" + name) + 1] if "--" + name in args else default


class Load:
    """WORKERS threads streaming requests until stopped; failures (the hub
    is down, a stream breaks) are counted and retried."""

    def __init__(self, port, token):
        self.port, self.token = port, token
        self.stop = threading.Event()
        self.ok = self.failed = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(WORKERS)]
        for t in self.threads:
            t.start()

    def run(self):
        body = json.dumps(chat(MODEL, stream=True))
        while not self.stop.is_set():
            good = False
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                c.request("POST", "/v1/chat/completions", body=body,
                          headers={"authorization": "Bearer " + self.token,
                                   "content-type": "application/json"})
                r = c.getresponse()
                data = r.read()
                good = r.status == 200 and data.rstrip().endswith(b"[DONE]")
                c.close()
            except (OSError, http.client.HTTPException):
                pass
            if not good:
                time.sleep(0.05)  # the hub or the agent is down: do not spin
            with self.lock:
                if good:
                    self.ok += 1
                else:
                    self.failed += 1

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(15)


def kill9(p):
    p.proc.kill()
    p.proc.wait(5)


def restart_agent(w, env):
    old = env["agent"]
    old.log.close()
    before = os.path.getsize(old.log_path)
    p = Proc("agent", [w.agent_bin, "run", "--config", env["agent_conf"]], w.dir, env=env["agent_env"])
    p.read_from = before
    w.procs.append(p)
    env["agent"] = p
    return p


def vendor_completed(w):
    """Request ids the fake vendor answered completely (status 200, whole
    body written, connection not cut by either side)."""
    done = {}
    with open(w.path("vendor-record.jsonl")) as f:
        for line in f:
            if not line.endswith("\n"):
                break  # the fake vendor is still writing this record: next poll
            rec = json.loads(line)
            if rec.get("model") != MODEL or rec.get("status") != 200:
                continue
            if rec.get("client_aborted") or rec.get("server_disconnected") or rec.get("closed_at_ms"):
                continue
            if rec.get("finished_at_ms") is None:  # the answer was never written to its end
                continue
            rid = rec["headers"].get("x-request-id")
            done[rid] = rec
    return done


def case_kill9_hub_agent_or_both_settles_exactly_once(w):
    seed = int(opt(w, "seed", str(random.randrange(1 << 30))))
    seconds = float(opt(w, "seconds", "24"))
    rnd = random.Random(seed)
    print("    seed %d (rerun with --seed %d)" % (seed, seed))
    env = setup(w, hub_extra="request_deadline = 20s\n",
                hub_sections="[billing]\nclaim_grace = 2s\nclaim_wait = 2s\nlinger = 2s\n"
                             "checkpoint_every = 10\ncheckpoint_interval = 1s\n")
    w.cli("agent", "approve", env["pubkey"], "--owner", "bob", "--tier", "0.75")
    env["agent"].mark()
    w.hub.signal(15)
    assert w.hub.wait_exit() == 0
    restart_hub(w)  # on fixed ports from now on, for the restarts below
    env["agent"].wait_for(r"tunnel ready: hub")
    load = Load(env["api"], env["token"])

    # Kill schedule: each victim at a random moment within its slot.
    victims = ["hub", "agent", "both", "hub", "agent", "both"]
    slot = seconds / (len(victims) + 1)
    kills = []
    t0 = time.monotonic()
    for i, who in enumerate(victims):
        at = t0 + slot * (i + 0.5) + rnd.uniform(0, slot * 0.8)
        time.sleep(max(0.0, at - time.monotonic()))
        kills.append((who, time.time()))
        if who in ("hub", "both"):
            kill9(w.hub)
        if who in ("agent", "both"):
            kill9(env["agent"])
        time.sleep(rnd.uniform(0.1, 0.6))
        if who in ("hub", "both"):
            restart_hub(w)
        if who in ("agent", "both"):
            restart_agent(w, env)
    time.sleep(max(0.0, t0 + seconds - time.monotonic()))
    load.finish()
    print("    load: %d answers complete, %d failed or cut; kills: %s" %
          (load.ok, load.failed, ", ".join("%s@%.1fs" % (k, t - kills[0][1] + 0) for k, t in kills)))

    # Quiet: the outbox drained, the hub's own readings settled, and the
    # agent's mirror caught up with the hub's chain (settles are committed in
    # groups on both sides, so the last ones may still be on their way).
    db_path = w.path("tokengo-hub.db")
    deadline = time.monotonic() + 40
    while True:
        a = agent_verify(w, env)
        db = sqlite3.connect(db_path)
        observed, unobserved = db.execute(
            "SELECT COUNT(*) FILTER (WHERE observed_at IS NOT NULL), "
            "COUNT(*) FILTER (WHERE observed_at IS NULL) FROM pending_requests").fetchone()
        row = db.execute("SELECT seq FROM chains WHERE agent = ?", (env["pubkey"],)).fetchone()
        db.close()
        hub_seq = row[0] if row else 0
        if a["outbox"] == 0 and observed == 0 and a["head_seq"] == hub_seq:
            break
        if time.monotonic() > deadline:
            raise AssertionError("never quiet: agent %r, pending observed %d, hub head %d" %
                                 (a, observed, hub_seq))
        time.sleep(0.2)

    h = hub_json(w, "ledger", "verify")
    assert h["ok"], h
    assert a["ok"] and a["disputed"] == 0, a
    [chain] = [c for c in h["chains"] if c["agent"] == env["pubkey"]]
    mine = [(e["seq"], e["request_id"], e["cost"], e["credit"], e["hash"].upper()) for e in export(w, env)]
    hubs = hub_chain(w, env["pubkey"])
    assert mine == hubs, "chains differ:\n agent %r\n hub   %r" % (mine[-5:], hubs[-5:])
    ids = [r[1] for r in hubs]
    assert len(ids) == len(set(ids)), "a request settled twice"

    completed = vendor_completed(w)
    settled = set(ids)
    missing = sorted(set(completed) - settled)
    print("    %d entries (%d estimated, %d without the agent's own reading); vendor completed %d, "
          "all settled: %s; %d attempts never observed by a surviving process" %
          (len(ids), chain["estimated"], a["unobserved"], len(completed), not missing, unobserved))
    assert not missing, "completed at the vendor but never settled: %r" % [
        (m, completed[m].get("finished_wall_ms")) for m in missing]

    # Claims of attempts a killed hub had in flight: the restarted hub held
    # neither them nor a row, and billed them from their call tickets.
    from_tickets = open(w.hub.log_path, errors="replace").read().count("billed from its ticket")
    print("    %d claims billed from their call tickets after a hub restart" % from_tickets)
    u = hub_json(w, "user", "show", "alice")
    assert u["spent_micros"] == chain["total_cost"] == a["total_cost"], (u, chain, a)
    assert u["balance_micros"] == u["credited_micros"] - u["spent_micros"], u
    assert chain["total_credit"] == a["total_credit"], (chain, a)
    assert load.ok > 0


CASES = {name[len("case_"):]: fn for name, fn in sorted(globals().items())
         if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_cases(CASES, label="ledger-faults"))
