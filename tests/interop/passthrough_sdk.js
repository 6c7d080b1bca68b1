// The official SDKs against a running hub + agent + fake vendor (started by
// tests/integration/passthrough_test.py): each call goes SDK -> hub -> tunnel
// -> agent -> fake vendor over real TLS and back. Exits non-zero with a
// message on the first mismatch; bounded by a global timeout.
//
// Usage: node passthrough_sdk.js BASE_URL TOKEN
//   BASE_URL  the hub's user API, e.g. http://127.0.0.1:8080
//   TOKEN     a user token (sk-tg-...)
// Models (served by the test's agent, knobs understood by the fake vendor):
//   openai provider:    fake-echo, fake-chunks-6
//   anthropic provider: fake-chunks-5

'use strict';

const path = require('path');
const modules = path.join(__dirname, 'node_modules');
const OpenAI = require(path.join(modules, 'openai')).default;
const Anthropic = require(path.join(modules, '@anthropic-ai/sdk')).default;

const [base, token] = process.argv.slice(2);
if (!base || !token) {
  console.error('usage: node passthrough_sdk.js BASE_URL TOKEN');
  process.exit(2);
}
setTimeout(() => {
  console.error('FAIL: timed out after 60 s');
  process.exit(1);
}, 60000).unref();

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
}

const PROMPT = 'the quick brown fox jumps';
const WORDS = PROMPT.split(' ').length;

async function openaiChat(client) {
  const r = await client.chat.completions.create({
    model: 'fake-echo',
    messages: [{ role: 'user', content: PROMPT }],
  });
  check(r.choices[0].message.content.includes('quick brown'), 'non-stream content: ' + JSON.stringify(r));
  check(r.usage && r.usage.prompt_tokens === WORDS, 'non-stream usage: ' + JSON.stringify(r.usage));
  return 'openai chat non-stream';
}

async function openaiStream(client) {
  const stream = await client.chat.completions.create({
    model: 'fake-chunks-6',
    messages: [{ role: 'user', content: PROMPT }],
    stream: true,
  });
  let chunks = 0;
  let text = '';
  for await (const c of stream) {
    if (c.choices.length && c.choices[0].delta && c.choices[0].delta.content) {
      chunks++;
      text += c.choices[0].delta.content;
    }
  }
  check(chunks >= 2, 'stream chunk count ' + chunks);
  check(text.length > 0, 'stream text');
  return 'openai chat stream (' + chunks + ' chunks)';
}

async function openaiEmbeddings(client) {
  const r = await client.embeddings.create({ model: 'fake-echo', input: PROMPT });
  check(r.data.length === 1 && r.data[0].embedding.length > 0, 'embedding: ' + JSON.stringify(r).slice(0, 200));
  return 'openai embeddings';
}

async function openaiModels(client) {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  for (const want of ['fake-echo', 'fake-chunks-6', 'fake-chunks-5']) {
    check(ids.includes(want), 'models list lacks ' + want + ': ' + ids.join(','));
  }
  const one = await client.models.retrieve('fake-echo');
  check(one.id === 'fake-echo', 'models retrieve');
  return 'openai models list + retrieve';
}

async function openaiBadToken() {
  const bad = new OpenAI({ apiKey: 'sk-tg-wrong', baseURL: base + '/v1', maxRetries: 0 });
  try {
    await bad.chat.completions.create({ model: 'fake-echo', messages: [{ role: 'user', content: 'x' }] });
  } catch (e) {
    check(e.status === 401, 'bad token status ' + e.status);
    return 'openai bad token -> 401';
  }
  throw new Error('bad token accepted');
}

async function openaiUnknownModel(client) {
  try {
    await client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] });
  } catch (e) {
    check(e.status === 404, 'unknown model status ' + e.status);
    return 'openai unknown model -> 404';
  }
  throw new Error('unknown model accepted');
}

async function anthropicMessages(client) {
  const r = await client.messages.create({
    model: 'fake-chunks-5',
    max_tokens: 64,
    messages: [{ role: 'user', content: PROMPT }],
  });
  check(r.type === 'message' && r.content[0].type === 'text', 'anthropic message: ' + JSON.stringify(r));
  check(r.usage.input_tokens === WORDS, 'anthropic usage: ' + JSON.stringify(r.usage));
  return 'anthropic messages non-stream';
}

async function anthropicStream(client) {
  const stream = client.messages.stream({
    model: 'fake-chunks-5',
    max_tokens: 64,
    messages: [{ role: 'user', content: PROMPT }],
  });
  let deltas = 0;
  stream.on('text', () => deltas++);
  const final = await stream.finalMessage();
  check(deltas >= 2, 'anthropic stream deltas ' + deltas);
  check(final.usage.output_tokens > 0, 'anthropic stream usage: ' + JSON.stringify(final.usage));
  return 'anthropic messages stream (' + deltas + ' deltas)';
}

async function main() {
  const openai = new OpenAI({ apiKey: token, baseURL: base + '/v1', maxRetries: 0 });
  const anthropic = new Anthropic({ apiKey: token, baseURL: base, maxRetries: 0 });
  const steps = [
    () => openaiChat(openai),
    () => openaiStream(openai),
    () => openaiEmbeddings(openai),
    () => openaiModels(openai),
    () => openaiBadToken(),
    () => openaiUnknownModel(openai),
    () => anthropicMessages(anthropic),
    () => anthropicStream(anthropic),
  ];
  let passed = 0;
  for (const step of steps) {
    const what = await step();
    console.log('ok: ' + what);
    passed++;
  }
  console.log('sdk: ' + passed + ' passed, 0 failed');
}

main().catch((e) => {
  console.error('FAIL: ' + (e && e.stack ? e.stack : e));
  process.exit(1);
});
