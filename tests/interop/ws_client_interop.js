'use strict';
// Our WebSocket CLIENT (ws_peer client <port>) against the `ws` npm server.
// Usage: node ws_client_interop.js <path to ws_peer>
const crypto = require('crypto');
const net = require('net');
const { Peer, check, next, encodeFrame, parseFrames, closeCode, run } = require('./lib');

let WebSocket;
try {
  WebSocket = require('ws');
} catch (e) {
  console.error('FAIL: the ws npm package is missing: run scripts/setup (npm ci in tests/interop)');
  process.exit(1);
}

const peerPath = process.argv[2];
if (!peerPath) {
  console.error('usage: node ws_client_interop.js <ws_peer>');
  process.exit(64);
}

async function message(sock) {
  const [data, isBinary] = await next(sock, 'message');
  return { data, isBinary };
}

async function main() {
  const wss = new WebSocket.WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    handleProtocols: (protocols) => (protocols.has('tokengo.v1') ? 'tokengo.v1' : false),
  });
  await next(wss, 'listening');
  const port = wss.address().port;

  console.log('handshake, echo, fragments, pings, client close 4001');
  {
    const conn = next(wss, 'connection');
    const peer = new Peer(peerPath, ['client', String(port), '--subprotocol', 'tokengo.v1']);
    const [sock, req] = await conn;
    check(req.url === '/interop', `request path '${req.url}'`);
    check(sock.protocol === 'tokengo.v1', `server chose '${sock.protocol}'`);
    await peer.line('OPEN tokengo.v1');

    sock.send('hello \u00e9');
    let m = await message(sock);
    check(!m.isBinary && m.data.toString() === 'hello \u00e9', `text echo: got '${m.data}'`);

    const bin = crypto.randomBytes(100000);
    sock.send(bin);
    m = await message(sock);
    check(m.isBinary && Buffer.compare(m.data, bin) === 0, 'binary echo differs');

    sock.send('ab', { fin: false });
    sock.send('cd', { fin: true });
    m = await message(sock);
    check(m.data.toString() === 'abcd', `server-fragmented message echo: got '${m.data}'`);

    sock.send('cmd:fragments:4:0123456789');
    m = await message(sock);
    check(m.data.toString() === '0123456789', `client-fragmented message: got '${m.data}'`);

    sock.ping('sp');
    const [pong] = await next(sock, 'pong');
    check(pong.toString() === 'sp', `pong payload '${pong}'`);

    sock.send('cmd:ping:cp');
    const [ping] = await next(sock, 'ping');
    check(ping.toString() === 'cp', `client ping payload '${ping}'`);
    m = await message(sock);
    check(m.data.toString() === 'pong:cp', `client did not see our pong: '${m.data}'`);

    sock.send('cmd:close:4001:bye');
    const [code, reason] = await next(sock, 'close');
    check(code === 4001 && reason.toString() === 'bye', `server saw close ${code} '${reason}'`);
    await peer.line('CLOSE 4001 1 bye');
    check((await peer.exited()) === 0, 'peer exit code');
  }

  console.log('server closes with 1001');
  {
    const conn = next(wss, 'connection');
    const peer = new Peer(peerPath, ['client', String(port), '--subprotocol', 'tokengo.v1']);
    const [sock] = await conn;
    await peer.line('OPEN tokengo.v1');
    sock.close(1001, 'bye server');
    const [code] = await next(sock, 'close');
    check(code === 1001, `echoed close code ${code}`);
    await peer.line('CLOSE 1001 1 bye server');
    check((await peer.exited()) === 0, 'peer exit code');
  }

  console.log('oversize message -> 1009');
  {
    const conn = next(wss, 'connection');
    const peer = new Peer(peerPath, ['client', String(port), '--subprotocol', 'tokengo.v1',
                                     '--max-message', '1024']);
    const [sock] = await conn;
    await peer.line('OPEN tokengo.v1');
    sock.send('x'.repeat(2000));
    const [code] = await next(sock, 'close');
    check(code === 1009, `close code ${code}, want 1009`);
    await peer.line(/^CLOSE 1009 /);
    check((await peer.exited()) === 0, 'peer exit code');
  }

  console.log('subprotocol refused by the server -> handshake error');
  {
    const peer = new Peer(peerPath, ['client', String(port), '--subprotocol', 'unknown.v9']);
    await peer.line(/^ERROR .*subprotocol/);
    check((await peer.exited()) === 2, 'peer exit code after a failed handshake');
  }
  await new Promise((resolve) => wss.close(resolve));

  console.log('masked server frame (raw server) -> 1002');
  {
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await next(server, 'listening');
    const conn = next(server, 'connection');
    const peer = new Peer(peerPath, ['client', String(server.address().port)]);
    const [sock] = await conn;
    let buf = Buffer.alloc(0);
    let answered = false;
    const closed = next(sock, 'close');
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (answered) return;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      answered = true;
      const head = buf.subarray(0, end).toString();
      buf = buf.subarray(end + 4);
      const key = /Sec-WebSocket-Key: *(\S+)/i.exec(head)[1];
      const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
                 `Sec-WebSocket-Accept: ${accept}\r\n\r\n`);
      sock.write(encodeFrame(0x1, 'masked!', { mask: [1, 2, 3, 4] }));
    });
    await peer.line('OPEN -');
    await closed;
    const frames = parseFrames(buf);
    check(frames.length > 0 && frames.every((f) => f.masked), 'client frames must be masked');
    const code = closeCode(frames);
    check(code === 1002, `client answered a masked frame with close ${code}, want 1002`);
    await peer.line(/^CLOSE 1002 0 /);
    check((await peer.exited()) === 0, 'peer exit code');
    server.close();
  }
}

run(main);
