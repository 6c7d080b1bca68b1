#!/usr/bin/env python3
"""Process-level passthrough tests: a real tokengo-hub and tokengo-agent and
the fake vendor (tests/fakes/fake_vendor.js) on 127.0.0.1. The agent reaches
the fake under the real vendor host names (api.openai.com, api.anthropic.com)
through the LD_PRELOAD getaddrinfo shim, over TLS verified against a test CA:
the product binaries are not modified for the test. Users call the hub with
the official SDKs, curl and raw sockets.

Usage: passthrough_test.py --hub BIN --agent BIN --fakes DIR --node NODE
       [--case NAME ...]
  --fakes   the build directory holding fake_dns.so and make_test_ca
Ends with "passthrough: N passed, N failed".
"""

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time

from harness import WAIT, Proc, run_cases

SRC = os.path.dirname(os.path.abspath(__file__))
FAKE_VENDOR = os.path.join(SRC, "..", "fakes", "fake_vendor.js")
SDK_SCRIPT = os.path.join(SRC, "..", "interop", "passthrough_sdk.js")
VENDOR_KEYS = {"openai": "sk-vendor-openai-SECRET", "anthropic": "sk-ant-vendor-SECRET"}
OPENAI_MODELS = ("fake-echo, fake-chunks-6, fake-chunks-6-slow-100, fake-chunks-400-slow-20, "
                 "fake-429, fake-500, fake-disconnect-after-3, fake-big-50000000")
ANTHROPIC_MODELS = "fake-chunks-5"


def opt(w, name):
    """Value of --name in the extra command-line arguments."""
    args = w.extra_args
    i = args.index("--" + name)
    return args[i + 1]


def setup(w, hub_extra="", hub_sections=""):
    """Starts the fake vendor, the hub (with its user API), a user with a
    token and one approved agent serving both providers; returns a dict.
    hub_extra: global hub.conf keys; hub_sections: sections appended."""
    fakes = os.path.abspath(opt(w, "fakes"))
    node = opt(w, "node")
    certs = w.path("vendor-certs")
    os.mkdir(certs)
    subprocess.run([os.path.join(fakes, "make_test_ca"), certs, "api.openai.com",
                    "api.anthropic.com"], check=True, capture_output=True, timeout=WAIT)
    vendor = Proc("vendor", [node, FAKE_VENDOR, "--tls", os.path.join(certs, "leaf.pem"),
                             os.path.join(certs, "leaf.key"), "--key", VENDOR_KEYS["openai"],
                             "--key", VENDOR_KEYS["anthropic"], "--record",
                             w.path("vendor-record.jsonl")], w.dir)
    w.procs.append(vendor)
    m = vendor.wait_for(r"fake-vendor listening on 127\.0\.0\.1:(\d+) \(https\)")
    vport = int(m.group(1))

    w.write_hub_conf(0)
    # The user API settings are global keys: put them before [tunnel].
    conf = open(w.path("hub.conf")).read()
    conf = ("user_listen = 127.0.0.1:0\n" + hub_extra + conf + hub_sections)
    open(w.path("hub.conf"), "w").write(conf)
    w.hub = Proc("hub", [w.hub_bin, "run", "--config", w.path("hub.conf")], w.dir)
    w.procs.append(w.hub)
    w.port = int(w.hub.wait_for(r"agent listener ready on 127\.0\.0\.1:(\d+)").group(1))
    w.pin = w.hub.wait_for(r"hub public key pin: (sha256/[A-Za-z0-9+/=]+)", after_mark=False).group(1)
    api_port = int(w.hub.wait_for(r"user API ready on 127\.0\.0\.1:(\d+)", after_mark=False).group(1))

    w.cli("user", "add", "alice")
    w.cli("user", "credit", "alice", "1000")
    token = w.cli("token", "create", "alice").splitlines()[-1].strip()
    assert token.startswith("sk-"), token

    pub, agent_conf = w.new_agent("ag", models="unused")
    text = open(agent_conf).read()
    text = text[:text.index("[provider p]")]
    text = text.replace("log_level = debug\n", "log_level = debug\nca_file = %s\n" %
                        os.path.join(certs, "ca.pem"))
    text += ("[provider oai]\ntype = openai\napi_key = %s\nmodels = %s\nmax_parallel = 64\n"
             "[provider ant]\ntype = anthropic\napi_key = %s\nmodels = %s\nmax_parallel = 64\n" %
             (VENDOR_KEYS["openai"], OPENAI_MODELS, VENDOR_KEYS["anthropic"], ANTHROPIC_MODELS))
    open(agent_conf, "w").write(text)
    w.cli("agent", "approve", pub, "--owner", "bob")
    env = dict(os.environ)
    env["LD_PRELOAD"] = os.path.join(fakes, "fake_dns.so")
    env["TG_FAKE_DNS"] = "api.openai.com=127.0.0.1:%d,api.anthropic.com=127.0.0.1:%d" % (vport, vport)
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
    agent = Proc("agent", [w.agent_bin, "run", "--config", agent_conf], w.dir, env=env)
    w.procs.append(agent)
    agent.wait_for(r"tunnel ready")
    return {"api": api_port, "token": token, "vendor": vport, "agent": agent, "node": node,
            "pubkey": pub, "agent_conf": agent_conf, "agent_env": env}


def post(port, path, body, token=None, headers=None, raw_body=None):
    """One request to the user API; returns (status, headers dict, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    h = {"content-type": "application/json"}
    if token:
        h["authorization"] = "Bearer " + token
    h.update(headers or {})
    data = raw_body if raw_body is not None else json.dumps(body).encode()
    c.request("POST", path, body=data, headers=h)
    r = c.getresponse()
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    c.close()
    return out


def chat(model, stream=False, text="the quick brown fox jumps"):
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]}


def vendor_requests(env, min_count=1):
    c = http.client.HTTPSConnection("127.0.0.1", env["vendor"], timeout=WAIT,
                                    context=__import__("ssl")._create_unverified_context())
    c.request("GET", "/_fake/requests?min=%d&timeout_ms=5000" % min_count)
    data = json.loads(c.getresponse().read())
    c.close()
    return data["requests"] if isinstance(data, dict) else data


def case_official_sdks(w):
    env = setup(w)
    r = subprocess.run([env["node"], SDK_SCRIPT, "http://127.0.0.1:%d" % env["api"], env["token"]],
                       capture_output=True, text=True, timeout=90)
    print("    " + r.stdout.strip().replace("\n", "\n    "))
    assert r.returncode == 0, r.stdout + r.stderr


def case_rewriting_keeps_user_credentials_at_the_hub(w):
    env = setup(w)
    status, headers, body = post(env["api"], "/v1/chat/completions", chat("fake-echo"), env["token"],
                                 headers={"x-api-key": env["token"], "cookie": "session=abc"})
    assert status == 200, (status, body)
    assert headers.get("x-request-id"), headers
    reqs = [r for r in vendor_requests(env) if r.get("path", "").startswith("/v1/chat")]
    assert reqs, "the vendor saw no request"
    rec = reqs[-1]
    blob = json.dumps(rec)
    assert env["token"] not in blob, "user token reached the vendor: " + blob[:500]
    h = {k.lower(): v for k, v in rec["headers"].items()}
    assert h.get("authorization") == "Bearer " + VENDOR_KEYS["openai"], h
    assert "x-api-key" not in h and "cookie" not in h, h
    assert h.get("host", "").startswith("api.openai.com"), h
    # The vendor key never comes back to the user, nor into any log.
    assert VENDOR_KEYS["openai"].encode() not in body
    for p in w.procs:
        if p.name != "vendor":
            assert VENDOR_KEYS["openai"] not in p.text(), "vendor key in %s log" % p.name
            assert env["token"] not in p.text(), "user token in %s log" % p.name


def case_anthropic_native_with_x_api_key(w):
    env = setup(w)
    status, headers, body = post(env["api"], "/v1/messages",
                                 {"model": "fake-chunks-5", "max_tokens": 32,
                                  "messages": [{"role": "user", "content": "hello there"}]},
                                 headers={"x-api-key": env["token"], "anthropic-version": "2023-06-01"})
    assert status == 200, (status, body)
    msg = json.loads(body)
    assert msg["type"] == "message", msg
    rec = [r for r in vendor_requests(env) if r.get("path") == "/v1/messages"][-1]
    h = {k.lower(): v for k, v in rec["headers"].items()}
    assert h.get("x-api-key") == VENDOR_KEYS["anthropic"], h
    assert h.get("anthropic-version") == "2023-06-01", h


def case_curl_streams_chunk_by_chunk(w):
    env = setup(w)
    cmd = ["curl", "-sN", "http://127.0.0.1:%d/v1/chat/completions" % env["api"],
           "-H", "authorization: Bearer " + env["token"], "-H", "content-type: application/json",
           "-d", json.dumps(chat("fake-chunks-6-slow-100", stream=True))]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    arrivals = []
    t0 = time.monotonic()
    for line in p.stdout:
        if line.startswith(b"data: "):
            arrivals.append((time.monotonic() - t0, line.strip()))
    assert p.wait(WAIT) == 0
    assert arrivals[-1][1] == b"data: [DONE]", arrivals[-1]
    content = [a for a in arrivals if b'"content"' in a[1]]
    assert len(content) >= 5, arrivals
    # The vendor spaces chunks 100 ms apart: if the hub or agent buffered,
    # they would all arrive together at the end.
    spread = content[-1][0] - content[0][0]
    print("    %d chunks over %.0f ms (vendor spacing 100 ms)" % (len(content), spread * 1000))
    assert spread >= 0.3, "chunks arrived together: %r" % [a[0] for a in content]


def case_abort_closes_the_vendor_connection(w):
    env = setup(w)
    body = json.dumps(chat("fake-chunks-400-slow-20", stream=True)).encode()
    s = socket.create_connection(("127.0.0.1", env["api"]), timeout=WAIT)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " +
              env["token"].encode() + b"\r\ncontent-type: application/json\r\ncontent-length: " +
              str(len(body)).encode() + b"\r\n\r\n" + body)
    got = b""
    while got.count(b"data: ") < 3:
        got += s.recv(65536)
    s.close()
    closed_at = time.monotonic() * 1000.0
    deadline = time.time() + WAIT
    rec = None
    while time.time() < deadline:
        reqs = [r for r in vendor_requests(env) if r.get("body", {}) and
                isinstance(r["body"], dict) and r["body"].get("model") == "fake-chunks-400-slow-20"]
        if reqs and reqs[-1].get("closed_at_ms"):
            rec = reqs[-1]
            break
        time.sleep(0.02)
    assert rec, "the vendor connection was never closed"
    took = rec["closed_at_ms"] - closed_at
    print("    user disconnect -> vendor connection closed after %.1f ms" % took)
    assert rec.get("client_disconnected", True), rec
    assert took < 100, "vendor connection closed %.1f ms after the user left" % took


def case_vendor_errors_pass_through(w):
    env = setup(w)
    status, headers, body = post(env["api"], "/v1/chat/completions", chat("fake-429"), env["token"])
    assert status == 429, (status, body)
    assert headers.get("retry-after") == "2", headers
    assert b"rate_limit" in body or b"Rate limit" in body, body


def case_vendor_dies_mid_stream_user_gets_an_error_event(w):
    env = setup(w)
    status, headers, body = post(env["api"], "/v1/chat/completions",
                                 chat("fake-disconnect-after-3", stream=True), env["token"])
    assert status == 200, (status, body)
    assert body.count(b"data: ") >= 3, body
    assert b'"error"' in body, body
    assert b"[DONE]" not in body, body


def case_user_side_bad_input(w):
    env = setup(w, hub_extra="max_request_body = 1MiB\nuser_header_timeout = 1s\n")
    api, tok = env["api"], env["token"]
    s, _, b = post(api, "/v1/chat/completions", chat("fake-echo"))
    assert s == 401 and b'"error"' in b, (s, b)
    s, _, b = post(api, "/v1/chat/completions", chat("fake-echo"), token="sk-tg-" + "0" * 64)
    assert s == 401, (s, b)
    s, _, b = post(api, "/v1/messages", {"model": "fake-chunks-5"}, token="sk-bad")
    assert s == 401 and b'"type":"error"' in b.replace(b" ", b""), (s, b)
    s, _, b = post(api, "/v1/chat/completions", None, tok, raw_body=b'{"model": "fake-echo", "mess')
    assert s == 400, (s, b)
    s, _, b = post(api, "/v1/chat/completions", {"messages": []}, tok)
    assert s == 400, (s, b)
    s, _, b = post(api, "/v1/chat/completions", chat("no-such-model"), tok)
    assert s == 404, (s, b)
    # A body over the limit is refused from its Content-Length, before it is sent.
    c = socket.create_connection(("127.0.0.1", api), timeout=WAIT)
    c.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " +
              tok.encode() + b"\r\ncontent-length: 100000000\r\n\r\n" + b"x" * 65536)
    reply = c.recv(65536)
    c.close()
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    # Headers over the limit.
    c = socket.create_connection(("127.0.0.1", api), timeout=WAIT)
    c.sendall(b"GET /v1/models HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 40000 + b"\r\n\r\n")
    reply = c.recv(65536)
    c.close()
    assert reply.startswith(b"HTTP/1.1 431"), reply[:200]
    # A slowloris client gets 408 while another user is served meanwhile.
    slow = socket.create_connection(("127.0.0.1", api), timeout=WAIT)
    slow.sendall(b"POST /v1/chat/completions HTTP/1.1\r\n")
    s, _, b = post(api, "/v1/chat/completions", chat("fake-echo"), tok)
    assert s == 200, (s, b)
    slow.settimeout(5)
    reply = b""
    try:
        while True:
            part = slow.recv(65536)
            if not part:
                break
            reply += part
    except socket.timeout:
        pass
    slow.close()
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def case_client_that_never_reads_holds_memory_bounded(w):
    env = setup(w)
    hub_pid = w.hub.proc.pid
    agent_pid = env["agent"].proc.pid
    before = (rss_kib(hub_pid), rss_kib(agent_pid))
    body = json.dumps(chat("fake-big-50000000")).encode()
    s = socket.create_connection(("127.0.0.1", env["api"]), timeout=WAIT)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " +
              env["token"].encode() + b"\r\ncontent-length: " + str(len(body)).encode() +
              b"\r\n\r\n" + body)
    time.sleep(2.0)  # let every buffer on the way fill up
    after = (rss_kib(hub_pid), rss_kib(agent_pid))
    grew = (after[0] - before[0], after[1] - before[1])
    print("    50 MB response, reader asleep: hub RSS +%d KiB, agent RSS +%d KiB" % grew)
    # Another user is served meanwhile.
    st, _, b = post(env["api"], "/v1/chat/completions", chat("fake-echo"), env["token"])
    assert st == 200, (st, b)
    s.close()
    if "--sanitized" in w.extra_args:
        # ASan keeps freed memory in quarantine and maps shadow memory: RSS
        # says nothing about live memory there. The bound is checked in the
        # plain build; here the case still proves the other user is served.
        print("    (sanitizer build: RSS bound not checked)")
        return
    assert grew[0] < 8 * 1024 and grew[1] < 8 * 1024, "memory grew by %r KiB" % (grew,)


def case_user_api_over_tls(w):
    import ssl
    env = setup(w, hub_extra="user_tls = yes\n")
    w.hub.wait_for(r"user API ready on 127\.0\.0\.1:\d+ \(https\)", after_mark=False)
    ctx = ssl.create_default_context(cafile=w.path("hub.crt"))
    ctx.check_hostname = False  # the certificate names localhost; we dial 127.0.0.1
    c = http.client.HTTPSConnection("127.0.0.1", env["api"], timeout=WAIT, context=ctx)
    c.request("POST", "/v1/chat/completions", body=json.dumps(chat("fake-echo")),
              headers={"authorization": "Bearer " + env["token"], "content-type": "application/json"})
    r = c.getresponse()
    body = r.read()
    assert r.status == 200, (r.status, body)
    assert json.loads(body)["choices"][0]["message"]["content"], body
    # The certificate is the hub's own, the one whose pin agents configure.
    der = c.sock.getpeercert(binary_form=True)
    c.close()
    assert der == ssl.PEM_cert_to_DER_cert(open(w.path("hub.crt")).read()), "another certificate"


def case_no_agent_for_a_known_model_is_503(w):
    env = setup(w)
    s, _, b = post(env["api"], "/v1/chat/completions", chat("fake-echo"), env["token"])
    assert s == 200, (s, b)
    env["agent"].signal(15)
    assert env["agent"].wait_exit() == 0
    s, _, b = post(env["api"], "/v1/chat/completions", chat("fake-echo"), env["token"])
    assert s == 503, (s, b)


CASES = {name[len("case_"):]: fn for name, fn in sorted(globals().items())
         if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_cases(CASES, label="passthrough"))
