'use strict';
// Self-test of fake_vendor.js: starts it on 127.0.0.1 and checks every
// endpoint, auth rule and behaviour knob with node's http client, then with
// the official `openai` and `@anthropic-ai/sdk` packages (tests/interop/
// node_modules) pointed at it directly, proving the fake is faithful enough
// for them. With a tokengo-hub binary as argument it also checks --tls with a
// certificate made by `tokengo-hub cert`.
// Usage: node fake_vendor_selftest.js [--no-sdk] [path to tokengo-hub]
const assert = require('assert');
const fs = require('fs');
const http = require('http');
const https = require('https');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { createRequire } = require('module');
const { Peer, check, run } = require('../interop/lib');

const FAKE = path.join(__dirname, 'fake_vendor.js');
const KEY_OPENAI = 'sk-openai-test-key-0001';
const KEY_ANTHROPIC = 'sk-ant-test-key-0002';
const KEY_AZURE = 'azure-test-key-0003';
const noSdk = process.argv.includes('--no-sdk');
const hubPath = process.argv.slice(2).find((a) => a !== '--no-sdk');

const interopRequire = createRequire(path.join(__dirname, '..', 'interop', 'package.json'));
function sdk(name) {
  try {
    return interopRequire(name);
  } catch (e) {
    return null;
  }
}

function monoMs() {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

let PORT = 0;
let TMP = '';

// One HTTP request; resolves { status, headers, text, json, ms } (ms: until the response head).
function request({ method = 'POST', path: p, headers = {}, body, port = PORT, agent = false, tls = null }) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const h = { ...headers };
    if (data !== undefined) {
      h['content-type'] = h['content-type'] || 'application/json';
      h['content-length'] = Buffer.byteLength(data);
    }
    const t0 = monoMs();
    const mod = tls ? https : http;
    const req = mod.request({ host: '127.0.0.1', port, method, path: p, headers: h, agent, ...(tls || {}) }, (res) => {
      const ms = monoMs() - t0;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch (e) { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json, ms, socket: res.socket });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

const oa = (extra = {}) => ({ authorization: `Bearer ${KEY_OPENAI}`, ...extra });
const an = (extra = {}) => ({ 'x-api-key': KEY_ANTHROPIC, 'anthropic-version': '2023-06-01', ...extra });
const az = (extra = {}) => ({ 'api-key': KEY_AZURE, ...extra });
const AZ_PATH = (dep, what = 'chat/completions') => `/openai/deployments/${dep}/${what}?api-version=2024-10-21`;

function chatBody(model, extra = {}) {
  return { model, messages: [{ role: 'system', content: 'be brief' },
    { role: 'user', content: [{ type: 'text', text: 'alpha beta' }, { type: 'text', text: 'gamma' }] }], ...extra };
}
function msgBody(model, extra = {}) {
  return { model, max_tokens: 100, system: 'be brief', messages: [{ role: 'user', content: 'alpha beta gamma' }], ...extra };
}

// SSE text -> [{ event, data }] (data parsed as JSON unless it is [DONE]).
function sse(text) {
  check(text.endsWith('\n\n'), `SSE stream does not end with a blank line: ${JSON.stringify(text.slice(-40))}`);
  return text.slice(0, -2).split('\n\n').map((block) => {
    let event = null;
    let data = null;
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data = line.slice(6);
      else throw new Error(`unexpected SSE line ${JSON.stringify(line)}`);
    }
    return { event, data: data === '[DONE]' ? data : JSON.parse(data) };
  });
}

async function records(min = 0) {
  const r = await request({ method: 'GET', path: `/_fake/requests?min=${min}&timeout_ms=5000` });
  assert.strictEqual(r.status, 200);
  return r.json;
}
async function reset() {
  assert.strictEqual((await request({ path: '/_fake/reset' })).status, 200);
}

async function testOpenAI() {
  console.log('openai: chat non-stream, usage, headers');
  let r = await request({ path: '/v1/chat/completions', headers: oa(), body: chatBody('gpt-4o-mini') });
  assert.strictEqual(r.status, 200, r.text);
  assert.match(r.headers['content-type'], /^application\/json/);
  assert.ok(r.headers['x-request-id']);
  assert.strictEqual(r.json.object, 'chat.completion');
  assert.strictEqual(r.json.model, 'gpt-4o-mini');
  assert.strictEqual(r.json.choices[0].message.content, 'alpha beta gamma');
  assert.strictEqual(r.json.choices[0].finish_reason, 'stop');
  assert.deepStrictEqual([r.json.usage.prompt_tokens, r.json.usage.completion_tokens, r.json.usage.total_tokens], [5, 3, 8]);

  console.log('openai: max_tokens truncates with finish_reason length');
  r = await request({ path: '/v1/chat/completions', headers: oa(), body: chatBody('fake-echo', { max_tokens: 2 }) });
  assert.strictEqual(r.json.choices[0].message.content, 'alpha beta');
  assert.strictEqual(r.json.choices[0].finish_reason, 'length');
  assert.strictEqual(r.json.usage.completion_tokens, 2);

  console.log('openai: stream without include_usage');
  r = await request({ path: '/v1/chat/completions', headers: oa(), body: chatBody('fake-chunks-4', { stream: true }) });
  assert.strictEqual(r.status, 200);
  assert.match(r.headers['content-type'], /^text\/event-stream/);
  let ev = sse(r.text);
  assert.strictEqual(ev[ev.length - 1].data, '[DONE]');
  const chunks = ev.slice(0, -1).map((e) => e.data);
  for (const c of chunks) {
    assert.strictEqual(c.object, 'chat.completion.chunk');
    assert.ok(!('usage' in c), 'usage key without include_usage');
    assert.strictEqual(c.choices.length, 1);
  }
  assert.strictEqual(chunks[0].choices[0].delta.role, 'assistant');
  assert.strictEqual(chunks.length, 1 + 4 + 1);
  assert.strictEqual(chunks.map((c) => c.choices[0].delta.content || '').join(''), 'alpha beta gamma alpha');
  assert.strictEqual(chunks[chunks.length - 1].choices[0].finish_reason, 'stop');

  console.log('openai: stream with stream_options.include_usage: usage chunk with empty choices');
  r = await request({ path: '/v1/chat/completions', headers: oa(),
    body: chatBody('fake-echo', { stream: true, stream_options: { include_usage: true } }) });
  ev = sse(r.text);
  assert.strictEqual(ev[ev.length - 1].data, '[DONE]');
  const last = ev[ev.length - 2].data;
  assert.deepStrictEqual(last.choices, []);
  assert.deepStrictEqual([last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens], [5, 3, 8]);
  for (const e of ev.slice(0, -2)) assert.strictEqual(e.data.usage, null);

  console.log('deepseek: /chat/completions without /v1, Bearer auth, DeepSeek 401 body');
  r = await request({ path: '/chat/completions', headers: oa(), body: chatBody('deepseek-chat') });
  assert.strictEqual(r.status, 200, r.text);
  assert.strictEqual(r.json.usage.total_tokens, 8);
  r = await request({ path: '/chat/completions', headers: { authorization: 'Bearer sk-wrong-key-123456' }, body: chatBody('x') });
  assert.strictEqual(r.status, 401);
  assert.strictEqual(r.json.error.type, 'authentication_error');

  console.log('openai: embeddings float and base64, usage');
  r = await request({ path: '/v1/embeddings', headers: oa(), body: { model: 'text-embedding-3-small', input: 'one two three' } });
  assert.strictEqual(r.status, 200, r.text);
  assert.strictEqual(r.json.object, 'list');
  assert.strictEqual(r.json.data[0].object, 'embedding');
  const floats = r.json.data[0].embedding;
  assert.strictEqual(floats.length, 16);
  assert.deepStrictEqual(r.json.usage, { prompt_tokens: 3, total_tokens: 3 });
  r = await request({ path: '/v1/embeddings', headers: oa(),
    body: { model: 'text-embedding-3-small', input: ['one two three', 'four'], encoding_format: 'base64', dimensions: 8 } });
  assert.strictEqual(r.json.data.length, 2);
  const b = Buffer.from(r.json.data[0].embedding, 'base64');
  assert.strictEqual(b.length, 32);
  assert.strictEqual(b.readFloatLE(0), Math.fround(b.readFloatLE(0)));
  assert.deepStrictEqual(r.json.usage, { prompt_tokens: 4, total_tokens: 4 });

  console.log('openai: models list, one model, unknown model 404');
  r = await request({ method: 'GET', path: '/v1/models', headers: oa() });
  assert.strictEqual(r.json.object, 'list');
  assert.ok(r.json.data.some((m) => m.id === 'gpt-4o-mini' && m.object === 'model'));
  r = await request({ method: 'GET', path: '/v1/models/fake-chunks-3', headers: oa() });
  assert.strictEqual(r.json.id, 'fake-chunks-3');
  r = await request({ method: 'GET', path: '/v1/models/no-such-model', headers: oa() });
  assert.strictEqual(r.status, 404);
  assert.strictEqual(r.json.error.code, 'model_not_found');

  console.log('openai: 401 missing and wrong key, 400 bad JSON, missing messages, unknown knob, 404 path');
  r = await request({ path: '/v1/chat/completions', body: chatBody('x') });
  assert.strictEqual(r.status, 401);
  assert.strictEqual(r.json.error.type, 'invalid_request_error');
  assert.match(r.json.error.message, /didn't provide an API key/);
  r = await request({ path: '/v1/chat/completions', headers: { authorization: 'Bearer sk-wrong-0000000000' }, body: chatBody('x') });
  assert.strictEqual(r.status, 401);
  assert.strictEqual(r.json.error.code, 'invalid_api_key');
  assert.ok(!r.text.includes('sk-wrong-0000000000'), 'the key must be masked');
  r = await request({ path: '/v1/chat/completions', headers: oa(), body: '{"model": "x", ' });
  assert.strictEqual(r.status, 400);
  assert.match(r.json.error.message, /parse the JSON body/);
  r = await request({ path: '/v1/chat/completions', headers: oa(), body: { model: 'x' } });
  assert.strictEqual(r.status, 400);
  assert.strictEqual(r.json.error.param, 'messages');
  r = await request({ path: '/v1/chat/completions', headers: oa(), body: chatBody('fake-bogus-3') });
  assert.strictEqual(r.status, 400);
  assert.match(r.json.error.message, /unknown fake knob 'bogus'/);
  r = await request({ path: '/v1/nothing', headers: oa(), body: {} });
  assert.strictEqual(r.status, 404);
  assert.match(r.json.error.message, /Invalid URL/);
}

async function testAnthropic() {
  console.log('anthropic: messages non-stream, usage');
  let r = await request({ path: '/v1/messages', headers: an(), body: msgBody('claude-3-5-haiku-latest') });
  assert.strictEqual(r.status, 200, r.text);
  assert.ok(r.headers['request-id']);
  assert.strictEqual(r.json.type, 'message');
  assert.strictEqual(r.json.role, 'assistant');
  assert.deepStrictEqual(r.json.content, [{ type: 'text', text: 'alpha beta gamma' }]);
  assert.strictEqual(r.json.stop_reason, 'end_turn');
  assert.strictEqual(r.json.usage.input_tokens, 5);
  assert.strictEqual(r.json.usage.output_tokens, 3);

  console.log('anthropic: stream event sequence and usage');
  r = await request({ path: '/v1/messages', headers: an(), body: msgBody('fake-chunks-3', { stream: true }) });
  assert.match(r.headers['content-type'], /^text\/event-stream/);
  const ev = sse(r.text);
  for (const e of ev) assert.strictEqual(e.event, e.data.type);
  assert.deepStrictEqual(ev.map((e) => e.event), ['message_start', 'content_block_start', 'ping',
    'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
  assert.strictEqual(ev[0].data.message.usage.input_tokens, 5);
  assert.strictEqual(ev.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.text).join(''), 'alpha beta gamma');
  assert.strictEqual(ev[7].data.usage.output_tokens, 3);
  assert.strictEqual(ev[7].data.delta.stop_reason, 'end_turn');

  console.log('anthropic: max_tokens truncation, models list, auth and validation errors');
  r = await request({ path: '/v1/messages', headers: an(), body: msgBody('fake-echo', { max_tokens: 1 }) });
  assert.strictEqual(r.json.stop_reason, 'max_tokens');
  assert.strictEqual(r.json.usage.output_tokens, 1);
  r = await request({ method: 'GET', path: '/v1/models', headers: an() });
  assert.strictEqual(r.json.has_more, false);
  assert.strictEqual(r.json.data[0].type, 'model');
  r = await request({ path: '/v1/messages', headers: { 'anthropic-version': '2023-06-01' }, body: msgBody('x') });
  assert.strictEqual(r.status, 401);
  assert.deepStrictEqual(r.json, { type: 'error', error: { type: 'authentication_error', message: 'x-api-key header is required' } });
  r = await request({ path: '/v1/messages', headers: an({ 'x-api-key': 'sk-ant-wrong' }), body: msgBody('x') });
  assert.strictEqual(r.status, 401);
  assert.strictEqual(r.json.error.message, 'invalid x-api-key');
  r = await request({ path: '/v1/messages', headers: { 'x-api-key': KEY_ANTHROPIC }, body: msgBody('x') });
  assert.strictEqual(r.status, 400);
  assert.match(r.json.error.message, /anthropic-version/);
  r = await request({ path: '/v1/messages', headers: an({ authorization: 'Bearer sk-wrong-key-00000' }), body: msgBody('x') });
  assert.strictEqual(r.status, 200, 'x-api-key decides for /v1/messages');
  r = await request({ path: '/v1/messages', headers: { authorization: `Bearer ${KEY_ANTHROPIC}`, 'anthropic-version': '2023-06-01' },
    body: msgBody('x') });
  assert.strictEqual(r.status, 200, 'an API key as a Bearer token works on /v1/messages');
  r = await request({ path: '/v1/messages', headers: an(), body: { model: 'x', messages: [{ role: 'user', content: 'hi' }] } });
  assert.strictEqual(r.status, 400);
  assert.strictEqual(r.json.error.message, 'max_tokens: Field required');
}

async function testAzure() {
  console.log('azure: chat non-stream and stream (prompt filter chunk first), embeddings, auth');
  let r = await request({ path: AZ_PATH('fake-echo'), headers: az(), body: { messages: chatBody('').messages } });
  assert.strictEqual(r.status, 200, r.text);
  assert.strictEqual(r.json.model, 'fake-echo');
  assert.strictEqual(r.json.usage.total_tokens, 8);
  r = await request({ path: AZ_PATH('fake-chunks-2'), headers: az(),
    body: { messages: chatBody('').messages, stream: true, stream_options: { include_usage: true } } });
  const ev = sse(r.text);
  assert.deepStrictEqual(ev[0].data.choices, []);
  assert.ok(ev[0].data.prompt_filter_results);
  assert.strictEqual(ev[ev.length - 2].data.usage.completion_tokens, 2);
  r = await request({ path: AZ_PATH('emb', 'embeddings'), headers: az(), body: { input: 'a b' } });
  assert.strictEqual(r.json.usage.prompt_tokens, 2);
  r = await request({ path: AZ_PATH('fake-echo'), headers: { 'api-key': 'wrong' }, body: chatBody('x') });
  assert.strictEqual(r.status, 401);
  assert.strictEqual(r.json.error.code, '401');
  r = await request({ path: AZ_PATH('fake-echo'), headers: oa(), body: chatBody('x') });
  assert.strictEqual(r.status, 401, 'Azure wants api-key, not Authorization');
  r = await request({ path: '/openai/deployments/fake-echo/chat/completions', headers: az(), body: chatBody('x') });
  assert.strictEqual(r.status, 404);
  assert.strictEqual(r.json.error.message, 'Resource not found');
}

async function testKnobs() {
  console.log('knobs: 429 with Retry-After, 500, 529 in each dialect');
  let r = await request({ path: '/v1/chat/completions', headers: oa(), body: chatBody('fake-429') });
  assert.strictEqual(r.status, 429);
  assert.strictEqual(r.headers['retry-after'], '2');
  assert.strictEqual(r.json.error.code, 'rate_limit_exceeded');
  r = await request({ path: '/v1/messages', headers: an(), body: msgBody('fake-429', { stream: true }) });
  assert.strictEqual(r.status, 429);
  assert.strictEqual(r.headers['retry-after'], '2');
  assert.strictEqual(r.json.error.type, 'rate_limit_error');
  r = await request({ path: '/v1/chat/completions', headers: oa(), body: chatBody('fake-500') });
  assert.strictEqual(r.status, 500);
  assert.strictEqual(r.json.error.type, 'server_error');
  r = await request({ path: '/v1/messages', headers: an(), body: msgBody('fake-529') });
  assert.strictEqual(r.status, 529);
  assert.strictEqual(r.json.error.type, 'overloaded_error');
  r = await request({ path: AZ_PATH('fake-429'), headers: az(), body: { messages: chatBody('').messages } });
  assert.strictEqual(r.status, 429);
  assert.strictEqual(r.json.error.code, '429');

  console.log('knobs: think delays the head, slow delays each chunk (lower bounds only)');
  r = await request({ path: '/v1/chat/completions', headers: oa(), body: chatBody('fake-think-200') });
  assert.strictEqual(r.status, 200);
  assert.ok(r.ms >= 195, `think-200 answered its head after ${r.ms} ms`);
  const t0 = monoMs();
  r = await request({ path: '/v1/messages', headers: an(), body: msgBody('fake-slow-40-chunks-3', { stream: true }) });
  assert.ok(monoMs() - t0 >= 115, 'slow-40 x 3 chunks took less than 120 ms');
  assert.strictEqual(sse(r.text).filter((e) => e.event === 'content_block_delta').length, 3);

  console.log('knobs: chunksize pads each word, big gives exact sizes');
  r = await request({ path: '/v1/chat/completions', headers: oa(), body: chatBody('fake-chunks-2-chunksize-100', { stream: true }) });
  let ev = sse(r.text);
  assert.strictEqual(ev[1].data.choices[0].delta.content.length, 100);
  assert.strictEqual(ev[2].data.choices[0].delta.content.length, 101);
  for (const n of [2000, 4099, 1000000]) {
    r = await request({ path: '/v1/chat/completions', headers: oa(), body: chatBody(`fake-big-${n}`) });
    assert.strictEqual(Buffer.byteLength(r.text), n);
    assert.strictEqual(r.json.usage.completion_tokens, r.json.choices[0].message.content.split(' ').length);
    r = await request({ path: '/v1/messages', headers: an(), body: msgBody(`fake-big-${n}`) });
    assert.strictEqual(Buffer.byteLength(r.text), n);
    assert.strictEqual(r.json.usage.output_tokens, r.json.content[0].text.split(' ').length);
  }
  r = await request({ path: '/v1/chat/completions', headers: oa(), body: chatBody('fake-big-40000', { stream: true }) });
  ev = sse(r.text);
  assert.strictEqual(ev.length, 1 + 3 + 1 + 1);

  console.log('knobs: error-after sends the in-stream error event');
  r = await request({ path: '/v1/chat/completions', headers: oa(), body: chatBody('fake-chunks-5-error-after-2', { stream: true }) });
  ev = sse(r.text);
  assert.strictEqual(ev.length, 1 + 2 + 1);
  assert.strictEqual(ev[3].data.error.type, 'server_error');
  r = await request({ path: '/v1/messages', headers: an(), body: msgBody('fake-error-after-1', { stream: true }) });
  ev = sse(r.text);
  assert.deepStrictEqual(ev.map((e) => e.event), ['message_start', 'content_block_start', 'ping', 'content_block_delta', 'error']);
  assert.strictEqual(ev[4].data.error.type, 'overloaded_error');

  console.log('knobs: disconnect-after (stream: N chunks then reset; non-stream: N body bytes)');
  await reset();
  const got = await streamUntilEnd('/v1/chat/completions', oa(), chatBody('fake-chunks-9-disconnect-after-2', { stream: true }));
  check(got.error, 'disconnect-after-2 ended cleanly');
  assert.strictEqual((got.text.match(/"content":"[^"]/g) || []).length, 2);
  const nonStream = await streamUntilEnd('/v1/messages', an(), msgBody('fake-disconnect-after-10'));
  check(nonStream.error, 'non-stream disconnect-after ended cleanly');
  assert.strictEqual(nonStream.text.length, 10);
  assert.ok(Number(nonStream.headers['content-length']) > 10);
  const recs = await records(2);
  assert.strictEqual(recs.length, 2);
  for (const rec of recs) {
    assert.strictEqual(rec.server_disconnected, true);
    assert.strictEqual(rec.client_aborted, false);
  }
}

// Reads a response to its end or its error: { headers, text, error }.
function streamUntilEnd(p, headers, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port: PORT, method: 'POST', path: p, agent: false,
      headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      let text = '';
      let error = null;
      res.on('data', (c) => { text += c; });
      res.on('aborted', () => { error = error || new Error('aborted'); });
      res.on('error', (e) => { error = error || e; });
      res.on('close', () => resolve({ headers: res.headers, text, error }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function testRecords() {
  console.log('records: headers, body, connection reuse, file lines, reset');
  await reset();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  await request({ path: '/v1/chat/completions', agent, headers: oa({ 'X-Custom-Thing': 'one' }), body: chatBody('fake-chunks-1') });
  await request({ path: '/v1/messages', agent, headers: an(), body: msgBody('fake-chunks-1', { stream: true }) });
  agent.destroy();
  const recs = await records(2);
  assert.strictEqual(recs.length, 2);
  const [a, b] = recs;
  assert.strictEqual(a.method, 'POST');
  assert.strictEqual(a.path, '/v1/chat/completions');
  assert.strictEqual(a.headers.authorization, `Bearer ${KEY_OPENAI}`);
  assert.ok(a.raw_headers.some(([n, v]) => n === 'X-Custom-Thing' && v === 'one'));
  assert.deepStrictEqual(a.body, chatBody('fake-chunks-1'));
  assert.strictEqual(a.dialect, 'openai');
  assert.strictEqual(a.model, 'fake-chunks-1');
  assert.strictEqual(a.behaviour, 'chunks-1');
  assert.strictEqual(a.status, 200);
  assert.strictEqual(a.client_aborted, false);
  assert.strictEqual(a.closed_at_ms, null);
  assert.ok(a.finished_at_ms >= a.first_byte_at_ms && a.first_byte_at_ms >= a.received_at_ms);
  assert.strictEqual(b.dialect, 'anthropic');
  assert.strictEqual(b.stream, true);
  assert.strictEqual(b.connection, a.connection, 'keep-alive reuses the connection');
  assert.deepStrictEqual([a.request_on_connection, b.request_on_connection], [1, 2]);
  const fileLines = fs.readFileSync(path.join(TMP, 'record.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepStrictEqual(fileLines, recs);
  await reset();
  assert.deepStrictEqual(await records(), []);
  assert.strictEqual(fs.readFileSync(path.join(TMP, 'record.jsonl'), 'utf8'), '');

  console.log('records: a 5 MB body is recorded truncated to 1 MiB');
  const big = { model: 'fake-echo', messages: [{ role: 'user', content: 'w '.repeat(2.5 * 1024 * 1024) }] };
  const r = await request({ path: '/v1/chat/completions', headers: oa(), body: big });
  assert.strictEqual(r.status, 200);
  assert.strictEqual(r.json.usage.prompt_tokens, 2.5 * 1024 * 1024);
  const [rec] = await records(1);
  assert.strictEqual(rec.body_truncated, true);
  assert.strictEqual(rec.body.length, 1024 * 1024);
  assert.strictEqual(rec.body_bytes, Buffer.byteLength(JSON.stringify(big)));
  await reset();
}

async function testAbort() {
  console.log('abort: client closes mid-stream; the fake records client_aborted and closed_at_ms');
  await reset();
  let destroyedAt = 0;
  let destroyedWall = 0;
  await new Promise((resolve, reject) => {
    const data = JSON.stringify(chatBody('fake-slow-20-chunks-1000', { stream: true }));
    const req = http.request({ host: '127.0.0.1', port: PORT, method: 'POST', path: '/v1/chat/completions', agent: false,
      headers: oa({ 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) }) }, (res) => {
      let text = '';
      res.on('data', (c) => {
        text += c;
        if (destroyedAt === 0 && text.includes('"content":"alpha"')) {
          destroyedAt = monoMs();
          destroyedWall = Date.now();
          req.destroy();
          resolve();
        }
      });
    });
    req.on('error', (e) => { if (destroyedAt === 0) reject(e); });
    req.end(data);
  });
  let [rec] = await records(1);
  assert.ok(rec, 'no record of the aborted request');
  assert.strictEqual(rec.client_aborted, true);
  assert.strictEqual(rec.server_disconnected, false);
  assert.ok(rec.closed_at_ms >= destroyedAt, `closed_at_ms ${rec.closed_at_ms} before the client closed at ${destroyedAt}`);
  assert.ok(rec.closed_wall_ms >= destroyedWall - 1);
  assert.ok(rec.bytes_sent < 100000, `the fake went on streaming after the abort: ${rec.bytes_sent} bytes`);
  console.log(`  (the fake noticed the close ${(rec.closed_at_ms - destroyedAt).toFixed(3)} ms after it)`);

  console.log('abort: client closes while the model thinks (before any byte)');
  await reset();
  const req = http.request({ host: '127.0.0.1', port: PORT, method: 'POST', path: '/v1/messages', agent: false, headers: an() });
  req.on('error', () => {});
  req.end(JSON.stringify(msgBody('fake-think-30000')));
  await sleep(100);
  const t0 = monoMs();
  req.destroy();
  [rec] = await records(1);
  assert.ok(rec, 'the close during think was not recorded');
  assert.strictEqual(rec.client_aborted, true);
  assert.strictEqual(rec.status, null);
  assert.ok(rec.closed_at_ms >= t0);
  console.log(`  (the fake noticed the close ${(rec.closed_at_ms - t0).toFixed(3)} ms after it)`);
  await reset();
}

async function inflight() {
  return (await request({ method: 'GET', path: '/_fake/inflight' })).json;
}

async function testBackpressure() {
  console.log('flow control: a paused reader stops the fake; resuming gets everything');
  await reset();
  const chunks = 1000;
  const size = 65536;
  let res;
  const req = http.request({ host: '127.0.0.1', port: PORT, method: 'POST', path: '/v1/chat/completions', agent: false,
    headers: oa({ 'content-type': 'application/json' }) }, (r) => {
    res = r;
    r.pause();
  });
  req.end(JSON.stringify(chatBody(`fake-chunks-${chunks}-chunksize-${size}`, { stream: true })));
  let prev = -1;
  let now = 0;
  for (let i = 0; i < 100; i++) {
    await sleep(100);
    const list = await inflight();
    assert.strictEqual(list.length, 1);
    now = list[0].bytes_sent;
    if (now === prev) break;
    prev = now;
  }
  assert.strictEqual(now, prev, 'the fake never stopped writing to a paused reader');
  assert.ok(now < (chunks * size) / 2, `the fake wrote ${now} bytes to a paused reader`);
  console.log(`  (stalled after ${now} bytes)`);
  let total = 0;
  await new Promise((resolve) => {
    res.on('data', (c) => { total += c.length; });
    res.on('end', resolve);
    res.resume();
  });
  const [rec] = await records(1);
  assert.strictEqual(rec.client_aborted, false);
  assert.ok(rec.drain_waits > 0);
  assert.strictEqual(total, rec.bytes_sent);
  assert.ok(total > chunks * size);
  await reset();
}

async function testTls() {
  if (!hubPath) {
    console.log('tls: skipped (no tokengo-hub given to make a certificate)');
    return;
  }
  console.log('tls: --tls with a certificate from tokengo-hub cert');
  check(fs.existsSync(hubPath), `${hubPath} is missing: build the tokengo-hub target first`);
  const cert = path.join(TMP, 'fake.crt');
  const key = path.join(TMP, 'fake.key');
  execFileSync(hubPath, ['cert', '--cert', cert, '--key', key, '--name', 'localhost', '--dns', 'localhost'], { stdio: 'ignore' });
  const peer = new Peer(process.execPath, [FAKE, '--tls', cert, key, '--key', KEY_OPENAI]);
  const line = await peer.line(/^fake-vendor listening on 127\.0\.0\.1:\d+ \(https\)$/);
  const port = Number(/:(\d+) /.exec(line)[1]);
  const tls = { ca: fs.readFileSync(cert), servername: 'localhost', ALPNProtocols: ['http/1.1'] };
  const r = await request({ port, tls, path: '/v1/chat/completions', headers: oa(), body: chatBody('fake-echo', { stream: true }) });
  assert.strictEqual(r.status, 200);
  assert.strictEqual(sse(r.text).pop().data, '[DONE]');
  const recs = (await request({ port, tls, method: 'GET', path: '/_fake/requests?min=1&timeout_ms=5000' })).json;
  assert.deepStrictEqual(recs[0].tls, { servername: 'localhost', alpn: 'http/1.1' });
  peer.kill();
  await peer.exited();
}

async function testSdks() {
  const openai = sdk('openai');
  const anthropic = sdk('@anthropic-ai/sdk');
  if (noSdk) {
    console.log('sdk: skipped (--no-sdk)');
    return;
  }
  check(openai && anthropic, 'the openai / @anthropic-ai/sdk packages are missing from tests/interop/node_modules: ' +
    'run scripts/setup (npm ci in tests/interop), or pass --no-sdk');
  console.log('sdk openai: chat non-stream and stream, embeddings, models, errors');
  const client = new openai.OpenAI({ apiKey: KEY_OPENAI, baseURL: `http://127.0.0.1:${PORT}/v1`, maxRetries: 0, timeout: 10000 });
  const c = await client.chat.completions.create(chatBody('gpt-4o-mini'));
  assert.strictEqual(c.choices[0].message.content, 'alpha beta gamma');
  assert.strictEqual(c.usage.total_tokens, 8);
  const stream = await client.chat.completions.create(chatBody('fake-chunks-5', { stream: true, stream_options: { include_usage: true } }));
  let text = '';
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.choices.length) text += chunk.choices[0].delta.content || '';
    if (chunk.usage) usage = chunk.usage;
  }
  assert.strictEqual(text, 'alpha beta gamma alpha beta');
  assert.strictEqual(usage.completion_tokens, 5);
  const e = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'one two three' });
  const direct = (await request({ path: '/v1/embeddings', headers: oa(), body: { model: 'x', input: 'one two three' } })).json;
  assert.deepStrictEqual(e.data[0].embedding, direct.data[0].embedding, 'the SDK decoded base64 to the float vector');
  assert.strictEqual(e.usage.prompt_tokens, 3);
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.ok(ids.includes('gpt-4o-mini'));
  await assert.rejects(client.chat.completions.create(chatBody('fake-429')), (err) =>
    err instanceof openai.RateLimitError && err.status === 429 && err.headers.get('retry-after') === '2');
  await assert.rejects(new openai.OpenAI({ apiKey: 'sk-wrong-key-xxxxxxxx', baseURL: `http://127.0.0.1:${PORT}/v1`, maxRetries: 0 })
    .chat.completions.create(chatBody('x')), (err) => err instanceof openai.AuthenticationError && err.code === 'invalid_api_key');
  await assert.rejects((async () => {
    const s = await client.chat.completions.create(chatBody('fake-chunks-5-error-after-2', { stream: true }));
    for await (const chunk of s) void chunk;
  })(), (err) => err instanceof openai.APIError);

  console.log('sdk openai: AzureOpenAI and a DeepSeek base URL');
  const azure = new openai.AzureOpenAI({ apiKey: KEY_AZURE, endpoint: `http://127.0.0.1:${PORT}`, apiVersion: '2024-10-21',
    deployment: 'fake-chunks-2', maxRetries: 0 });
  const ac = await azure.chat.completions.create(chatBody('fake-chunks-2'));
  assert.strictEqual(ac.usage.completion_tokens, 2);
  text = '';
  for await (const chunk of await azure.chat.completions.create(chatBody('fake-chunks-2', { stream: true }))) {
    if (chunk.choices.length) text += chunk.choices[0].delta.content || '';
  }
  assert.strictEqual(text, 'alpha beta');
  const ds = new openai.OpenAI({ apiKey: KEY_OPENAI, baseURL: `http://127.0.0.1:${PORT}`, maxRetries: 0 });
  assert.strictEqual((await ds.chat.completions.create(chatBody('deepseek-chat'))).usage.total_tokens, 8);

  console.log('sdk anthropic: messages non-stream and stream, models, errors');
  const a = new anthropic.Anthropic({ apiKey: KEY_ANTHROPIC, baseURL: `http://127.0.0.1:${PORT}`, maxRetries: 0, timeout: 10000 });
  const m = await a.messages.create(msgBody('claude-3-5-haiku-latest'));
  assert.strictEqual(m.content[0].text, 'alpha beta gamma');
  assert.deepStrictEqual([m.usage.input_tokens, m.usage.output_tokens], [5, 3]);
  const ms = a.messages.stream(msgBody('fake-chunks-4'));
  let streamed = '';
  ms.on('text', (t) => { streamed += t; });
  const final = await ms.finalMessage();
  assert.strictEqual(streamed, 'alpha beta gamma alpha');
  assert.strictEqual(final.content[0].text, streamed);
  assert.deepStrictEqual([final.usage.input_tokens, final.usage.output_tokens], [5, 4]);
  assert.strictEqual(final.stop_reason, 'end_turn');
  const types = [];
  for await (const ev of await a.messages.create(msgBody('fake-chunks-2', { stream: true }))) types.push(ev.type);
  assert.deepStrictEqual(types, ['message_start', 'content_block_start', 'content_block_delta', 'content_block_delta',
    'content_block_stop', 'message_delta', 'message_stop']);
  const models = [];
  for await (const mo of a.models.list()) models.push(mo.id);
  assert.ok(models.includes('claude-3-5-haiku-latest'));
  await assert.rejects(a.messages.create(msgBody('fake-429')), (err) => err instanceof anthropic.RateLimitError && err.status === 429);
  await assert.rejects(new anthropic.Anthropic({ apiKey: 'wrong', baseURL: `http://127.0.0.1:${PORT}`, maxRetries: 0 })
    .messages.create(msgBody('x')), (err) => err instanceof anthropic.AuthenticationError);
  await assert.rejects(a.messages.stream(msgBody('fake-chunks-5-error-after-2')).finalMessage(),
    (err) => err instanceof anthropic.APIError && /Overloaded/.test(err.message));

  console.log('sdk: the fake recorded the SDKs\' auth headers');
  const recs = await records();
  assert.ok(recs.some((r) => r.headers['x-stainless-lang'] === 'js' && r.headers['api-key'] === KEY_AZURE));
  assert.ok(recs.some((r) => r.dialect === 'anthropic' && r.headers['anthropic-version'] &&
    r.headers.authorization === `Bearer ${KEY_ANTHROPIC}`), '@anthropic-ai/sdk 1.x sends its key as a Bearer token');
}

async function main() {
  TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-vendor-selftest-'));
  process.on('exit', () => fs.rmSync(TMP, { recursive: true, force: true }));
  const peer = new Peer(process.execPath, [FAKE, '--key', KEY_OPENAI, '--key', KEY_ANTHROPIC, '--key', KEY_AZURE,
    '--record', path.join(TMP, 'record.jsonl')]);
  const line = await peer.line(/^fake-vendor listening on 127\.0\.0\.1:\d+ \(http\)$/);
  PORT = Number(/:(\d+) /.exec(line)[1]);
  await testOpenAI();
  await testAnthropic();
  await testAzure();
  await testKnobs();
  await testRecords();
  await testAbort();
  await testBackpressure();
  await testTls();
  await testSdks();
  peer.kill();
  await peer.exited();
}

run(main, 110000);
