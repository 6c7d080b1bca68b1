#!/usr/bin/env python3
"""Every limit of the real programs, tested just over its value (and, where
the edge is exact, at it): a real tokengo-hub and tokengo-agent and the fake
vendor on 127.0.0.1 (setup shared with passthrough_test.py). The user API
(hub user_listen): head bytes, header count, URL, forwarded header values,
body size, connections overall and per client address, head / idle / body
timeouts, the request deadline. The tunnel listener (hub agent_listen, TLS):
head bytes, header count, URL, the authentication timeout, max_tunnels, the
handshake budget, streams per tunnel. The agent's vendor side: response head
bytes and header count (a raw TLS vendor in this process). docs/LIMITS.md
maps each limit to its case here or to a unit test.

Usage: limits_test.py --hub BIN --agent BIN --fakes DIR --node NODE
       [--case NAME ...]
Ends with "limits: N passed, N failed".
"""

import json
import os
import socket
import ssl
import sys
import threading
import time

from harness import WAIT, Proc, run_cases
from passthrough_test import chat, post, setup, vendor_requests

# The hub's constants (hub/api_server.h, hub/tunnel_server.h) and defaults
# (shared/http/server.h, shared/http/parser.h) that the cases probe.
API_HEAD_BYTES = 32 * 1024
API_HEADER_COUNT = 100
API_URL_BYTES = 8 * 1024
TUNNEL_HEAD_BYTES = 8 * 1024
TUNNEL_HEADER_COUNT = 32
TUNNEL_URL_BYTES = 1024
PER_ADDRESS = 512  # user_max_connections_per_address default
FORWARDED_HEADER_VALUE = 2048  # kMaxForwardedHeaderValue
VENDOR_HEAD_BYTES = 16 * 1024
VENDOR_HEADER_COUNT = 64


# ---------------------------------------------------------------- helpers

def tunnel_keys(w, keys):
    """Makes the world's hub.conf carry `keys` in its [tunnel] section."""
    write = w.write_hub_conf

    def patched(port):
        write(port)
        text = open(w.path("hub.conf")).read().replace("[tunnel]\n", "[tunnel]\n" + keys, 1)
        open(w.path("hub.conf"), "w").write(text)
    w.write_hub_conf = patched


def connect(port, source="127.0.0.1", timeout=WAIT):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def tls_connect(port, timeout=WAIT, source="127.0.0.1"):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    return ctx.wrap_socket(raw, server_hostname="localhost")


def read_all(s, limit=1 << 20):
    """Reads until the peer ends the connection (or the socket times out)."""
    out = b""
    try:
        while len(out) < limit:
            part = s.recv(65536)
            if not part:
                break
            out += part
    except (socket.timeout, ConnectionResetError, ssl.SSLError):
        pass
    return out


def exchange(s, request):
    s.sendall(request)
    reply = read_all(s)
    s.close()
    return reply


def status_of(reply):
    line = reply.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    assert len(parts) >= 2 and parts[0].startswith(b"HTTP/1."), "not an HTTP answer: %r" % reply[:200]
    return int(parts[1])


FIRST_FIELDS = b"\r\nhost: x\r\nconnection: close\r\n"


def head_of_size(start_line, total):
    """A request head of exactly `total` bytes (start line, fields, CRLFs)."""
    fixed = start_line + FIRST_FIELDS + b"x-pad: " + b"\r\n\r\n"
    assert total > len(fixed), total
    return start_line + FIRST_FIELDS + b"x-pad: " + b"a" * (total - len(fixed)) + b"\r\n\r\n"


def head_with_fields(start_line, count):
    """A request head with exactly `count` header fields (host and connection
    included)."""
    return start_line + FIRST_FIELDS + b"".join(
        b"x-f%d: v\r\n" % i for i in range(count - 2)) + b"\r\n"


def timed_reply(s, request=b""):
    """Sends `request`, then waits for the peer to end; returns (reply, seconds)."""
    t0 = time.monotonic()
    if request:
        s.sendall(request)
    reply = read_all(s)
    took = time.monotonic() - t0
    s.close()
    return reply, took


def get_models(token):
    return (b"GET /v1/models HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " + token.encode() +
            b"\r\n\r\n")


def read_response(s):
    """Reads one response with Content-Length from a keep-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        part = s.recv(65536)
        assert part, "connection ended before a response head: %r" % data[:200]
        data += part
    head, body = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        part = s.recv(65536)
        assert part, "connection ended inside a response body"
        body += part
    return status_of(head + b"\r\n"), body


# ---------------------------------------------------------------- user API

def case_user_api_head_limits_at_and_just_over(w):
    env = setup(w)
    api = env["api"]
    start = b"GET /v1/models HTTP/1.1"
    at = exchange(connect(api), head_of_size(start, API_HEAD_BYTES))
    assert status_of(at) == 401, at[:200]  # read whole, then refused for the missing token
    over = exchange(connect(api), head_of_size(start, API_HEAD_BYTES + 1))
    assert status_of(over) == 431, over[:200]

    at = exchange(connect(api), head_with_fields(start, API_HEADER_COUNT))
    assert status_of(at) == 401, at[:200]
    over = exchange(connect(api), head_with_fields(start, API_HEADER_COUNT + 1))
    assert status_of(over) == 431, over[:200]

    target = b"/v1/models?q=" + b"u" * (API_URL_BYTES - len(b"/v1/models?q="))
    at = exchange(connect(api), b"GET " + target + b" HTTP/1.1" + FIRST_FIELDS + b"\r\n")
    assert status_of(at) == 401, at[:200]
    over = exchange(connect(api), b"GET " + target + b"u HTTP/1.1" + FIRST_FIELDS + b"\r\n")
    assert status_of(over) == 414, over[:200]


def case_forwarded_header_value_at_and_just_over(w):
    env = setup(w)
    for n, kept in ((FORWARDED_HEADER_VALUE, True), (FORWARDED_HEADER_VALUE + 1, False)):
        value = "v" * n
        marker = "value%d" % n
        st, _, b = post(env["api"], "/v1/chat/completions", chat("fake-echo", text=marker),
                        env["token"], headers={"user-agent": value})
        assert st == 200, (st, b[:200])
        recs = [r for r in vendor_requests(env) if marker in json.dumps(r.get("body"))]
        assert recs, "the vendor saw no request with " + marker
        got = {k.lower(): v for k, v in recs[-1]["headers"].items()}.get("user-agent")
        print("    user-agent of %d bytes: %s" % (n, "forwarded" if got == value else "not forwarded"))
        assert (got == value) == kept, (n, (got or "")[:40])


def case_user_api_body_at_and_just_over_max_request_body(w):
    env = setup(w, hub_extra="max_request_body = 1KiB\n")
    api, tok = env["api"], env["token"].encode()
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " + tok +
            b"\r\ncontent-type: application/json\r\n")
    body = json.dumps(chat("fake-echo")).encode()
    body += b" " * (1024 - len(body))  # JSON padded to exactly the limit
    at = exchange(connect(api), head + b"content-length: 1024\r\nconnection: close\r\n\r\n" + body)
    assert status_of(at) == 200, at[:300]
    # One byte over, announced by Content-Length: refused before the body.
    s = connect(api)
    s.sendall(head + b"content-length: 1025\r\n\r\n")
    over = read_all(s)
    s.close()
    assert status_of(over) == 413 and b"request_too_large" in over, over[:300]
    # One byte over in chunked framing: refused once the 1025th byte arrives.
    chunked = (head + b"transfer-encoding: chunked\r\n\r\n" + b"400\r\n" + body + b"\r\n" +
               b"1\r\n \r\n0\r\n\r\n")
    over = exchange(connect(api), chunked)
    assert status_of(over) == 413, over[:300]
    at = exchange(connect(api), head + b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n" +
                  b"400\r\n" + body + b"\r\n0\r\n\r\n")
    assert status_of(at) == 200, at[:300]


def case_user_api_one_connection_over_user_max_connections(w):
    env = setup(w, hub_extra="user_max_connections = 4\n")
    api = env["api"]
    held = [connect(api) for _ in range(4)]
    time.sleep(0.3)  # the hub accepts them all before the next one
    over = exchange(connect(api), b"")
    assert status_of(over) == 503, over[:200]
    # The four admitted ones are served.
    for s in held:
        s.sendall(get_models(env["token"]))
        st, _ = read_response(s)
        assert st == 200, st
        s.close()


def case_user_api_one_connection_over_the_per_address_limit(w):
    env = setup(w)
    api = env["api"]
    held = []
    for _ in range(PER_ADDRESS):
        held.append(connect(api))
    time.sleep(0.5)
    over = exchange(connect(api), b"")
    assert status_of(over) == 503, over[:200]
    w.hub.wait_for(r"127\.0\.0\.1: over %d connections from this address" % PER_ADDRESS)
    # Another address is served while this one is at its limit...
    s = connect(api, source="127.0.0.2")
    s.sendall(get_models(env["token"]))
    st, _ = read_response(s)
    assert st == 200, st
    s.close()
    # ...and so is every admitted connection.
    held[0].sendall(get_models(env["token"]))
    st, _ = read_response(held[0])
    assert st == 200, st
    for s in held:
        s.close()
    # Once they are gone the address gets its slots back.
    deadline = time.monotonic() + WAIT
    while True:
        s = connect(api)
        s.sendall(get_models(env["token"]))
        try:
            st, _ = read_response(s)
        except AssertionError:
            st = 0
        s.close()
        if st == 200:
            break
        assert st == 503 and time.monotonic() < deadline, "slots never came back (%d)" % st
        time.sleep(0.1)


def case_user_api_timeouts_just_over(w):
    env = setup(w, hub_extra="user_header_timeout = 1s\nuser_idle_timeout = 1s\n"
                             "user_body_timeout = 1s\n")
    api, tok = env["api"], env["token"]
    # A head still incomplete after user_header_timeout: 408.
    reply, took = timed_reply(connect(api), b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
    print("    incomplete head: %d after %.2f s" % (status_of(reply), took))
    assert status_of(reply) == 408 and 0.9 <= took < 4, (reply[:100], took)
    # Keep-alive: a next request 0.5 s after the last is served; silence
    # just over user_idle_timeout closes the connection without a word.
    s = connect(api)
    s.sendall(get_models(tok))
    assert read_response(s)[0] == 200
    time.sleep(0.5)
    s.sendall(get_models(tok))
    assert read_response(s)[0] == 200
    reply, took = timed_reply(s)
    print("    idle keep-alive connection closed after %.2f s" % took)
    assert reply == b"" and 0.9 <= took < 4, (reply[:100], took)
    # A body that stalls for user_body_timeout: 408.
    s = connect(api)
    reply, took = timed_reply(s, b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: "
                                 b"Bearer " + tok.encode() + b"\r\ncontent-length: 100\r\n\r\n{\"model\"")
    print("    stalled body: %d after %.2f s" % (status_of(reply), took))
    assert status_of(reply) == 408 and 0.9 <= took < 4, (reply[:100], took)


def case_request_deadline_just_over(w):
    env = setup(w, hub_extra="request_deadline = 2s\n")
    api, tok = env["api"], env["token"]
    # Under the deadline: 6 chunks 100 ms apart.
    s, _, b = post(api, "/v1/chat/completions", chat("fake-chunks-6-slow-100"), tok)
    assert s == 200, (s, b)
    # Over it, before the answer starts: 504 at the deadline.
    t0 = time.monotonic()
    s, _, b = post(api, "/v1/chat/completions", chat("fake-chunks-400-slow-20"), tok)
    took = time.monotonic() - t0
    print("    non-stream over the deadline: %d after %.2f s" % (s, took))
    assert s == 504 and 1.8 <= took < 6, (s, b[:200], took)
    # Over it while streaming: the stream ends at the deadline, unfinished.
    t0 = time.monotonic()
    s, _, b = post(api, "/v1/chat/completions", chat("fake-chunks-400-slow-20", stream=True), tok)
    took = time.monotonic() - t0
    chunks = b.count(b"data: ")
    print("    stream over the deadline: ended after %.2f s with %d events" % (took, chunks))
    assert s == 200 and b"[DONE]" not in b and 1.8 <= took < 6 and chunks < 400, (s, b[-200:], took)


# ---------------------------------------------------------------- tunnel listener

def case_tunnel_listener_head_limits_at_and_just_over(w):
    setup(w)
    port = w.port
    start = b"GET /tunnel HTTP/1.1"
    at = exchange(tls_connect(port), head_of_size(start, TUNNEL_HEAD_BYTES))
    assert status_of(at) not in (431, 414), at[:200]
    over = exchange(tls_connect(port), head_of_size(start, TUNNEL_HEAD_BYTES + 1))
    assert status_of(over) == 431, over[:200]
    at = exchange(tls_connect(port), head_with_fields(start, TUNNEL_HEADER_COUNT))
    assert status_of(at) not in (431, 414), at[:200]
    over = exchange(tls_connect(port), head_with_fields(start, TUNNEL_HEADER_COUNT + 1))
    assert status_of(over) == 431, over[:200]
    target = b"/tunnel?" + b"u" * (TUNNEL_URL_BYTES - len(b"/tunnel?"))
    at = exchange(tls_connect(port), b"GET " + target + b" HTTP/1.1" + FIRST_FIELDS + b"\r\n")
    assert status_of(at) not in (431, 414), at[:200]
    over = exchange(tls_connect(port), b"GET " + target + b"u HTTP/1.1" + FIRST_FIELDS + b"\r\n")
    assert status_of(over) == 414, over[:200]


def case_tunnel_auth_timeout_just_over(w):
    setup(w)  # harness: auth_timeout = 3s
    s = tls_connect(w.port)
    reply, took = timed_reply(s)
    print("    silent TLS connection: %r after %.2f s" % (reply.split(b"\r\n")[0], took))
    assert status_of(reply) == 408 and 2.7 <= took < 7, (reply[:100], took)


def refused_at_accept(port):
    """True if the hub drops a new TLS connection before the handshake ends."""
    try:
        s = tls_connect(port, timeout=5)
    except (ssl.SSLError, ConnectionError, OSError):
        return True
    s.close()
    return False


def case_tunnel_one_over_max_tunnels(w):
    tunnel_keys(w, "max_tunnels = 1\n")
    setup(w)  # its agent holds the only tunnel
    assert refused_at_accept(w.port), "a second tunnel connection was accepted"
    w.hub.wait_for(r"refusing connections: max_tunnels reached")


def case_tunnel_one_handshake_over_the_per_address_limit(w):
    tunnel_keys(w, "max_handshakes_per_address = 2\n")
    setup(w)  # the agent's tunnel, upgraded, no longer counts
    upgrade = b"GET /tunnel HTTP/1.1\r\nhost: hub\r\n\r\n"
    held = [tls_connect(w.port), tls_connect(w.port)]  # in TLS, no upgrade yet
    time.sleep(0.3)
    over = exchange(tls_connect(w.port), upgrade)
    assert status_of(over) == 503, over[:200]
    w.hub.wait_for(r"127\.0\.0\.1: over 2 connections from this address")
    # Another address is not held back by this one.
    other = exchange(tls_connect(w.port, source="127.0.0.2"), upgrade)
    assert status_of(other) != 503, other[:200]
    for s in held:
        s.close()


def case_tunnel_one_over_the_handshake_burst(w):
    tunnel_keys(w, "handshake_rate = 1\nhandshake_burst = 1\n")
    setup(w)
    time.sleep(1.2)  # the bucket refills to its burst of 1
    first = refused_at_accept(w.port)
    second = refused_at_accept(w.port)
    assert not first and second, (first, second)
    w.hub.wait_for(r"refusing connections: handshake budget exhausted")


def case_tunnel_one_stream_over_max_streams(w):
    tunnel_keys(w, "max_streams = 1\n")
    env = setup(w)
    api, tok = env["api"], env["token"]
    body = json.dumps(chat("fake-chunks-6-slow-100", stream=True)).encode()
    s = connect(api)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " +
              tok.encode() + b"\r\ncontent-type: application/json\r\nconnection: close\r\n"
              b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    got = b""
    while b"data: " not in got:
        part = s.recv(65536)
        assert part, got
        got += part
    # The only stream of the only tunnel is busy: no agent has a free slot.
    st, _, b = post(api, "/v1/chat/completions", chat("fake-echo"), tok)
    assert st == 503, (st, b)
    got += read_all(s)
    s.close()
    assert b"[DONE]" in got, got[-300:]
    st, _, b = post(api, "/v1/chat/completions", chat("fake-echo"), tok)
    assert st == 200, (st, b)


# ---------------------------------------------------------------- vendor side

OPENAI_REPLY = json.dumps({
    "id": "chatcmpl-limits", "object": "chat.completion", "model": "fake-echo",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()


def vendor_head(kind):
    """A 200 response head for OPENAI_REPLY shaped by `kind`."""
    base = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: " +
            str(len(OPENAI_REPLY)).encode() + b"\r\nconnection: close\r\n")
    if kind in ("head-at", "head-over"):
        total = VENDOR_HEAD_BYTES + (kind == "head-over")
        fixed = len(base) + len(b"x-pad: \r\n\r\n")
        return base + b"x-pad: " + b"a" * (total - fixed) + b"\r\n\r\n"
    count = VENDOR_HEADER_COUNT + (kind == "fields-over")
    return base + b"".join(b"x-f%d: v\r\n" % i for i in range(count - 3)) + b"\r\n"


class RawVendor:
    """A TLS vendor in this process that answers one request per connection
    with a head picked by the words of the user's message."""

    def __init__(self, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.answer, args=(c,), daemon=True).start()

    def answer(self, raw):
        try:
            c = self.ctx.wrap_socket(raw, server_side=True)
            c.settimeout(WAIT)
            data = b""
            while b"\r\n\r\n" not in data:
                part = c.recv(65536)
                if not part:
                    return
                data += part
            head, body = data.split(b"\r\n\r\n", 1)
            length = 0
            chunked = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
                if name.strip().lower() == b"transfer-encoding":
                    chunked = b"chunked" in value.lower()
            # The test only needs the words, not the decoded body.
            while (len(body) < length) if not chunked else not body.endswith(b"0\r\n\r\n"):
                part = c.recv(65536)
                if not part:
                    return
                body += part
            kind = next(k for k in ("head-at", "head-over", "fields-at", "fields-over")
                        if k.encode() in body)
            c.sendall(vendor_head(kind) + OPENAI_REPLY)
            c.close()
        except (OSError, ValueError, StopIteration):
            raw.close()

    def close(self):
        self.sock.close()


def case_vendor_response_head_limits_at_and_just_over(w):
    env = setup(w)
    certs = w.path("vendor-certs")
    vendor = RawVendor(os.path.join(certs, "leaf.pem"), os.path.join(certs, "leaf.key"))
    try:
        # The agent again, with api.openai.com now resolving to the raw vendor.
        env["agent"].signal(15)
        assert env["agent"].wait_exit() == 0
        agent_env = dict(env["agent_env"])
        agent_env["TG_FAKE_DNS"] = "api.openai.com=127.0.0.1:%d,api.anthropic.com=127.0.0.1:%d" % (
            vendor.port, env["vendor"])
        agent = Proc("agent2", [w.agent_bin, "run", "--config", env["agent_conf"]], w.dir, env=agent_env)
        w.procs.append(agent)
        agent.wait_for(r"tunnel ready")
        for kind, want in (("head-at", 200), ("head-over", 502), ("fields-at", 200),
                           ("fields-over", 502)):
            st, _, b = post(env["api"], "/v1/chat/completions", chat("fake-echo", text=kind),
                            env["token"])
            print("    vendor %s: user gets %d" % (kind, st))
            assert st == want, (kind, st, b[:300])
        agent.wait_for(r"upstream_error: vendor api\.openai\.com: HTTP head exceeds %d bytes" %
                       VENDOR_HEAD_BYTES, after_mark=False)
        agent.wait_for(r"upstream_error: vendor api\.openai\.com: more than %d header fields" %
                       VENDOR_HEADER_COUNT, after_mark=False)
    finally:
        vendor.close()


CASES = {name[len("case_"):]: fn for name, fn in sorted(globals().items())
         if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_cases(CASES, label="limits"))
