#!/usr/bin/env node
'use strict';
// fake_vendor.js: a fake AI vendor (OpenAI, Anthropic, Azure OpenAI, DeepSeek
// HTTP dialects) for the passthrough tests. One process serves every scenario:
// the request's model name picks the behaviour. It records every request it
// received so tests can assert the agent's rewriting and abort timing.
// Built-in modules only; runs on Node 18+. Never talks to the network beyond
// its own 127.0.0.1 listener.
//
// Usage:
//   node fake_vendor.js [--port N] [--tls CERT.pem KEY.pem] [--key KEY]...
//                       [--record FILE] [--model NAME]... [--keepalive-ms MS]
//                       [--behaviour KNOBS] [--exit-with-stdin]
// Prints exactly one line once ready:
//   fake-vendor listening on 127.0.0.1:<port> (http|https)
// --key is repeatable; without any --key every non-empty key is accepted (the
// auth header itself is still required). --model sets what /v1/models lists.
// --behaviour KNOBS: the knobs (as after "fake-" in a model name, e.g. "429",
// "500", "429-retryafter-7", "think-200") of every request whose model has
// none of its own (a name not starting with "fake-", or fake-echo), so two
// fakes can answer the same model name differently.
// --exit-with-stdin: exit when stdin reaches EOF (the parent died).
//
// Endpoints (vendor paths; auth as the vendor does it):
//   OpenAI     POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models,
//              GET /v1/models/{id}                Authorization: Bearer KEY
//   DeepSeek   the same without /v1 (POST /chat/completions, ...), or any
//              path with a Host containing "deepseek": DeepSeek error bodies
//   Anthropic  POST /v1/messages, GET /v1/models (when x-api-key or
//              anthropic-version is sent)          x-api-key: KEY (or, as
//              @anthropic-ai/sdk 1.x sends it, Authorization: Bearer KEY)
//                                                  + anthropic-version
//   Azure      POST /openai/deployments/<dep>/chat/completions?api-version=V
//              POST /openai/deployments/<dep>/embeddings?api-version=V
//                                                  api-key: KEY (no api-version: 404)
//   Test hooks (no auth): GET /_fake/requests[?min=N&timeout_ms=T] (the
//   records, waiting up to T ms for at least N), GET /_fake/inflight (requests
//   being answered: bytes_sent, drain_waits), POST /_fake/reset (clears the
//   records in memory and truncates the --record file).
//
// Deterministic tokens:
//   prompt tokens     = whitespace-separated words in the text of every message
//                       (string content or the text parts), plus Anthropic's
//                       `system`; embeddings: words of each input string (a
//                       token array counts its length).
//   completion tokens = number of content chunks. The reply repeats the words
//                       of the LAST message: chunk i is word (i mod W) of it
//                       ("ok" when it has none), preceded by a space when i > 0;
//                       W chunks by default, capped by max_tokens /
//                       max_completion_tokens (finish "length" / "max_tokens").
//
// Behaviour knobs: a model name that starts with "fake-" is a list of knobs
// joined by '-', e.g. "fake-chunks-20-slow-5". Any other model name behaves as
// fake-echo. An unknown knob is a 400 (so a test's typo is loud).
//   echo                default: echo the last message's words
//   chunks-N            N content chunks (N completion tokens)
//   slow-MS             wait MS before each content chunk (non-stream: the
//                       whole generation time N*MS before answering)
//   think-MS            wait MS before the first byte (before the status line)
//   <CODE>              a 4xx/5xx status with the dialect's error body, e.g.
//                       fake-429 (with Retry-After: 2), fake-500, fake-529
//   retryafter-S        the Retry-After of a 429, in seconds (default 2)
//   disconnect-after-N  stream N content chunks, then destroy the socket
//                       (non-stream: the headers and the first N body bytes)
//   error-after-N       stream N content chunks, then the dialect's in-stream
//                       error event and a clean end (stream only)
//   big-BYTES           non-stream: a body of exactly BYTES bytes (at least the
//                       minimal reply); stream: ceil(BYTES/16384) chunks of
//                       16384-byte words
//   chunksize-BYTES     pad each chunk's word to BYTES bytes (one token each)
//
// Record (one JSON line per request, appended to --record FILE when the
// request is over: response finished or connection closed): seq, method, path,
// http_version, headers (lowercased), raw_headers ([name, value] in order),
// body (parsed JSON, or raw text when not JSON), body_bytes, body_truncated,
// dialect, model, behaviour, status, stream, tls {servername, alpn},
// connection (per-connection id) and request_on_connection, bytes_sent,
// drain_waits, client_aborted (the client closed before the response ended),
// server_disconnected (a disconnect knob fired), and the times:
// received_at_ms (monotonic ms: process.hrtime = CLOCK_MONOTONIC on Linux, so
// comparable with other processes' monotonic clocks on the same machine),
// received_wall_ms (Date.now()), first_byte_at_ms, finished_at_ms,
// closed_at_ms / closed_wall_ms (when the client closed the connection while
// the request was active: FIN, reset or close, whichever came first; null when
// the response completed first).

const fs = require('fs');
const http = require('http');
const https = require('https');
const crypto = require('crypto');
const { URL } = require('url');

const kMaxBodyBytes = 64 * 1024 * 1024;       // request body limit (413 over it)
const kMaxRecordedBodyBytes = 1024 * 1024;    // body text kept in a record
const kMaxRecordsInMemory = 10000;            // oldest dropped beyond this
const kMaxDelayMs = 600000;
const kMaxChunks = 1000000;
const kMaxBigBytes = 1024 * 1024 * 1024;
const kMaxChunkSize = 1024 * 1024;
const kBigStreamChunk = 16384;
const kRetryAfterSeconds = 2;
const kMaxRetryAfterSeconds = 86400;
const kDefaultModels = ['fake-echo', 'gpt-4o-mini', 'text-embedding-3-small',
  'claude-3-5-haiku-latest', 'deepseek-chat'];

// ---------------------------------------------------------------- options

function usage(msg) {
  if (msg) process.stderr.write(`fake-vendor: ${msg}\n`);
  process.stderr.write('usage: node fake_vendor.js [--port N] [--tls CERT KEY] [--key KEY]... ' +
    '[--record FILE] [--model NAME]... [--keepalive-ms MS] [--behaviour KNOBS] [--exit-with-stdin]\n');
  process.exit(64);
}

function parseArgs(argv) {
  const o = { port: 0, tls: null, keys: [], record: null, models: [], keepAliveMs: 5000,
    behaviour: null, exitWithStdin: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const need = (n) => {
      if (i + n >= argv.length) usage(`${a} needs ${n} value(s)`);
      const v = argv.slice(i + 1, i + 1 + n);
      i += n;
      return v;
    };
    if (a === '--port') {
      const p = Number(need(1)[0]);
      if (!Number.isInteger(p) || p < 0 || p > 65535) usage(`bad --port ${argv[i]}`);
      o.port = p;
    } else if (a === '--tls') {
      const [cert, key] = need(2);
      o.tls = { cert, key };
    } else if (a === '--key') {
      const k = need(1)[0];
      if (!k) usage('--key must not be empty');
      o.keys.push(k);
    } else if (a === '--record') {
      o.record = need(1)[0];
    } else if (a === '--model') {
      o.models.push(need(1)[0]);
    } else if (a === '--keepalive-ms') {
      const ms = Number(need(1)[0]);
      if (!Number.isInteger(ms) || ms < 0) usage(`bad --keepalive-ms ${argv[i]}`);
      o.keepAliveMs = ms;
    } else if (a === '--behaviour') {
      const knobs = need(1)[0];
      const pb = parseBehaviour(`fake-${knobs}`);
      if (!knobs || pb.error) usage(`bad --behaviour '${knobs}': ${pb.error || 'empty'}`);
      o.behaviour = knobs;
    } else if (a === '--exit-with-stdin') {
      o.exitWithStdin = true;
    } else if (a === '--help' || a === '-h') {
      usage();
    } else {
      usage(`unknown argument ${a}`);
    }
  }
  if (o.models.length === 0) o.models = kDefaultModels;
  return o;
}

const opts = parseArgs(process.argv.slice(2));

// ---------------------------------------------------------------- helpers

// Monotonic milliseconds (microsecond resolution), CLOCK_MONOTONIC on Linux.
function monoMs() {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

function words(text) {
  if (typeof text !== 'string') return [];
  return text.split(/\s+/).filter((w) => w.length > 0);
}

// Text of one OpenAI/Anthropic content value: a string or an array of parts.
function contentText(content) {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .filter((p) => p && typeof p === 'object' && typeof p.text === 'string')
    .map((p) => p.text)
    .join(' ');
}

function promptWordCount(messages, system) {
  let n = words(contentText(system)).length;
  for (const m of messages) if (m && typeof m === 'object') n += words(contentText(m.content)).length;
  return n;
}

function lastMessageWords(messages) {
  const last = messages.length ? messages[messages.length - 1] : null;
  const w = last && typeof last === 'object' ? words(contentText(last.content)) : [];
  return w.length ? w : ['ok'];
}

function randomHex(n) {
  return crypto.randomBytes(n).toString('hex');
}

function maskKey(k) {
  return k.length <= 8 ? '****' : `${k.slice(0, 3)}***${k.slice(-4)}`;
}

// ---------------------------------------------------------------- behaviour

// Parses the knobs of a model name; returns { behaviour } or { error }.
function parseBehaviour(model) {
  const b = { name: 'echo', status: 0, slowMs: 0, thinkMs: 0, chunks: null, disconnectAfter: null,
    errorAfter: null, big: null, chunkSize: 0, retryAfter: kRetryAfterSeconds };
  if (typeof model !== 'string' || !model.startsWith('fake-')) return { behaviour: b };
  b.name = model.slice(5);
  const t = b.name.split('-');
  const num = (i, what, max) => {
    if (i >= t.length || !/^\d+$/.test(t[i])) return { error: `knob ${what} needs a number in model '${model}'` };
    const v = Number(t[i]);
    if (v > max) return { error: `knob ${what}=${v} is over its limit ${max} in model '${model}'` };
    return { v };
  };
  for (let i = 0; i < t.length; i++) {
    const k = t[i];
    let r = null;
    if (k === 'echo') continue;
    if (/^[45]\d\d$/.test(k)) { b.status = Number(k); continue; }
    if (k === 'slow') { r = num(++i, 'slow', kMaxDelayMs); if (!r.error) b.slowMs = r.v; }
    else if (k === 'think') { r = num(++i, 'think', kMaxDelayMs); if (!r.error) b.thinkMs = r.v; }
    else if (k === 'chunks') { r = num(++i, 'chunks', kMaxChunks); if (!r.error) b.chunks = Math.max(1, r.v); }
    else if (k === 'big') { r = num(++i, 'big', kMaxBigBytes); if (!r.error) b.big = r.v; }
    else if (k === 'chunksize') { r = num(++i, 'chunksize', kMaxChunkSize); if (!r.error) b.chunkSize = r.v; }
    else if (k === 'retryafter') { r = num(++i, 'retryafter', kMaxRetryAfterSeconds); if (!r.error) b.retryAfter = r.v; }
    else if ((k === 'disconnect' || k === 'error') && t[i + 1] === 'after') {
      i += 1;
      r = num(++i, `${k}-after`, kMaxChunks);
      if (!r.error) { if (k === 'disconnect') b.disconnectAfter = r.v; else b.errorAfter = r.v; }
    } else {
      return { error: `unknown fake knob '${k}' in model '${model}'` };
    }
    if (r.error) return { error: r.error };
  }
  return { behaviour: b };
}

// The reply plan: the content chunks' texts and the finish reason kind.
function planReply(b, messages, maxTokens) {
  let source = lastMessageWords(messages);
  let n = source.length;
  let chunkSize = b.chunkSize;
  if (b.chunks !== null) n = b.chunks;
  if (b.big !== null && b.stream) {
    n = Math.max(1, Math.ceil(b.big / kBigStreamChunk));
    chunkSize = kBigStreamChunk;
  }
  let truncated = false;
  if (Number.isInteger(maxTokens) && maxTokens >= 1 && maxTokens < n) {
    n = maxTokens;
    truncated = true;
  }
  const pieces = [];
  for (let i = 0; i < n; i++) {
    let w = source[i % source.length];
    if (chunkSize > w.length) w += '.'.repeat(chunkSize - w.length);
    pieces.push(i === 0 ? w : ` ${w}`);
  }
  return { pieces, truncated };
}

// Content of exactly `len` bytes made of `t` words of 'x' (needs 1 <= t, 2t-1 <= len).
function filler(t, len) {
  const letters = len - (t - 1);
  const base = Math.floor(letters / t);
  let extra = letters - base * t;
  const out = [];
  for (let i = 0; i < t; i++) {
    out.push('x'.repeat(base + (extra > 0 ? 1 : 0)));
    if (extra > 0) extra--;
  }
  return out.join(' ');
}

// A body of exactly `bytes` bytes when possible: build(content, tokens) -> string.
function bigBody(bytes, build) {
  const guess = build('', 1).length;
  let t = Math.max(1, Math.floor((bytes - guess + 1) / 8));
  const len = bytes - build('', t).length;
  if (len < 2 * t - 1) {
    t = 1;
    const l1 = Math.max(1, bytes - build('', 1).length);
    return { text: build(filler(1, l1), 1), tokens: 1 };
  }
  return { text: build(filler(t, len), t), tokens: t };
}

// ---------------------------------------------------------------- records

const records = [];
const recordWaiters = new Set();
const inflight = new Set();
let seqCounter = 0;
let connCounter = 0;

if (opts.record) fs.writeFileSync(opts.record, '', { flag: 'a' });

function pushRecord(rec) {
  records.push(rec);
  if (records.length > kMaxRecordsInMemory) records.shift();
  if (opts.record) fs.appendFileSync(opts.record, `${JSON.stringify(rec)}\n`);
  for (const w of recordWaiters) w();
}

// ---------------------------------------------------------------- errors by dialect

function errorBody(dialect, status, message, extra = {}) {
  if (dialect === 'anthropic') {
    const types = { 400: 'invalid_request_error', 401: 'authentication_error', 403: 'permission_error',
      404: 'not_found_error', 413: 'request_too_large', 429: 'rate_limit_error', 500: 'api_error',
      529: 'overloaded_error' };
    return { type: 'error', error: { type: extra.type || types[status] || 'api_error', message } };
  }
  if (dialect === 'azure') {
    return { error: { code: extra.code || String(status), message } };
  }
  let type = 'invalid_request_error';
  if (status === 429) type = 'requests';
  else if (status >= 500) type = 'server_error';
  if (dialect === 'deepseek' && status === 401) type = 'authentication_error';
  return { error: { message, type: extra.type || type, param: extra.param === undefined ? null : extra.param,
    code: extra.code === undefined ? null : extra.code } };
}

function knobErrorMessage(dialect, status, model, retryAfter = kRetryAfterSeconds) {
  if (status === 429) {
    if (dialect === 'anthropic') return 'This request would exceed your organization\'s rate limit. Please try again later.';
    if (dialect === 'azure') return `Requests to the ChatCompletions_Create Operation have exceeded call rate limit. Please retry after ${retryAfter} seconds.`;
    return `Rate limit reached for ${model} in organization org-fake on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in ${retryAfter}s.`;
  }
  if (status === 529) return 'Overloaded';
  if (status >= 500) {
    if (dialect === 'anthropic') return 'Internal server error';
    return 'The server had an error while processing your request. Sorry about that!';
  }
  return `fake vendor error ${status} requested by model '${model}'`;
}

// ---------------------------------------------------------------- per-request context

class Ctx {
  constructor(req, res) {
    this.req = req;
    this.res = res;
    this.closed = false;
    this.done = false;
    this.closeWaiters = [];
    this.flushWaiters = [];
    this.unflushed = 0;
    const sock = req.socket;
    if (sock.fakeConnId === undefined) {
      sock.fakeConnId = ++connCounter;
      sock.fakeRequests = 0;
    }
    sock.fakeRequests++;
    const url = req.url || '/';
    this.rec = {
      seq: ++seqCounter,
      method: req.method,
      path: url,
      http_version: req.httpVersion,
      headers: req.headers,
      raw_headers: pairs(req.rawHeaders),
      body: null,
      body_bytes: 0,
      body_truncated: false,
      dialect: null,
      model: null,
      behaviour: null,
      status: null,
      stream: false,
      tls: sock.encrypted ? { servername: sock.servername || null, alpn: sock.alpnProtocol || null } : null,
      connection: sock.fakeConnId,
      request_on_connection: sock.fakeRequests,
      bytes_sent: 0,
      drain_waits: 0,
      client_aborted: false,
      server_disconnected: false,
      received_at_ms: monoMs(),
      received_wall_ms: Date.now(),
      first_byte_at_ms: null,
      finished_at_ms: null,
      closed_at_ms: null,
      closed_wall_ms: null,
    };
    this.onSockEnd = () => this.markClosed();
    this.onSockClose = () => this.markClosed();
    sock.on('end', this.onSockEnd);
    sock.on('close', this.onSockClose);
    res.on('finish', () => {
      this.rec.finished_at_ms = monoMs();
      this.finalize();
    });
    res.on('close', () => {
      if (!res.writableFinished) this.markClosed();
    });
    inflight.add(this);
  }

  // The client went away (or we destroyed the socket) before the response ended.
  markClosed() {
    if (this.closed || this.done) return;
    this.closed = true;
    this.rec.closed_at_ms = monoMs();
    this.rec.closed_wall_ms = Date.now();
    if (!this.rec.server_disconnected) this.rec.client_aborted = true;
    for (const w of this.closeWaiters) w();
    this.closeWaiters = [];
    if (!this.req.socket.destroyed) this.req.socket.destroy();
    this.finalize();
  }

  finalize() {
    if (this.done) return;
    this.done = true;
    const sock = this.req.socket;
    sock.removeListener('end', this.onSockEnd);
    sock.removeListener('close', this.onSockClose);
    inflight.delete(this);
    for (const w of this.closeWaiters) w();
    this.closeWaiters = [];
    pushRecord(this.rec);
  }

  // Resolves after `ms`, or at once when the client closes.
  sleep(ms) {
    if (ms <= 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(finish, ms);
      const self = this;
      function finish() {
        clearTimeout(t);
        self.closeWaiters = self.closeWaiters.filter((w) => w !== finish);
        resolve();
      }
      this.closeWaiters.push(finish);
    });
  }

  head(status, headers) {
    if (this.closed) return;
    this.rec.status = status;
    this.rec.first_byte_at_ms = monoMs();
    this.res.writeHead(status, headers);
  }

  // Writes one piece, waiting for 'drain' when the socket is backed up.
  async write(data) {
    if (this.closed || this.done) return false;
    this.rec.bytes_sent += Buffer.byteLength(data);
    this.unflushed++;
    if (!this.res.write(data, () => this.onFlushed())) {
      this.rec.drain_waits++;
      await new Promise((resolve) => {
        const self = this;
        function finish() {
          self.res.removeListener('drain', finish);
          self.closeWaiters = self.closeWaiters.filter((w) => w !== finish);
          resolve();
        }
        this.res.on('drain', finish);
        this.closeWaiters.push(finish);
      });
    }
    return !this.closed && !this.done;
  }

  onFlushed() {
    if (--this.unflushed > 0) return;
    const ws = this.flushWaiters;
    this.flushWaiters = [];
    for (const w of ws) w();
  }

  end(data) {
    if (this.closed || this.done) return;
    if (data !== undefined) this.rec.bytes_sent += Buffer.byteLength(data);
    this.res.end(data);
  }

  // Sends a whole JSON response.
  json(status, obj, headers = {}) {
    const body = typeof obj === 'string' ? obj : JSON.stringify(obj);
    this.head(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body),
      ...headers });
    this.end(body);
  }

  // Destroys the connection on purpose (a disconnect knob), once what was
  // written so far has reached the kernel (destroy() drops unsent data).
  async disconnect() {
    if (this.unflushed > 0 && !this.closed) {
      await new Promise((resolve) => {
        const self = this;
        function finish() {
          self.flushWaiters = self.flushWaiters.filter((w) => w !== finish);
          self.closeWaiters = self.closeWaiters.filter((w) => w !== finish);
          resolve();
        }
        this.flushWaiters.push(finish);
        this.closeWaiters.push(finish);
      });
    }
    if (this.closed) return;
    this.rec.server_disconnected = true;
    this.markClosed();
  }
}

function pairs(raw) {
  const out = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
}

function readBody(ctx) {
  return new Promise((resolve) => {
    const chunks = [];
    let size = 0;
    let over = false;
    ctx.req.on('data', (c) => {
      size += c.length;
      if (size > kMaxBodyBytes) over = true;
      if (!over) chunks.push(c);
    });
    ctx.req.on('end', () => resolve({ buf: Buffer.concat(chunks), size, over }));
    ctx.req.on('error', () => resolve(null));
    ctx.req.on('aborted', () => resolve(null));
    ctx.closeWaiters.push(() => resolve(null));
  });
}

// ---------------------------------------------------------------- dialect detection & auth

// Which API a request speaks: { dialect, kind, deployment } or null (unknown path).
function route(req, pathname) {
  const host = String(req.headers.host || '');
  const deepseekHost = /deepseek/i.test(host);
  const az = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|embeddings)$/.exec(pathname);
  if (az) return { dialect: 'azure', kind: az[2] === 'embeddings' ? 'embeddings' : 'chat', deployment: decodeURIComponent(az[1]) };
  if (pathname === '/v1/messages') return { dialect: 'anthropic', kind: 'messages' };
  const anthropicAuth = req.headers['x-api-key'] !== undefined || req.headers['anthropic-version'] !== undefined;
  const m = /^(\/v1)?\/(chat\/completions|embeddings|models)(?:\/([^/]+))?$/.exec(pathname);
  if (!m) return null;
  const v1 = m[1] !== undefined;
  const kindMap = { 'chat/completions': 'chat', embeddings: 'embeddings', models: 'models' };
  const kind = kindMap[m[2]];
  if (m[3] !== undefined && kind !== 'models') return null;
  if (kind === 'models' && v1 && anthropicAuth) return { dialect: 'anthropic', kind, modelId: m[3] };
  const dialect = deepseekHost || !v1 ? 'deepseek' : 'openai';
  return { dialect, kind, modelId: m[3] === undefined ? undefined : decodeURIComponent(m[3]) };
}

function keyAccepted(k) {
  if (typeof k !== 'string' || k.length === 0) return false;
  return opts.keys.length === 0 || opts.keys.includes(k);
}

// Checks the vendor's auth; answers the error and returns false when it fails.
function checkAuth(ctx, r, search) {
  const h = ctx.req.headers;
  const headers = responseHeaders(r.dialect);
  if (r.dialect === 'anthropic') {
    // x-api-key, or (as @anthropic-ai/sdk 1.x sends an API key) Authorization: Bearer.
    const bearer = typeof h.authorization === 'string' ? /^Bearer (.+)$/.exec(h.authorization) : null;
    const k = h['x-api-key'] !== undefined ? h['x-api-key'] : bearer ? bearer[1] : undefined;
    if (k === undefined) {
      ctx.json(401, errorBody('anthropic', 401, 'x-api-key header is required'), headers);
      return false;
    }
    if (!keyAccepted(k)) {
      ctx.json(401, errorBody('anthropic', 401, 'invalid x-api-key'), headers);
      return false;
    }
    if (!h['anthropic-version']) {
      ctx.json(400, errorBody('anthropic', 400, 'anthropic-version: header is required'), headers);
      return false;
    }
    return true;
  }
  if (r.dialect === 'azure') {
    if (!search.get('api-version')) {
      ctx.json(404, errorBody('azure', 404, 'Resource not found'), headers);
      return false;
    }
    if (!keyAccepted(h['api-key'])) {
      ctx.json(401, errorBody('azure', 401, 'Access denied due to invalid subscription key or wrong API ' +
        'endpoint. Make sure to provide a valid key for an active subscription and use a correct ' +
        'regional API endpoint for your resource.'), headers);
      return false;
    }
    return true;
  }
  const auth = h.authorization;
  const m = typeof auth === 'string' ? /^Bearer (.+)$/.exec(auth) : null;
  if (!m) {
    const msg = r.dialect === 'deepseek'
      ? 'Authentication Fails, no api key provided'
      : 'You didn\'t provide an API key. You need to provide your API key in an Authorization header ' +
        'using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank ' +
        'username) if you\'re accessing the API from your browser and are prompted for a username and ' +
        'password. You can obtain an API key from https://platform.openai.com/account/api-keys.';
    ctx.json(401, errorBody(r.dialect, 401, msg, r.dialect === 'deepseek' ? { code: 'invalid_request_error' } : {}),
      headers);
    return false;
  }
  if (!keyAccepted(m[1])) {
    const msg = r.dialect === 'deepseek'
      ? `Authentication Fails, Your api key: ${maskKey(m[1])} is invalid`
      : `Incorrect API key provided: ${maskKey(m[1])}. You can find your API key at ` +
        'https://platform.openai.com/account/api-keys.';
    ctx.json(401, errorBody(r.dialect, 401, msg,
      { code: r.dialect === 'deepseek' ? 'invalid_request_error' : 'invalid_api_key' }), headers);
    return false;
  }
  return true;
}

function responseHeaders(dialect) {
  const id = `req_${randomHex(12)}`;
  if (dialect === 'anthropic') return { 'request-id': id, 'anthropic-organization-id': 'org-fake' };
  if (dialect === 'azure') return { 'apim-request-id': id, 'x-request-id': id, 'x-ms-region': 'Fake Region' };
  return { 'x-request-id': id, 'openai-organization': 'org-fake', 'openai-processing-ms': '1',
    'openai-version': '2020-10-01' };
}

const sseHeaders = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
};

// ---------------------------------------------------------------- handlers

async function handleChat(ctx, r, body, b) {
  const dialect = r.dialect;
  const headers = responseHeaders(dialect);
  const messages = body.messages;
  const model = body.model !== undefined ? body.model : r.deployment;
  const maxTokens = body.max_completion_tokens !== undefined ? body.max_completion_tokens : body.max_tokens;
  const promptTokens = promptWordCount(messages);
  const stream = body.stream === true;
  b.stream = stream;
  const { pieces, truncated } = planReply(b, messages, maxTokens);
  const finish = truncated ? 'length' : 'stop';
  const id = `chatcmpl-fake${ctx.rec.seq}`;
  const created = Math.floor(Date.now() / 1000);
  const fingerprint = 'fp_fake0001';

  if (!stream) {
    const build = (content, ct) => JSON.stringify({
      id, object: 'chat.completion', created, model,
      choices: [{ index: 0, message: { role: 'assistant', content, refusal: null, annotations: [] },
        logprobs: null, finish_reason: finish }],
      usage: { prompt_tokens: promptTokens, completion_tokens: ct, total_tokens: promptTokens + ct,
        prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0,
          rejected_prediction_tokens: 0 } },
      service_tier: 'default',
      system_fingerprint: fingerprint,
    });
    let text;
    if (b.big !== null) text = bigBody(b.big, build).text;
    else text = build(pieces.join(''), pieces.length);
    await ctx.sleep(b.slowMs * pieces.length);
    return sendWhole(ctx, text, headers, b);
  }

  const includeUsage = body.stream_options && body.stream_options.include_usage === true;
  const chunk = (choices, extra = {}) => {
    const c = { id, object: 'chat.completion.chunk', created, model, service_tier: 'default',
      system_fingerprint: fingerprint, choices, ...extra };
    if (includeUsage && c.usage === undefined) c.usage = null;
    return `data: ${JSON.stringify(c)}\n\n`;
  };
  ctx.head(200, { ...sseHeaders, ...headers });
  ctx.res.flushHeaders();
  if (dialect === 'azure') {
    // Azure sends the prompt filter results first, in a chunk with no choices.
    const pf = { choices: [], created: 0, id: '', model: '', object: '',
      prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }] };
    if (!(await ctx.write(`data: ${JSON.stringify(pf)}\n\n`))) return;
  }
  if (!(await ctx.write(chunk([{ index: 0, delta: { role: 'assistant', content: '', refusal: null },
    logprobs: null, finish_reason: null }])))) return;
  for (let i = 0; i < pieces.length; i++) {
    if (b.disconnectAfter !== null && i >= b.disconnectAfter) return ctx.disconnect();
    if (b.errorAfter !== null && i >= b.errorAfter) {
      const e = errorBody(dialect, 500, knobErrorMessage(dialect, 500, model));
      await ctx.write(`data: ${JSON.stringify(e)}\n\n`);
      return ctx.end();
    }
    await ctx.sleep(b.slowMs);
    if (!(await ctx.write(chunk([{ index: 0, delta: { content: pieces[i] }, logprobs: null,
      finish_reason: null }])))) return;
  }
  if (b.disconnectAfter !== null) return ctx.disconnect();
  if (!(await ctx.write(chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: finish }])))) return;
  if (includeUsage) {
    const usage = { prompt_tokens: promptTokens, completion_tokens: pieces.length,
      total_tokens: promptTokens + pieces.length,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0 } };
    if (!(await ctx.write(chunk([], { usage })))) return;
  }
  if (!(await ctx.write('data: [DONE]\n\n'))) return;
  ctx.end();
}

async function handleMessages(ctx, r, body, b) {
  const headers = responseHeaders('anthropic');
  const messages = body.messages;
  const model = body.model;
  const promptTokens = promptWordCount(messages, body.system);
  const stream = body.stream === true;
  b.stream = stream;
  const { pieces, truncated } = planReply(b, messages, body.max_tokens);
  const stopReason = truncated ? 'max_tokens' : 'end_turn';
  const id = `msg_fake${String(ctx.rec.seq).padStart(20, '0')}`;
  const usageBase = { input_tokens: promptTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };

  if (!stream) {
    const build = (text, ct) => JSON.stringify({
      id, type: 'message', role: 'assistant', model,
      content: [{ type: 'text', text }],
      stop_reason: stopReason, stop_sequence: null,
      usage: { ...usageBase, output_tokens: ct, service_tier: 'standard' },
    });
    let text;
    if (b.big !== null) text = bigBody(b.big, build).text;
    else text = build(pieces.join(''), pieces.length);
    await ctx.sleep(b.slowMs * pieces.length);
    return sendWhole(ctx, text, headers, b);
  }

  const ev = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  ctx.head(200, { ...sseHeaders, ...headers });
  ctx.res.flushHeaders();
  const seq = [
    ev('message_start', { message: { id, type: 'message', role: 'assistant', model, content: [],
      stop_reason: null, stop_sequence: null, usage: { ...usageBase, output_tokens: 1, service_tier: 'standard' } } }),
    ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
    ev('ping', {}),
  ];
  for (const s of seq) if (!(await ctx.write(s))) return;
  for (let i = 0; i < pieces.length; i++) {
    if (b.disconnectAfter !== null && i >= b.disconnectAfter) return ctx.disconnect();
    if (b.errorAfter !== null && i >= b.errorAfter) {
      await ctx.write(ev('error', { error: { type: 'overloaded_error', message: 'Overloaded' } }));
      return ctx.end();
    }
    await ctx.sleep(b.slowMs);
    if (!(await ctx.write(ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: pieces[i] } })))) return;
  }
  if (b.disconnectAfter !== null) return ctx.disconnect();
  const tail = [
    ev('content_block_stop', { index: 0 }),
    ev('message_delta', { delta: { stop_reason: stopReason, stop_sequence: null },
      usage: { output_tokens: pieces.length } }),
    ev('message_stop', {}),
  ];
  for (const s of tail) if (!(await ctx.write(s))) return;
  ctx.end();
}

// A non-stream body, honouring disconnect-after-N (headers + N bytes, then destroy).
async function sendWhole(ctx, text, headers, b) {
  if (b.disconnectAfter === null) return ctx.json(200, text, headers);
  const buf = Buffer.from(text);
  ctx.head(200, { 'content-type': 'application/json', 'content-length': buf.length, ...headers });
  await ctx.write(buf.subarray(0, Math.min(b.disconnectAfter, buf.length - 1)));
  await ctx.disconnect();
}

// A deterministic unit vector for `text`, `dims` floats.
function embeddingOf(text, dims) {
  const v = [];
  let block = Buffer.alloc(0);
  for (let i = 0; v.length < dims; i++) {
    if (block.length < 4) block = crypto.createHash('sha256').update(`${i}:${text}`).digest();
    v.push(block.readUInt32LE(0) / 0xffffffff - 0.5);
    block = block.subarray(4);
  }
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1;
  return v.map((x) => Math.fround(x / norm));
}

async function handleEmbeddings(ctx, r, body, b) {
  const headers = responseHeaders(r.dialect);
  let inputs = body.input;
  if (typeof inputs === 'string' || (Array.isArray(inputs) && inputs.length && typeof inputs[0] === 'number')) inputs = [inputs];
  if (!Array.isArray(inputs) || inputs.length === 0) {
    return ctx.json(400, errorBody(r.dialect, 400, '\'$.input\' is invalid. Please check the API reference: ' +
      'https://platform.openai.com/docs/api-reference.', { param: 'input' }), headers);
  }
  const dims = Number.isInteger(body.dimensions) && body.dimensions > 0 && body.dimensions <= 4096 ? body.dimensions : 16;
  let tokens = 0;
  const data = inputs.map((inp, index) => {
    let key;
    if (Array.isArray(inp)) { tokens += inp.length; key = inp.join(','); }
    else { tokens += words(String(inp)).length; key = String(inp); }
    const vec = embeddingOf(key, dims);
    let embedding = vec;
    if (body.encoding_format === 'base64') {
      const f = Buffer.alloc(4 * dims);
      vec.forEach((x, i) => f.writeFloatLE(x, 4 * i));
      embedding = f.toString('base64');
    }
    return { object: 'embedding', index, embedding };
  });
  const model = body.model !== undefined ? body.model : r.deployment;
  await ctx.sleep(b.slowMs);
  return ctx.json(200, { object: 'list', data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } }, headers);
}

function modelObject(dialect, id) {
  if (dialect === 'anthropic') {
    return { type: 'model', id, display_name: id, created_at: '2025-01-01T00:00:00Z' };
  }
  return { id, object: 'model', created: 1700000000, owned_by: 'system' };
}

function handleModels(ctx, r) {
  const headers = responseHeaders(r.dialect);
  if (r.modelId !== undefined) {
    if (opts.models.includes(r.modelId) || r.modelId.startsWith('fake-')) {
      return ctx.json(200, modelObject(r.dialect, r.modelId), headers);
    }
    return ctx.json(404, errorBody(r.dialect, 404, r.dialect === 'anthropic' ? `model: ${r.modelId}`
      : `The model '${r.modelId}' does not exist`, { param: 'model', code: 'model_not_found' }), headers);
  }
  const data = opts.models.map((id) => modelObject(r.dialect, id));
  if (r.dialect === 'anthropic') {
    return ctx.json(200, { data, has_more: false, first_id: data.length ? data[0].id : null,
      last_id: data.length ? data[data.length - 1].id : null }, headers);
  }
  return ctx.json(200, { object: 'list', data }, headers);
}

// ---------------------------------------------------------------- test hooks

async function handleHook(req, res, url) {
  const send = (status, obj) => {
    const body = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  req.resume();
  if (req.method === 'GET' && url.pathname === '/_fake/requests') {
    const min = Number(url.searchParams.get('min') || 0);
    const timeout = Math.min(Number(url.searchParams.get('timeout_ms') || 0), 60000);
    if (records.length < min && timeout > 0) {
      await new Promise((resolve) => {
        const t = setTimeout(done, timeout);
        function done() {
          clearTimeout(t);
          recordWaiters.delete(check);
          resolve();
        }
        function check() { if (records.length >= min) done(); }
        recordWaiters.add(check);
      });
    }
    return send(200, records);
  }
  if (req.method === 'GET' && url.pathname === '/_fake/inflight') {
    return send(200, [...inflight].map((c) => ({ seq: c.rec.seq, path: c.rec.path, model: c.rec.model,
      stream: c.rec.stream, status: c.rec.status, bytes_sent: c.rec.bytes_sent, drain_waits: c.rec.drain_waits,
      received_at_ms: c.rec.received_at_ms })));
  }
  if (req.method === 'POST' && url.pathname === '/_fake/reset') {
    records.length = 0;
    if (opts.record) fs.writeFileSync(opts.record, '');
    return send(200, { ok: true });
  }
  return send(404, { error: `no fake hook ${req.method} ${url.pathname}` });
}

// ---------------------------------------------------------------- dispatch

async function handle(req, res) {
  const url = new URL(req.url || '/', 'http://fake.invalid');
  if (url.pathname.startsWith('/_fake/')) return handleHook(req, res, url);

  const ctx = new Ctx(req, res);
  const got = await readBody(ctx);
  if (got === null || ctx.closed) return ctx.markClosed();
  ctx.rec.body_bytes = got.size;
  let text = got.buf.toString('utf8');
  let parsed;
  try { parsed = text.length ? JSON.parse(text) : undefined; } catch (e) { parsed = undefined; }
  if (parsed !== undefined) ctx.rec.body = parsed;
  if (parsed === undefined || got.buf.length > kMaxRecordedBodyBytes) {
    if (got.buf.length > kMaxRecordedBodyBytes) {
      text = got.buf.subarray(0, kMaxRecordedBodyBytes).toString('utf8');
      ctx.rec.body_truncated = true;
    }
    ctx.rec.body = text;
  }

  const r = route(req, url.pathname);
  if (!r) {
    const dialect = url.pathname.startsWith('/openai/') ? 'azure'
      : req.headers['anthropic-version'] !== undefined ? 'anthropic' : 'openai';
    ctx.rec.dialect = dialect;
    const msg = dialect === 'anthropic' ? 'Not Found'
      : dialect === 'azure' ? 'Resource not found' : `Invalid URL (${req.method} ${url.pathname})`;
    return ctx.json(404, errorBody(dialect, 404, msg), responseHeaders(dialect));
  }
  ctx.rec.dialect = r.dialect;
  const wantMethod = r.kind === 'models' ? 'GET' : 'POST';
  if (req.method !== wantMethod) {
    const msg = r.dialect === 'anthropic' ? 'Not Found' : `Invalid URL (${req.method} ${url.pathname})`;
    return ctx.json(r.dialect === 'anthropic' ? 404 : 405, errorBody(r.dialect, r.dialect === 'anthropic' ? 404 : 400, msg),
      responseHeaders(r.dialect));
  }
  if (!checkAuth(ctx, r, url.searchParams)) return;
  if (r.kind === 'models') return handleModels(ctx, r);

  const hdr = responseHeaders(r.dialect);
  if (got.over) {
    return ctx.json(413, errorBody(r.dialect, 413, `request body of ${got.size} bytes is over the ` +
      `fake vendor's limit of ${kMaxBodyBytes}`), hdr);
  }
  if (parsed === undefined || parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    const msg = r.dialect === 'anthropic'
      ? 'There was an issue with the JSON body of your request. Please check that it is valid JSON.'
      : 'We could not parse the JSON body of your request. (HINT: This likely means you aren\'t using your ' +
        'HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)';
    return ctx.json(400, errorBody(r.dialect, 400, msg), hdr);
  }
  const model = parsed.model !== undefined ? parsed.model : r.deployment;
  ctx.rec.model = model === undefined ? null : model;
  ctx.rec.stream = parsed.stream === true;
  if (typeof model !== 'string' || model.length === 0) {
    const msg = r.dialect === 'anthropic' ? 'model: Field required' : 'you must provide a model parameter';
    return ctx.json(400, errorBody(r.dialect, 400, msg), hdr);
  }
  if (r.kind !== 'embeddings') {
    if (!Array.isArray(parsed.messages) || parsed.messages.length === 0) {
      const msg = r.dialect === 'anthropic' ? 'messages: Field required' : 'Missing required parameter: \'messages\'.';
      return ctx.json(400, errorBody(r.dialect, 400, msg, { param: 'messages', code: 'missing_required_parameter' }), hdr);
    }
    if (r.dialect === 'anthropic' && !Number.isInteger(parsed.max_tokens)) {
      return ctx.json(400, errorBody('anthropic', 400, 'max_tokens: Field required'), hdr);
    }
  }
  // A model without knobs of its own (any name not starting with "fake-",
  // or fake-echo, the default) gets the --behaviour ones, if any.
  const own = model.startsWith('fake-') && model !== 'fake-echo';
  const pb = parseBehaviour(!own && opts.behaviour ? `fake-${opts.behaviour}` : model);
  if (pb.error) return ctx.json(400, errorBody(r.dialect, 400, pb.error), hdr);
  const b = pb.behaviour;
  ctx.rec.behaviour = b.name;

  await ctx.sleep(b.thinkMs);
  if (ctx.closed) return;
  if (b.status) {
    const extra = b.status === 429 ? { 'retry-after': String(b.retryAfter) } : {};
    const code = b.status === 429 && r.dialect !== 'anthropic' && r.dialect !== 'azure' ? { code: 'rate_limit_exceeded' } : {};
    return ctx.json(b.status, errorBody(r.dialect, b.status, knobErrorMessage(r.dialect, b.status, model, b.retryAfter), code),
      { ...hdr, ...extra });
  }
  if (r.kind === 'embeddings') return handleEmbeddings(ctx, r, parsed, b);
  if (r.kind === 'messages') return handleMessages(ctx, r, parsed, b);
  return handleChat(ctx, r, parsed, b);
}

// ---------------------------------------------------------------- server

function onRequest(req, res) {
  handle(req, res).catch((e) => {
    process.stderr.write(`fake-vendor: internal error on ${req.method} ${req.url}: ${e && e.stack}\n`);
    if (!res.headersSent) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('fake vendor internal error\n');
    } else {
      res.destroy();
    }
  });
}

let server;
if (opts.tls) {
  let cert;
  let key;
  try {
    cert = fs.readFileSync(opts.tls.cert);
    key = fs.readFileSync(opts.tls.key);
  } catch (e) {
    usage(`cannot read --tls files: ${e.message}`);
  }
  server = https.createServer({ cert, key, ALPNProtocols: ['http/1.1'], noDelay: true }, onRequest);
} else {
  server = http.createServer({ noDelay: true }, onRequest);
}
server.keepAliveTimeout = opts.keepAliveMs;
const sockets = new Set();
server.on('connection', (s) => {
  s.setNoDelay(true);
  sockets.add(s);
  s.on('close', () => sockets.delete(s));
});
server.on('clientError', (err, socket) => {
  if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  else socket.destroy();
});

function shutdown() {
  server.close();
  for (const s of sockets) s.destroy();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
if (opts.exitWithStdin) {
  process.stdin.on('end', shutdown);
  process.stdin.on('error', shutdown);
  process.stdin.resume();
}

server.on('error', (e) => {
  process.stderr.write(`fake-vendor: cannot listen on 127.0.0.1:${opts.port}: ${e.message}\n`);
  process.exit(1);
});
server.listen(opts.port, '127.0.0.1', () => {
  const { port } = server.address();
  process.stdout.write(`fake-vendor listening on 127.0.0.1:${port} (${opts.tls ? 'https' : 'http'})\n`);
});
