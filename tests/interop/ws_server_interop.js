'use strict';
// Our WebSocket SERVER (ws_peer server) against the `ws` npm client.
// Usage: node ws_server_interop.js <path to ws_peer>
const crypto = require('crypto');
const net = require('net');
const { Peer, check, within, next, encodeFrame, parseFrames, closeCode, run } = require('./lib');

let WebSocket;
try {
  WebSocket = require('ws');
} catch (e) {
  console.error('FAIL: the ws npm package is missing: run scripts/setup (npm ci in tests/interop)');
  process.exit(1);
}

const peerPath = process.argv[2];
if (!peerPath) {
  console.error('usage: node ws_server_interop.js <ws_peer>');
  process.exit(64);
}

async function open(url, protocols, options) {
  const ws = new WebSocket(url, protocols, options);
  ws.on('error', () => {});  // reported through the awaited events
  await next(ws, 'open');
  return ws;
}

async function message(ws) {
  const [data, isBinary] = await next(ws, 'message');
  return { data, isBinary };
}

async function main() {
  const peer = new Peer(peerPath, ['server', '--subprotocol', 'tokengo.v1', '--max-message', '65536']);
  const port = Number((await peer.line(/^PORT \d+$/)).split(' ')[1]);
  const url = `ws://127.0.0.1:${port}/interop`;

  console.log('handshake with subprotocol, echo, fragments, pings, client close 4001');
  {
    const ws = await open(url, ['chat', 'tokengo.v1']);
    check(ws.protocol === 'tokengo.v1', `subprotocol: got '${ws.protocol}', want tokengo.v1`);
    await peer.line('OPEN tokengo.v1');

    ws.send('h\u00e9llo w\u00f6rld \u{1F600}');
    let m = await message(ws);
    check(!m.isBinary && m.data.toString() === 'h\u00e9llo w\u00f6rld \u{1F600}', `text echo: got ${m.data}`);

    const bin = crypto.randomBytes(60000);
    ws.send(bin);
    m = await message(ws);
    check(m.isBinary && Buffer.compare(m.data, bin) === 0, 'binary echo differs');

    ws.send('frag-', { fin: false });
    ws.send('men', { fin: false });
    ws.send('ted', { fin: true });
    m = await message(ws);
    check(!m.isBinary && m.data.toString() === 'frag-mented', `fragmented echo: got '${m.data}'`);

    ws.send('cmd:fragments:3:abcdefgh');
    m = await message(ws);
    check(m.data.toString() === 'abcdefgh', `server-fragmented message: got '${m.data}'`);

    ws.ping('cping');
    const [pong] = await next(ws, 'pong');
    check(pong.toString() === 'cping', `pong payload: got '${pong}'`);

    ws.send('cmd:ping:sping');
    const [ping] = await next(ws, 'ping');
    check(ping.toString() === 'sping', `server ping payload: got '${ping}'`);
    m = await message(ws);
    check(m.data.toString() === 'pong:sping', `server did not see our pong: got '${m.data}'`);

    ws.close(4001, 'bye');
    const [code] = await next(ws, 'close');
    check(code === 4001, `close echo code: got ${code}, want 4001`);
    await peer.line('CLOSE 4001 1 bye');
  }

  console.log('server closes with 1001');
  {
    const ws = await open(url, ['tokengo.v1']);
    await peer.line('OPEN tokengo.v1');
    ws.send('cmd:close:1001:going away');
    const [code, reason] = await next(ws, 'close');
    check(code === 1001, `client saw close code ${code}, want 1001`);
    check(reason.toString() === 'going away', `client saw reason '${reason}'`);
    await peer.line('CLOSE 1001 1 going away');
  }

  console.log('oversize message from the client -> 1009');
  {
    const ws = await open(url, ['tokengo.v1']);
    await peer.line('OPEN tokengo.v1');
    ws.send(Buffer.alloc(70000, 1));
    const [code] = await next(ws, 'close');
    check(code === 1009, `close code ${code}, want 1009`);
    await peer.line(/^CLOSE 1009 /);
  }

  console.log('wrong protocol version -> 426');
  {
    const ws = new WebSocket(url, { protocolVersion: 8 });
    const [err] = await next(ws, 'error');
    check(/426/.test(err.message), `version 8 error: '${err.message}', want a 426`);
    await peer.line(/^ERROR .*426/);
  }

  console.log('unmasked client frame (raw socket) -> 1002');
  {
    const sock = net.connect(port, '127.0.0.1');
    await next(sock, 'connect');
    const key = crypto.randomBytes(16).toString('base64');
    sock.write(`GET /interop HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n` +
               `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); });
    const ended = next(sock, 'close');
    await within(5000, '101 response', (async () => {
      while (buf.indexOf('\r\n\r\n') < 0) await new Promise((r) => setTimeout(r, 5));
    })());
    const headEnd = buf.indexOf('\r\n\r\n') + 4;
    const head = buf.subarray(0, headEnd).toString();
    const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    check(head.startsWith('HTTP/1.1 101'), `raw handshake answer: ${head}`);
    check(head.includes(`Sec-WebSocket-Accept: ${accept}`), 'raw handshake: wrong accept');
    await peer.line('OPEN -');
    sock.write(encodeFrame(0x1, 'unmasked'));
    await ended;
    const frames = parseFrames(buf.subarray(headEnd));
    const code = closeCode(frames);
    check(code === 1002, `server answered an unmasked frame with close ${code}, want 1002`);
    check(frames.every((f) => !f.masked), 'server frames must not be masked');
    await peer.line(/^CLOSE 1002 0 /);
  }

  peer.kill();
  await peer.exited();
}

run(main);
