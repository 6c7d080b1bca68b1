'use strict';
// Helpers shared by the interop scripts: the ws_peer child process, bounded
// waits, and raw WebSocket frame encode/decode for the protocol-violation cases.
const { spawn } = require('child_process');
const readline = require('readline');

const peers = new Set();

function fail(msg) {
  console.error(`FAIL: ${msg}`);
  for (const p of peers) p.kill();
  process.exit(1);
}

function check(cond, msg) {
  if (!cond) fail(msg);
}

// Resolves with the promise's value, or fails the run after `ms`.
function within(ms, what, promise) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

class Peer {
  constructor(path, args) {
    this.lines = [];
    this.waiters = [];
    this.exitCode = null;
    this.exitWaiters = [];
    this.child = spawn(path, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    peers.add(this);
    this.child.on('error', (e) => fail(`cannot start ${path}: ${e.message}`));
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => {
      console.log(`  peer> ${line}`);
      this.lines.push(line);
      this.poll();
    });
    this.child.on('exit', (code, signal) => {
      peers.delete(this);
      this.exitCode = code === null ? `signal ${signal}` : code;
      for (const w of this.exitWaiters) w(this.exitCode);
      this.exitWaiters = [];
      this.poll();
    });
  }

  poll() {
    this.waiters = this.waiters.filter((w) => {
      const i = this.lines.findIndex(w.match);
      if (i < 0) return true;
      const [line] = this.lines.splice(i, 1);
      w.resolve(line);
      return false;
    });
  }

  // Waits for (and consumes) a stdout line equal to `want` (or matching a RegExp).
  line(want, ms = 5000) {
    const match = want instanceof RegExp ? (l) => want.test(l) : (l) => l === want;
    const p = new Promise((resolve) => {
      this.waiters.push({ match, resolve });
      this.poll();
    });
    return within(ms, `peer line ${want}`, p);
  }

  exited(ms = 5000) {
    const p = new Promise((resolve) => {
      if (this.exitCode !== null) resolve(this.exitCode);
      else this.exitWaiters.push(resolve);
    });
    return within(ms, 'peer exit', p);
  }

  kill() {
    if (this.exitCode === null) this.child.kill('SIGTERM');
  }
}

// Next event `name` on an EventEmitter, as an array of its arguments.
function next(emitter, name, ms = 5000) {
  return within(ms, `'${name}' event`, new Promise((resolve) => {
    emitter.once(name, (...args) => resolve(args));
  }));
}

function encodeFrame(opcode, payload, { fin = true, mask = null } = {}) {
  const data = Buffer.from(payload);
  let head;
  if (data.length < 126) {
    head = Buffer.from([(fin ? 0x80 : 0) | opcode, (mask ? 0x80 : 0) | data.length]);
  } else if (data.length < 65536) {
    head = Buffer.alloc(4);
    head[0] = (fin ? 0x80 : 0) | opcode;
    head[1] = (mask ? 0x80 : 0) | 126;
    head.writeUInt16BE(data.length, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = (fin ? 0x80 : 0) | opcode;
    head[1] = (mask ? 0x80 : 0) | 127;
    head.writeBigUInt64BE(BigInt(data.length), 2);
  }
  if (!mask) return Buffer.concat([head, data]);
  const body = Buffer.from(data);
  for (let i = 0; i < body.length; i++) body[i] ^= mask[i % 4];
  return Buffer.concat([head, Buffer.from(mask), body]);
}

// Decodes complete frames from `buf` (payloads unmasked).
function parseFrames(buf) {
  const frames = [];
  let at = 0;
  while (buf.length - at >= 2) {
    const b0 = buf[at];
    const b1 = buf[at + 1];
    let len = b1 & 0x7f;
    let off = at + 2;
    if (len === 126) {
      if (buf.length < off + 2) break;
      len = buf.readUInt16BE(off);
      off += 2;
    } else if (len === 127) {
      if (buf.length < off + 8) break;
      len = Number(buf.readBigUInt64BE(off));
      off += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    let mask = null;
    if (masked) {
      if (buf.length < off + 4) break;
      mask = buf.subarray(off, off + 4);
      off += 4;
    }
    if (buf.length < off + len) break;
    const payload = Buffer.from(buf.subarray(off, off + len));
    if (mask) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i % 4];
    frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, masked, payload });
    at = off + len;
  }
  return frames;
}

// The close frame's code among `frames`, or null.
function closeCode(frames) {
  const f = frames.find((x) => x.opcode === 0x8);
  if (!f) return null;
  return f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
}

// Runs `main` with an overall deadline; any exception or timeout fails the run.
function run(main, ms = 60000) {
  const timer = setTimeout(() => fail(`the whole script timed out after ${ms} ms`), ms);
  main().then(() => {
    clearTimeout(timer);
    for (const p of peers) p.kill();
    console.log('PASS');
    process.exit(0);
  }, (e) => fail(e && e.stack ? e.stack : String(e)));
}

module.exports = { Peer, fail, check, within, next, encodeFrame, parseFrames, closeCode, run };
