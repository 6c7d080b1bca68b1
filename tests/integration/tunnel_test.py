#!/usr/bin/env python3
"""Process-level tunnel tests: real tokengo-hub and tokengo-agent processes on
127.0.0.1 with real TLS (the hub creates its certificate on first start), the
operator commands run as the CLI while the hub runs. Every wait is bounded;
nothing leaves 127.0.0.1.

Usage: tunnel_test.py --hub BIN --agent BIN [--case NAME ...]
Prints one line per case and ends with "tunnel: N passed, N failed".
"""

import os
import re
import signal
import sys
import time

from harness import run_cases

READY = r"tunnel ready"


def case_approved_agent_connects_and_is_online(w):
    w.start_hub()
    pub, conf = w.new_agent("a1")
    w.cli("agent", "approve", pub, "--owner", "alice")
    a = w.start_agent("a1", conf)
    a.wait_for(READY + r".*owner alice.*2 models")
    rec = w.wait_online(pub, True)
    assert rec["last_addr"] and rec["last_addr"].startswith("127.0.0.1:"), rec


def case_unknown_key_is_refused(w):
    w.start_hub()
    pub, conf = w.new_agent("stranger")
    a = w.start_agent("stranger", conf)
    a.wait_for(r"unknown key")
    a.wait_for(re.escape("tokengo-hub agent approve " + pub))
    assert pub not in w.agents()
    # Approving it while it retries lets it in without a restart.
    w.cli("agent", "approve", pub, "--owner", "late")
    a.wait_for(READY)


def case_enroll_token_works_once(w):
    w.start_hub()
    token = w.cli("enroll", "--owner", "bob")
    assert token.startswith("tge_"), token
    pub1, conf1 = w.new_agent("e1", enroll_token=token)
    a1 = w.start_agent("e1", conf1)
    a1.wait_for(READY + r".*owner bob")
    assert w.agents()[pub1]["owner"] == "bob"
    pub2, conf2 = w.new_agent("e2", enroll_token=token)
    a2 = w.start_agent("e2", conf2)
    a2.wait_for(r"bad_enroll_token|enroll(ment)? token")
    assert pub2 not in w.agents()
    # The first agent keeps its (spent) token in its config and reconnects fine.
    a1.mark()
    a1.signal(signal.SIGTERM)
    assert a1.wait_exit() == 0
    a1b = w.start_agent("e1b", conf1)
    a1b.wait_for(READY)
    # The token never appears in any log.
    for p in (w.hub, a1, a2, a1b):
        assert token not in p.text(), "enroll token in %s log" % p.name


def case_revoked_agent_is_dropped_at_once(w):
    w.start_hub()
    pub, conf = w.new_agent("r1")
    w.cli("agent", "approve", pub, "--owner", "carol")
    a = w.start_agent("r1", conf)
    a.wait_for(READY)
    w.wait_online(pub, True)
    a.mark()
    t0 = time.monotonic()
    w.cli("agent", "revoke", pub)
    a.wait_for(r"revoked", timeout=5)
    w.wait_online(pub, False, timeout=5)
    took = time.monotonic() - t0
    print("    revoke -> tunnel dropped in %.2f s" % took)
    # It stays out: reconnects are refused.
    a.mark()
    a.wait_for(r"revoked")
    assert w.agents()[pub]["status"] == "revoked"


def case_wrong_pin_is_refused_by_the_agent(w):
    w.start_hub()
    wrong = "sha256/" + "A" * 43 + "="  # a valid pin of some other key
    pub, conf = w.new_agent("p1", pin=wrong)
    w.cli("agent", "approve", pub, "--owner", "dave")
    a = w.start_agent("p1", conf)
    m = a.wait_for(r"refusing hub: .*pin mismatch.*")
    assert wrong in m.group(0) and w.pin in m.group(0), m.group(0)
    assert READY not in a.text()
    assert not w.agents()[pub]["online"]


def case_hub_restart_agent_comes_back(w):
    w.start_hub()
    pub, conf = w.new_agent("h1")
    w.cli("agent", "approve", pub, "--owner", "erin")
    a = w.start_agent("h1", conf)
    a.wait_for(READY)
    a.mark()
    w.hub.signal(signal.SIGTERM)
    assert w.hub.wait_exit() == 0, "hub exit code"
    a.wait_for(r"goaway")
    port = w.port
    w.start_hub(port)
    a.wait_for(READY)
    w.wait_online(pub, True)


def case_agent_killed_shows_offline(w):
    w.start_hub()
    pub, conf = w.new_agent("k1")
    w.cli("agent", "approve", pub, "--owner", "frank")
    a = w.start_agent("k1", conf)
    a.wait_for(READY)
    w.wait_online(pub, True)
    a.signal(signal.SIGKILL)
    t0 = time.monotonic()
    w.wait_online(pub, False, timeout=10)
    print("    kill -9 -> offline in %.2f s" % (time.monotonic() - t0))


def case_frozen_agent_dies_by_heartbeat(w):
    # SIGSTOP keeps the socket open but silent: only the heartbeat can tell.
    w.start_hub()
    pub, conf = w.new_agent("f1")
    w.cli("agent", "approve", pub, "--owner", "gina")
    a = w.start_agent("f1", conf)
    a.wait_for(READY)
    w.wait_online(pub, True)
    w.hub.mark()
    a.signal(signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        w.hub.wait_for(r"4008", timeout=10)
        w.wait_online(pub, False, timeout=5)
        print("    frozen agent -> offline in %.2f s (heartbeat 1 s x 2)" % (time.monotonic() - t0))
    finally:
        a.signal(signal.SIGCONT)
    # Thawed, it notices the dead tunnel and comes back.
    a.mark()
    a.wait_for(READY, timeout=20)


def case_same_key_twice_replaces_the_old_session(w):
    w.start_hub()
    pub, conf = w.new_agent("d1")
    w.cli("agent", "approve", pub, "--owner", "hal")
    a = w.start_agent("d1", conf)
    a.wait_for(READY)
    b = w.start_agent("d1-twin", conf)
    b.wait_for(READY)
    a.wait_for(r"replaced|4004")
    w.wait_online(pub, True)


def case_sigterm_drains_both_gracefully(w):
    w.start_hub()
    pub, conf = w.new_agent("s1")
    w.cli("agent", "approve", pub, "--owner", "ivy")
    a = w.start_agent("s1", conf)
    a.wait_for(READY)
    a.signal(signal.SIGTERM)
    assert a.wait_exit() == 0, "agent exit code"
    w.wait_online(pub, False)
    w.hub.signal(signal.SIGTERM)
    assert w.hub.wait_exit() == 0, "hub exit code"


def case_agent_opens_no_listening_socket(w):
    w.start_hub()
    pub, conf = w.new_agent("n1")
    w.cli("agent", "approve", pub, "--owner", "jo")
    a = w.start_agent("n1", conf)
    a.wait_for(READY)
    inodes = set()
    fd_dir = "/proc/%d/fd" % a.proc.pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", target)
        if m:
            inodes.add(m.group(1))
    assert inodes, "the agent holds no socket at all?"
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6"):
        if not os.path.exists(table):
            continue
        with open(table) as f:
            next(f)
            for line in f:
                cols = line.split()
                state, inode = cols[3], cols[9]
                tcp_listen = table.startswith("/proc/net/tcp") and state == "0A"
                udp_bound = table.startswith("/proc/net/udp")
                if inode in inodes and (tcp_listen or udp_bound):
                    listening.append((table, cols[1]))
    assert not listening, "agent listens on %s" % listening


def case_secrets_never_logged(w):
    w.start_hub()
    pub, conf = w.new_agent("z1")
    w.cli("agent", "approve", pub, "--owner", "kim")
    a = w.start_agent("z1", conf)
    a.wait_for(READY)
    a.signal(signal.SIGTERM)
    a.wait_exit()
    for p in (w.hub, a):
        assert "sk-test-never-sent" not in p.text(), "vendor key in %s log" % p.name


CASES = {name[len("case_"):]: fn for name, fn in sorted(globals().items())
         if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_cases(CASES, label="tunnel"))
