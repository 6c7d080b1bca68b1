"""Driver of ports/tools/static-dns-check (see there): a one-shot DNS server
that answers every A query with 127.0.0.1, a TCP listener standing in for the
hub, and the agent pointed at each name in turn. Prints one line per name and
exits non-zero if the agent did not reach the listener for any of them."""
import socket
import struct
import subprocess
import sys
import threading
import time

work, agent, qemu = sys.argv[1], sys.argv[2], sys.argv[3]
queries = []


def dns_server(sock):
    while True:
        try:
            data, peer = sock.recvfrom(512)
        except OSError:
            return
        if len(data) < 12:
            continue
        qid, flags, qd = struct.unpack(">HHH", data[:6])
        # Question: labels until the zero byte, then QTYPE and QCLASS.
        end = data.index(b"\0", 12) + 5
        question = data[12:end]
        qtype = struct.unpack(">H", data[end - 4:end - 2])[0]
        name = []
        i = 12
        while data[i]:
            name.append(data[i + 1:i + 1 + data[i]].decode())
            i += 1 + data[i]
        queries.append((".".join(name), qtype))
        answers = b""
        if qtype == 1:  # A
            answers = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
        header = struct.pack(">HHHHHH", qid, 0x8180, 1, 1 if answers else 0, 0, 0)
        sock.sendto(header + question + answers, peer)


udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", 53))
threading.Thread(target=dns_server, args=(udp,), daemon=True).start()

failed = 0
for host in ("localhost", "hub.tokengo.test"):
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    lst.settimeout(30)
    port = lst.getsockname()[1]
    conf = f"{work}/agent-{host}.conf"
    with open(conf, "w") as f:
        f.write(f"""hub = wss://{host}:{port}/tunnel
hub_pin = sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
identity_key = {work}/agent.key
[provider openai-main]
type = openai
api_key = sk-test-not-a-real-key
models = gpt-4o-mini
""")
    cmd = ([qemu] if qemu else []) + [agent, "run", "--config", conf]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    start = time.monotonic()
    try:
        conn, peer = lst.accept()
        print(f"static-dns-check: {host}: agent connected to 127.0.0.1:{port} "
              f"after {time.monotonic() - start:.1f}s")
        conn.close()
    except socket.timeout:
        failed += 1
        print(f"static-dns-check: {host}: FAILED, no connection within 30 s")
    proc.terminate()
    out = proc.communicate(timeout=30)[0].decode(errors="replace")
    if failed:
        print(out)
    lst.close()

print("static-dns-check: DNS queries seen:", sorted(set(queries)))
sys.exit(1 if failed else 0)
