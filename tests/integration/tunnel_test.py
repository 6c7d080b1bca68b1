#!/usr/bin/env python3
"""Process-level tunnel tests: real tokengo-hub and tokengo-agent processes on
127.0.0.1 with real TLS (the hub creates its certificate on first start), the
operator commands run as the CLI while the hub runs. Every wait is bounded;
nothing leaves 127.0.0.1.

Usage: tunnel_test.py --hub BIN --agent BIN [--case NAME ...]
Prints one line per case and ends with "tunnel: N passed, N failed".
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

WAIT = 15.0  # seconds: the longest any single expected event may take


class Proc:
    """A daemon whose stderr goes to a file that tests can wait on."""

    def __init__(self, name, argv, workdir):
        self.name = name
        self.log_path = os.path.join(workdir, name + ".log")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, cwd=workdir)
        self.read_from = 0

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_for(self, pattern, timeout=WAIT, after_mark=True):
        """Waits for a log line matching `pattern` (after the last mark)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            m = rx.search(text, self.read_from if after_mark else 0)
            if m:
                return m
            if self.proc.poll() is not None:
                raise AssertionError("%s exited (%s) before logging /%s/:\n%s" %
                                     (self.name, self.proc.returncode, pattern, tail(text)))
            if time.monotonic() > deadline:
                raise AssertionError("%s did not log /%s/ within %.0f s:\n%s" %
                                     (self.name, pattern, timeout, tail(text)))
            time.sleep(0.02)

    def mark(self):
        """Later wait_for calls only look at what is logged from now on."""
        self.read_from = len(self.text())

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_exit(self, timeout=WAIT):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s did not exit within %.0f s:\n%s" %
                                 (self.name, timeout, tail(self.text())))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


def tail(text, lines=25):
    return "\n".join("    " + l for l in text.splitlines()[-lines:])


class World:
    """A temp dir with one hub and any number of agents."""

    def __init__(self, hub_bin, agent_bin):
        self.hub_bin = hub_bin
        self.agent_bin = agent_bin
        self.dir = tempfile.mkdtemp(prefix="tg-tunnel-")
        self.procs = []
        self.hub = None
        self.port = 0
        self.pin = None

    def close(self, keep):
        for p in self.procs:
            p.kill()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write_hub_conf(self, port):
        with open(self.path("hub.conf"), "w") as f:
            f.write("agent_listen = 127.0.0.1:%d\n" % port +
                    "tls_name = localhost\n"
                    "log_level = debug\n"
                    "[tunnel]\n"
                    "heartbeat = 1s\n"
                    "dead_after = 2\n"
                    "auth_timeout = 3s\n"
                    "events_poll = 50ms\n"
                    "drain_timeout = 2s\n"
                    "goaway_spread = 300ms\n")

    def start_hub(self, port=0):
        self.write_hub_conf(port)
        self.hub = Proc("hub", [self.hub_bin, "run", "--config", self.path("hub.conf")], self.dir)
        self.procs.append(self.hub)
        m = self.hub.wait_for(r"agent listener ready on 127\.0\.0\.1:(\d+)")
        self.port = int(m.group(1))
        m = self.hub.wait_for(r"hub public key pin: (sha256/[A-Za-z0-9+/=]+)", after_mark=False)
        self.pin = m.group(1)
        return self.hub

    def cli(self, *args, expect=0):
        r = subprocess.run([self.hub_bin] + list(args) + ["--config", self.path("hub.conf")],
                           capture_output=True, text=True, timeout=WAIT, cwd=self.dir)
        if r.returncode != expect:
            raise AssertionError("tokengo-hub %s exited %d, want %d:\n%s%s" %
                                 (" ".join(args), r.returncode, expect, r.stdout, r.stderr))
        return r.stdout.strip()

    def agents(self):
        return {a["pubkey"]: a for a in json.loads(self.cli("agent", "list", "--json"))}

    def wait_online(self, pubkey, online, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while True:
            a = self.agents().get(pubkey)
            if a and a["online"] == online:
                return a
            if time.monotonic() > deadline:
                raise AssertionError("agent %s online=%s, want %s" %
                                     (pubkey, a and a["online"], online))
            time.sleep(0.05)

    def new_agent(self, name, enroll_token="", pin=None, models="m1, m2"):
        """Creates an identity key and a config; returns (pubkey, config path)."""
        key = self.path(name + ".key")
        r = subprocess.run([self.agent_bin, "keygen", "--out", key], capture_output=True,
                           text=True, timeout=WAIT)
        assert r.returncode == 0, r.stderr
        pubkey = r.stdout.strip()
        conf = self.path(name + ".conf")
        with open(conf, "w") as f:
            f.write("hub = wss://localhost:%d/tunnel\n" % self.port +
                    "hub_pin = %s\n" % (pin or self.pin) +
                    "identity_key = %s.key\n" % name +
                    ("enroll_token = %s\n" % enroll_token if enroll_token else "") +
                    "log_level = debug\n"
                    "[tunnel]\n"
                    "connect_timeout = 3s\n"
                    "backoff_min = 100ms\n"
                    "backoff_max = 500ms\n"
                    "drain_timeout = 2s\n"
                    "[provider p]\n"
                    "type = openai\n"
                    "api_key = sk-test-never-sent-%s\n" % name +
                    "models = %s\n" % models)
        return pubkey, conf

    def start_agent(self, name, conf):
        p = Proc(name, [self.agent_bin, "run", "--config", conf], self.dir)
        self.procs.append(p)
        return p


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hub", required=True)
    ap.add_argument("--agent", required=True)
    ap.add_argument("--case", action="append", choices=sorted(CASES))
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs of failed cases")
    args = ap.parse_args()
    passed = failed = 0
    for name in args.case or sorted(CASES):
        w = World(os.path.abspath(args.hub), os.path.abspath(args.agent))
        t0 = time.monotonic()
        ok = False
        try:
            CASES[name](w)
            ok = True
        except Exception:  # noqa: BLE001 - report any failure of the case
            traceback.print_exc()
            for p in w.procs:
                print("--- %s log (%s):\n%s" % (p.name, p.log_path, tail(p.text(), 40)))
        finally:
            w.close(keep=args.keep and not ok)
        print("%s %s (%.1f s)" % ("PASS" if ok else "FAIL", name, time.monotonic() - t0), flush=True)
        passed += ok
        failed += not ok
    print("tunnel: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
