"""Shared scaffolding for the process-level tests: daemons whose logs tests
wait on, and a temp-dir world with one hub and any number of agents, all on
127.0.0.1 with real TLS. Every wait is bounded."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

WAIT = 15.0  # seconds: the longest any single expected event may take
# TG_WRAP: a command that prefixes the argv of every tokengo-* daemon (e.g.
# valgrind, see scripts/valgrind); TG_TIME_SCALE stretches WAIT for it.
TG_WRAP = shlex.split(os.environ.get("TG_WRAP", ""))
WAIT *= float(os.environ.get("TG_TIME_SCALE", "1"))


class Capture:
    """Keeps a copy of every daemon log and every captured output of one test
    case in $TG_TEST_CAPTURE_DIR/<label>.<case>/, for the secret scan
    (secret_scan.py) at the end of the suite. Files: proc-<name>.log (a copy
    of a Proc's log, taken when the case ends) and cli-NNN.txt / client-NNN.txt
    (one captured command: argv, exit code, stdout, stderr). Inactive when
    the variable is unset."""

    current = None  # the Capture of the case running now, or None

    def __init__(self, root, label, case):
        self.dir = os.path.join(root, "%s.%s" % (label, case))
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.logs = []   # Proc log paths of this case
        self.count = 0

    @classmethod
    def begin(cls, label, case):
        root = os.environ.get("TG_TEST_CAPTURE_DIR", "")
        cls.current = cls(root, label, case) if root else None

    @classmethod
    def end(cls):
        """Copies the daemon logs (after their processes were stopped)."""
        c, cls.current = cls.current, None
        if c is None:
            return
        seen = {}
        for path in c.logs:
            if not os.path.exists(path):
                continue
            name = os.path.basename(path)
            seen[name] = seen.get(name, 0) + 1
            dest = "proc-" + name if seen[name] == 1 else "proc-%d-%s" % (seen[name], name)
            shutil.copyfile(path, os.path.join(c.dir, dest))

    @classmethod
    def add_log(cls, path):
        c = cls.current
        if c is not None and path not in c.logs:
            c.logs.append(path)

    @classmethod
    def add_output(cls, kind, argv, returncode, stdout, stderr):
        """kind: "cli" (an operator command: tokengo-hub/-agent) or "client"
        (a user-side program: SDK, curl), which the scan treats apart."""
        c = cls.current
        if c is None:
            return
        c.count += 1
        path = os.path.join(c.dir, "%s-%03d.txt" % (kind, c.count))
        with open(path, "w", encoding="utf-8", errors="replace") as f:
            f.write("# argv: %s\n# exit: %s\n--- stdout\n%s\n--- stderr\n%s\n" %
                    (" ".join(str(a) for a in argv), returncode, _text(stdout), _text(stderr)))


def _text(out):
    if out is None:
        return ""
    if isinstance(out, bytes):
        return out.decode("utf-8", "replace")
    return out


def keep_output(argv, result, kind="client"):
    """Keeps a subprocess.run result (capture_output=True) for the scan."""
    Capture.add_output(kind, argv, result.returncode, result.stdout, result.stderr)


class Proc:
    """A daemon whose stderr goes to a file that tests can wait on."""

    def __init__(self, name, argv, workdir, env=None):
        self.name = name
        self.log_path = os.path.join(workdir, name + ".log")
        self.log = open(self.log_path, "ab")
        Capture.add_log(self.log_path)
        self.wrapped = bool(TG_WRAP) and os.path.basename(argv[0]).startswith("tokengo-")
        if self.wrapped:
            argv = TG_WRAP + list(argv)
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, cwd=workdir, env=env)
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
        if self.proc.poll() is None and self.wrapped:
            # SIGTERM first, so that the wrapper (valgrind) writes its report.
            self.proc.terminate()
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


def tail(text, lines=25):
    return "\n".join("    " + l for l in text.splitlines()[-lines:])


class World:
    """A temp dir with one hub and any number of agents."""

    def __init__(self, hub_bin, agent_bin, extra_args=()):
        self.hub_bin = hub_bin
        self.agent_bin = agent_bin
        self.extra_args = list(extra_args)
        self.dir = tempfile.mkdtemp(prefix="tg-tunnel-")
        self.procs = []
        self.hub = None
        self.port = 0
        self.pin = None

    def close(self, keep):
        for p in self.procs:
            p.kill()
        Capture.end()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write_prices(self):
        """Every model costs 3 micro-units per input token, 1 per cached
        input token and 7 per output token (prices.conf, version 1)."""
        if not os.path.exists(self.path("prices.conf")):
            with open(self.path("prices.conf"), "w") as f:
                f.write("version = 1\n[price all]\nmodel = *\ninput = 3000000\n"
                        "cached_input = 1000000\noutput = 7000000\n")

    def write_hub_conf(self, port):
        self.write_prices()
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
        Capture.add_output("cli", ["tokengo-hub"] + list(args), r.returncode, r.stdout, r.stderr)
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
                    "ledger = %s-ledger.db\n" % name +
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


def run_cases(cases, argv=None, label="tests"):
    """Runs `cases` ({name: fn(world)}) as chosen on the command line; prints
    one line per case and "<label>: N passed, N failed"; returns the exit code."""
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--hub", required=True)
    ap.add_argument("--agent", required=True)
    ap.add_argument("--case", action="append", choices=sorted(cases))
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs of failed cases")
    args, extra = ap.parse_known_args(argv)
    passed = failed = 0
    for name in args.case or sorted(cases):
        Capture.begin(label, name)
        w = World(os.path.abspath(args.hub), os.path.abspath(args.agent), extra)
        t0 = time.monotonic()
        ok = False
        try:
            cases[name](w)
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
    print("%s: %d passed, %d failed" % (label, passed, failed))
    return 0 if failed == 0 else 1
