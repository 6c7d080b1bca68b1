#!/usr/bin/env node
'use strict';
// fake_vendor_cluster.js: runs N copies of tests/fakes/fake_vendor.js as
// node `cluster` workers sharing one 127.0.0.1 port, so the single-threaded
// fake is not the bottleneck of scripts/bench-passthrough. The primary hands
// each new connection to the next worker (round robin); each worker keeps its
// own records, so a reader of /_fake/requests must ask once per worker
// (new connection each time) and merge. Prints the workers' one ready line:
//   fake-vendor listening on 127.0.0.1:<port> (http|https) x<N> workers
// Usage: node fake_vendor_cluster.js --workers N [fake_vendor.js options]
// SIGTERM/SIGINT stop the workers and exit.
const cluster = require('node:cluster');
const path = require('node:path');

const argv = process.argv.slice(2);
let workers = 2;
const i = argv.indexOf('--workers');
if (i >= 0) {
  workers = Number(argv[i + 1]);
  argv.splice(i, 2);
}
if (!Number.isInteger(workers) || workers < 1 || workers > 16) {
  process.stderr.write('fake_vendor_cluster: --workers must be 1..16\n');
  process.exit(2);
}

cluster.schedulingPolicy = cluster.SCHED_RR;
cluster.setupPrimary({
  exec: path.join(__dirname, '..', 'fakes', 'fake_vendor.js'),
  args: argv,
  silent: true,
});

let ready = 0;
let line = null;
let stopping = false;
for (let n = 0; n < workers; n++) {
  const w = cluster.fork();
  let buf = '';
  w.process.stdout.on('data', (d) => {
    buf += d.toString();
    const nl = buf.indexOf('\n');
    if (nl < 0 || w.readyLine) return;
    w.readyLine = buf.slice(0, nl);
    line = line || w.readyLine;
    if (++ready === workers) process.stdout.write(`${line} x${workers} workers\n`);
  });
  w.process.stderr.on('data', (d) => process.stderr.write(d));
}
cluster.on('exit', (w, code, signal) => {
  if (stopping) return;
  process.stderr.write(`fake_vendor_cluster: worker ${w.process.pid} exited (${code ?? signal})\n`);
  shutdown();
});

function shutdown() {
  if (stopping) return;
  stopping = true;
  for (const id in cluster.workers) cluster.workers[id].process.kill('SIGTERM');
  setTimeout(() => process.exit(0), 200).unref();
  const t = setInterval(() => {
    if (Object.keys(cluster.workers).length === 0) process.exit(0);
  }, 20);
  t.unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
