// The dashboard in a real browser (Debian's headless Chromium driven by playwright-core) against
// a real `auditlog serve` on the test stack's ClickHouse, with events seeded for this run only.
//
//   node dashboard.test.mjs        (tests/browser/run.sh installs what is missing, then runs this)
//
// The events go through the real pipeline by default: a fresh topic on the test broker,
// `auditlog emit --file` into it and `auditlog consume` into a fresh database, until every
// event is in ClickHouse. BROWSER_SEED=clickhouse inserts the rows straight into the events
// table instead (for working on the dashboard without the broker).
//
// Environment: TEST_CLICKHOUSE_URL (default http://127.0.0.1:18123), TEST_KAFKA_BROKERS
// (default 127.0.0.1:19092), AUDITLOG_BIN (default <repo>/target/debug/auditlog), TANSU
// (the broker's CLI, to create the topic; default `tansu` on PATH or ~/.cargo/bin/tansu),
// CHROMIUM (default /usr/bin/chromium), BROWSER_SEED (pipeline | clickhouse), KEEP_DB=1 keeps
// the database afterwards. Screenshots go to tests/browser/artifacts/. Exit code 0 only when every
// test passed; the last line is `N passed, M failed`.

import { spawn } from 'node:child_process';
import { createHash, generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const ARTIFACTS = path.join(HERE, 'artifacts');
const CLICKHOUSE = (process.env.TEST_CLICKHOUSE_URL || 'http://127.0.0.1:18123').replace(/\/$/, '');
const BIN = path.resolve(ROOT, process.env.AUDITLOG_BIN || 'target/debug/auditlog');
const BROKERS = process.env.TEST_KAFKA_BROKERS || '127.0.0.1:19092';
const SEED_VIA = process.env.BROWSER_SEED || 'pipeline';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const RUN = randomUUID().replaceAll('-', '').slice(0, 10);
const DATABASE = `browser_${RUN}`;
const WORKSPACE = `ws_browser_${RUN}`;
const OTHER_WORKSPACE = `ws_other_${RUN}`;
const ADMIN_TOKEN = `admin-${randomUUID()}`;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

// ------------------------------------------------------------------ the seeded data set

/** Event types cycled through, so each has a known count. */
const TYPES = ['key.create', 'key.update', 'role.assign', 'api.create', 'permission.attach',
  'key.revoke', 'workspace.member_add', 'ratelimit.override_set', 'key.delete', 'role.create'];
const SEEDED = 130; // inside retention: more than two pages of 50
const SPACING = 40 * MINUTE; // event i happened i*40 min + 5 min ago: 36 of them in the last 24 h
const ACTORS = [
  { type: 'user', id: 'user_ada', name: 'Ada Lovelace' },
  { type: 'root_key', id: 'rk_ci_deploy', name: 'CI deploy key' },
  { type: 'user', id: 'user_grace', name: 'Grace Hopper' },
  { type: 'system', id: 'ratelimit-sync', name: 'Rate limit sync' },
];

function makeEvents(now) {
  const events = [];
  for (let i = 0; i < SEEDED; i += 1) {
    const type = TYPES[i % TYPES.length];
    const [resource, action] = type.split('.');
    const actor = ACTORS[i % ACTORS.length];
    const failed = i % 17 === 3;
    events.push({
      event_id: uuidv7(now - i * SPACING - 5 * MINUTE, i),
      workspace_id: WORKSPACE,
      bucket: 'default',
      event: type,
      time: new Date(now - i * SPACING - 5 * MINUTE).toISOString(),
      actor,
      targets: [
        { type: resource, id: `${resource}_${1000 + i}`, name: `prod-${resource}-${i}` },
        ...(i % 3 === 0 ? [{ type: 'api', id: 'api_main', name: 'Main API' }] : []),
      ],
      description: `${actor.name} did ${action.replace('_', ' ')} on ${resource} prod-${resource}-${i}`,
      context: { remote_ip: `203.0.113.${i % 250}`, user_agent: 'Mozilla/5.0 (X11; Linux x86_64) browser-test', location: i % 2 ? 'DE' : 'US' },
      request: { name: `prod-${resource}-${i}`, marker: `request-marker-${i}`, nested: { limit: i, tags: ['a', 'b'] } },
      response: { id: `${resource}_${1000 + i}`, marker: `response-marker-${i}`, ok: !failed },
      outcome: failed ? { status: 'failure', reason: 'rate limited' } : { status: 'success' },
      correlation_id: i % 4 === 0 ? `req_${Math.floor(i / 4)}` : undefined,
      version: 1,
    });
  }
  return events;
}

/** Events that must never show: beyond the Free plan's 7 days, or in another workspace. */
function makeHiddenEvents(now) {
  const base = makeEvents(now).slice(0, 3);
  return [
    ...base.map((e, i) => ({
      ...e, event_id: uuidv7(now - 9 * DAY - i * HOUR, 1000 + i), time: new Date(now - 9 * DAY - i * HOUR).toISOString(),
      description: `ancient event beyond retention ${i}`,
    })),
    ...base.map((e, i) => ({
      ...e, event_id: uuidv7(now - i * HOUR, 2000 + i), workspace_id: OTHER_WORKSPACE,
      description: `event of another workspace ${i}`,
    })),
  ];
}

/** A UUIDv7 for a given time (the product's event ids are v7). */
function uuidv7(ms, salt) {
  const hex = Math.floor(ms).toString(16).padStart(12, '0');
  const rand = randomUUID().replaceAll('-', '');
  const variant = ((parseInt(rand[16], 16) & 0x3) | 0x8).toString(16);
  const s = `${hex}7${rand.slice(13, 16)}${variant}${rand.slice(17, 20)}${(salt >>> 0).toString(16).padStart(4, '0').slice(-4)}${rand.slice(24, 32)}`;
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20, 32)}`;
}

// ------------------------------------------------------------------ services

async function clickhouse(sql, body) {
  const url = `${CLICKHOUSE}/?query=${encodeURIComponent(sql)}`;
  const res = await fetch(url, { method: 'POST', body: body ?? '' });
  const text = await res.text();
  if (!res.ok) throw new Error(`ClickHouse ${res.status}: ${text.slice(0, 500)}`);
  return text;
}

/** Rows straight into the events table (columns of deploy/clickhouse/migrations/0001_events.sql). */
async function insertEvents(events, retentionDays) {
  const ch = (iso) => iso.replace('T', ' ').replace('Z', '');
  const rows = events.map((e, i) => JSON.stringify({
    event_id: e.event_id,
    workspace_id: e.workspace_id,
    bucket: e.bucket,
    event: e.event,
    time: ch(e.time),
    actor_type: e.actor.type,
    actor_id: e.actor.id,
    actor_name: e.actor.name,
    actor_meta: '',
    target_types: e.targets.map((t) => t.type),
    target_ids: e.targets.map((t) => t.id),
    target_names: e.targets.map((t) => t.name),
    targets: JSON.stringify(e.targets),
    description: e.description,
    remote_ip: e.context.remote_ip,
    user_agent: e.context.user_agent,
    location: e.context.location || '',
    request: JSON.stringify(e.request),
    response: JSON.stringify(e.response),
    outcome: e.outcome.status,
    failure_reason: e.outcome.reason || '',
    correlation_id: e.correlation_id || '',
    version: e.version,
    retention_days: retentionDays,
    kafka_partition: 0,
    kafka_offset: i,
  })).join('\n');
  await clickhouse(`INSERT INTO ${DATABASE}.events FORMAT JSONEachRow`, rows);
}

/** The environment for `auditlog`: no inherited AUDITLOG_* (they are config), then `env`. */
function childEnv(env) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AUDITLOG_')));
  return { ...base, ...env };
}

/** Publishes the events with `auditlog emit` and lets `auditlog consume` write them. */
async function seedThroughPipeline(events, expectedRows) {
  const topic = `browser-${RUN}`;
  const tansu = process.env.TANSU || process.env.STACK_TANSU_BIN || (await which('tansu')) || path.join(os.homedir(), '.cargo/bin/tansu');
  // The topic is left on the test broker: never `tansu topic delete` on Tansu 0.6.0, whose
  // DeleteTopics removes every topic of the cluster (its topic_delete_by.sql matches on the
  // cluster, not the topic).
  await run(tansu, ['topic', 'create', topic, '--broker', `tcp://${BROKERS}`, '--partitions', '2']);
  const env = {
    AUDITLOG_KAFKA__BROKERS: BROKERS,
    AUDITLOG_KAFKA__TOPIC: topic,
    AUDITLOG_KAFKA__DLQ_TOPIC: `${topic}-dlq`,
    AUDITLOG_CLICKHOUSE__URL: CLICKHOUSE,
    AUDITLOG_CLICKHOUSE__DATABASE: DATABASE,
    AUDITLOG_CONSUMER__GROUP_ID: `browser-${RUN}`,
    AUDITLOG_CONSUMER__METRICS_LISTEN: '',
    AUDITLOG_CONSUMER__BATCH_MAX_WAIT: '200ms',
  };
  const file = path.join(ARTIFACTS, 'seed.ndjson');
  fs.writeFileSync(file, `${events.map((e) => JSON.stringify(e)).join('\n')}\n`);
  await run(BIN, ['emit', '--file', file], env);
  const log = fs.openSync(path.join(ARTIFACTS, 'consumer.log'), 'w');
  const consumer = spawn(BIN, ['consume'], { env: childEnv(env), stdio: ['ignore', log, log], detached: true });
  children.add(consumer);
  try {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const rows = Number((await clickhouse(`SELECT count() FROM ${DATABASE}.events FINAL WHERE time >= now64(3) - INTERVAL 7 DAY`)).trim());
      if (rows >= expectedRows) return;
      if (consumer.exitCode != null) throw new Error(`auditlog consume exited ${consumer.exitCode}; see artifacts/consumer.log`);
      if (Date.now() > deadline) throw new Error(`only ${rows} of ${expectedRows} events reached ClickHouse in 120 s; see artifacts/consumer.log`);
      await sleep(250);
    }
  } finally {
    await stopChild(consumer);
  }
}

function which(name) {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', `command -v ${name}`], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.on('close', (code) => resolve(code === 0 ? out.trim() : null));
  });
}

/** Runs a command to completion (2 minutes at most); rejects with its output on failure. */
function run(cmd, args, env, timeoutMs = 120_000) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} did not finish within ${timeoutMs / 1000} s:\n${out}`));
    }, timeoutMs);
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${out}`));
    });
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const serverEnv = (port) => ({
  AUDITLOG_CLICKHOUSE__URL: CLICKHOUSE,
  AUDITLOG_CLICKHOUSE__DATABASE: DATABASE,
  AUDITLOG_API__LISTEN: `127.0.0.1:${port}`,
  AUDITLOG_API__ADMIN_TOKEN: ADMIN_TOKEN,
  RUST_LOG: process.env.RUST_LOG || 'info',
});

/** Starts `auditlog serve` in its own process group and waits for /health. */
async function startServer(port) {
  const log = fs.openSync(path.join(ARTIFACTS, 'server.log'), 'w');
  const child = spawn(BIN, ['serve'], { env: childEnv(serverEnv(port)), stdio: ['ignore', log, log], detached: true });
  children.add(child);
  let exited = null;
  child.on('exit', (code, signal) => { exited = { code, signal }; });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`auditlog serve exited early (${JSON.stringify(exited)}); see artifacts/server.log:\n${fs.readFileSync(path.join(ARTIFACTS, 'server.log'), 'utf8').slice(-2000)}`);
    try {
      const res = await fetch(`${base}/health`);
      if (res.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error('auditlog serve did not become healthy within 60 s');
    await sleep(200);
  }
  return { child, base };
}

/** Processes this run started (server, consumer): stopped at the end whatever happens. */
const children = new Set();

const running = (child) => child && child.exitCode == null && child.signalCode == null;

/** SIGTERM to the child's process group, SIGKILL if it is still there after 5 s. */
async function stopChild(child) {
  if (!running(child)) return;
  const exited = new Promise((r) => { child.once('exit', r); });
  try { process.kill(-child.pid, 'SIGTERM'); } catch { return; }
  const timer = new Promise((r) => { setTimeout(r, 5000); });
  await Promise.race([exited, timer]);
  if (running(child)) {
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
  }
}

/** For the last moments of a crashing or interrupted run: no waiting, no survivors. */
function killChildrenNow() {
  for (const child of children) {
    if (running(child)) {
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
}

async function admin(base, method, route, body) {
  const res = await fetch(`${base}${route}`, {
    method,
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

/** ClickHouse's DateTime64 text for epoch ms (UTC). */
const chTime = (ms) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');

/** Credentials given to stream destinations: the page must never show them. */
const STREAM_SECRETS = [`hec-${RUN}-0123456789`, `s3secret-${RUN}-abcdef`, `dd-${RUN}-98765`];

/**
 * Streams created through the admin API (`POST /v1/admin/streams`): three of the workspace
 * (one then paused), one deleted, one of another workspace. Returns the three listed, and the
 * webhook's signing secret (which the page must not show either).
 */
async function createStreams(base) {
  const create = (workspace, name, destination, format) => admin(base, 'POST', '/v1/admin/streams', {
    workspace_id: workspace, name, destination, format, start: 'now',
  });
  const siem = await create(WORKSPACE, 'SIEM webhook', { type: 'webhook', url: 'https://hooks.example.com/audit' }, 'ocsf');
  const splunk = await create(WORKSPACE, 'Splunk prod', { type: 'splunk_hec', url: 'https://splunk.example.com:8088', token: STREAM_SECRETS[0] }, 'json');
  const archive = await create(WORKSPACE, 'Archive', {
    type: 's3', endpoint: 'https://s3.eu-west-1.amazonaws.com', bucket: 'acme-audit', region: 'eu-west-1', prefix: 'audit/',
    access_key_id: 'AKIAEXAMPLE', secret_access_key: STREAM_SECRETS[1],
  }, 'ecs');
  await admin(base, 'POST', `/v1/admin/streams/${archive.stream_id}/pause`);
  const gone = await create(WORKSPACE, 'Deleted stream', { type: 'webhook', url: 'https://old.example.com/hook' }, 'json');
  await admin(base, 'DELETE', `/v1/admin/streams/${gone.stream_id}`);
  await create(OTHER_WORKSPACE, 'Other workspace stream', { type: 'datadog', url: 'https://http-intake.logs.datadoghq.com', api_key: STREAM_SECRETS[2] }, 'json');
  return { siem, splunk, archive, webhookSecret: siem.secret };
}

/** A `stream_status` row as a worker writes it. */
function streamStatus(streamId, now, fields) {
  return {
    stream_id: streamId,
    state: 'active',
    last_error: '',
    last_error_at: null,
    failing_since: null,
    delivered_events: 0,
    delivered_batches: 0,
    failed_attempts: 0,
    redelivered_events: 0,
    lag_events: 0,
    lag_seconds: 0,
    worker_id: `browser-${RUN}`,
    updated_at: chTime(now),
    ...fields,
  };
}

async function insertRows(table, rows) {
  await clickhouse(`INSERT INTO ${DATABASE}.${table} FORMAT JSONEachRow`, rows.map((r) => JSON.stringify(r)).join('\n'));
}

// ------------------------------------------------------------------ the workspace's log

const sha256 = (...parts) => {
  const hash = createHash('sha256');
  for (const p of parts) hash.update(p);
  return hash.digest();
};
const b64 = (buf) => Buffer.from(buf).toString('base64');

/** RFC 9162 MTH of leaf hashes. */
function merkleRoot(leaves) {
  if (leaves.length === 0) return sha256(Buffer.alloc(0));
  if (leaves.length === 1) return leaves[0];
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return sha256(Buffer.from([1]), merkleRoot(leaves.slice(0, k)), merkleRoot(leaves.slice(k)));
}

/** An Ed25519 key in Go's note formats: `alg` 0x01 (a log's note key) or 0x04 (a cosignature key). */
function noteKey(name, alg) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url');
  const id = sha256(Buffer.from(`${name}\n`), Buffer.from([alg]), pub).subarray(0, 4);
  return { name, id, privateKey, verifier: `${name}+${id.toString('hex')}+${b64(Buffer.concat([Buffer.from([alg]), pub]))}` };
}

/**
 * The workspace's log as the sequencer writes it, straight into the log tables: every seeded
 * event but the newest as a leaf (oldest first), the level-0 tile, a signed checkpoint of them
 * and a witness's cosignature, and the log's key. The page recomputes leaf hashes from the
 * leaf fields and walks proofs to the root; it does not hash events (the verifier does), so
 * `content_sha256` here is a digest of the seed.
 */
async function seedLog(events) {
  const logged = events.slice(1).reverse();
  const leaves = logged.map((e, i) => {
    const content = sha256(JSON.stringify(e)).toString('hex');
    const timeMs = Date.parse(e.time);
    const data = `{"content_sha256":"${content}","event_id":"${e.event_id}","time_ms":${timeMs},"v":1}`;
    return { ws: WORKSPACE, idx: i, id: e.event_id, t: timeMs, c: content, l: sha256(Buffer.from([0]), Buffer.from(data)) };
  });
  const root = merkleRoot(leaves.map((l) => l.l));
  const signedAt = Date.now() - MINUTE;
  const log = noteKey('audit.example.com', 0x01);
  const witness = noteKey('witness.example.org', 0x04);
  const origin = `audit.example.com/log/${WORKSPACE}`;
  const body = `${origin}\n${leaves.length}\n${b64(root)}\ntime ${signedAt}\n`;
  const logSig = `\u2014 ${log.name} ${b64(Buffer.concat([log.id, sign(null, Buffer.from(body), log.privateKey)]))}`;
  const time = Math.floor(signedAt / 1000);
  const stamp = Buffer.alloc(8);
  stamp.writeBigUInt64BE(BigInt(time));
  const cosigned = sign(null, Buffer.from(`cosignature/v1\ntime ${time}\n${body}`), witness.privateKey);
  const cosig = `\u2014 ${witness.name} ${b64(Buffer.concat([witness.id, stamp, cosigned]))}`;
  const note = `${body}\n${logSig}\n`;
  const put = (sql, columns, rows) => clickhouse(`INSERT INTO ${DATABASE}.${sql} FROM input('${columns}') FORMAT JSONEachRow`,
    rows.map((r) => JSON.stringify(r)).join('\n'));
  await put('log_leaves SELECT ws, idx, toUUID(id), fromUnixTimestamp64Milli(t), unhex(c), unhex(l), 0, idx, now64(3)',
    'ws String, idx UInt64, id String, t Int64, c String, l String', leaves.map((l) => ({ ...l, l: l.l.toString('hex') })));
  await put('log_tiles SELECT ws, 0, 0, w, unhex(h), now64(3)', 'ws String, w UInt16, h String',
    [{ ws: WORKSPACE, w: leaves.length, h: Buffer.concat(leaves.map((l) => l.l)).toString('hex') }]);
  await put('log_checkpoints SELECT ws, n, unhex(r), fromUnixTimestamp64Milli(t), k, note', 'ws String, n UInt64, r String, t Int64, k String, note String',
    [{ ws: WORKSPACE, n: leaves.length, r: root.toString('hex'), t: signedAt, k: log.name, note }]);
  await put('log_cosignatures SELECT ws, n, w, line, now64(3)', 'ws String, n UInt64, w String, line String',
    [{ ws: WORKSPACE, n: leaves.length, w: witness.name, line: cosig }]);
  await put('log_keys SELECT k, n, now64(3), now64(3)', 'k String, n String', [{ k: log.verifier, n: log.name }]);
  return { size: leaves.length, root: b64(root), note: `${note}${cosig}\n`, witness: witness.name, key: log.verifier, newest: events[0].event_id };
}

// ------------------------------------------------------------------ a tiny test runner

const results = [];
async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`ok   - ${name} (${Date.now() - t0} ms)`);
  } catch (err) {
    results.push({ name, ok: false, err });
    console.log(`FAIL - ${name} (${Date.now() - t0} ms)\n       ${String(err && err.stack ? err.stack : err).split('\n').join('\n       ')}`);
    if (currentPage) {
      await shot(currentPage, `FAILED-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`).catch(() => {});
      // Leave the page usable for the next test: no detail view or menu left open.
      for (const sel of ['#detail', '#event-panel']) {
        if (await currentPage.isVisible(sel).catch(() => false)) await currentPage.keyboard.press('Escape').catch(() => {});
      }
    }
  }
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}
/** JSON with object keys sorted: equality that ignores key order (the API may reorder keys). */
function canonical(v) {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k])]));
  return v;
}
function assertEq(actual, expected, message) {
  if (JSON.stringify(canonical(actual)) !== JSON.stringify(canonical(expected))) {
    throw new Error(`${message}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

// ------------------------------------------------------------------ page helpers

/** The contract data block of the page (crates/dashboard/src/contract.rs). */
const CONTRACT_BLOCK = /(<script type="application\/json" id="contract">)(.*?)(<\/script>)/s;

function contractOf(html) {
  const m = CONTRACT_BLOCK.exec(html);
  assert(m, 'the page has the contract data block');
  return JSON.parse(m[2]);
}

/** The event types of docs/events.md's catalog table, in order. */
function documentedCatalog() {
  const doc = fs.readFileSync(path.join(ROOT, 'docs/events.md'), 'utf8');
  const table = doc.slice(doc.indexOf('<!-- catalog:start'), doc.indexOf('<!-- catalog:end'));
  return [...table.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]);
}

let currentPage = null;

async function shot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: false });
}

/** Waits until no API request is in flight and the page has painted. */
async function idle(page) {
  await page.waitForFunction(() => document.documentElement.dataset.busy === '0', null, { timeout: 20_000 });
  await page.evaluate(() => new Promise((r) => { requestAnimationFrame(() => requestAnimationFrame(r)); }));
  await page.waitForFunction(() => document.documentElement.dataset.busy === '0', null, { timeout: 20_000 });
}

async function signIn(page, token) {
  await page.waitForSelector('#token-input', { state: 'visible' });
  await page.fill('#token-input', token);
  await page.click('#signin-submit');
}

/** The rows on screen: event id, type, time, description. */
function tableRows(page) {
  return page.$$eval('#rows tr', (trs) => trs.map((tr) => ({
    id: tr.dataset.eventId,
    event: tr.querySelector('td.c-event').textContent.trim(),
    time: tr.querySelector('td.c-time time').getAttribute('datetime'),
    title: tr.querySelector('td.c-time time').getAttribute('title'),
    description: tr.querySelector('.desc-text').textContent,
  })));
}

async function scrollToEnd(page, expectRows) {
  for (let i = 0; i < 20; i += 1) {
    await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
    await idle(page);
    const n = await page.locator('#rows tr').count();
    if (n >= expectRows && (await page.locator('#end').isVisible())) return n;
  }
  return page.locator('#rows tr').count();
}

/** RFC 4180 CSV. */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 1; } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(field); field = ''; } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i += 1;
      row.push(field); rows.push(row); row = []; field = '';
    } else field += c;
  }
  if (field || row.length) { row.push(field); rows.push(row); }
  return rows;
}

// ------------------------------------------------------------------ the tests

async function main() {
  fs.rmSync(ARTIFACTS, { recursive: true, force: true }); // no stale screenshot from an earlier run
  fs.mkdirSync(ARTIFACTS, { recursive: true });

  let server = null;
  let context = null;
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'auditlog-chromium-'));
  const cleanup = killChildrenNow;
  // Whatever ends this process (signal, crash, normal exit) ends the processes it started.
  process.on('exit', cleanup);
  process.on('SIGINT', () => { cleanup(); process.exit(130); });
  process.on('SIGTERM', () => { cleanup(); process.exit(143); });
  process.on('uncaughtException', (err) => {
    console.log(`FAIL - uncaught error\n       ${err && err.stack ? err.stack : err}`);
    console.log(`${results.filter((r) => r.ok).length} passed, ${results.filter((r) => !r.ok).length + 1} failed`);
    cleanup();
    process.exit(1);
  });

  try {
    assert(fs.existsSync(BIN), `auditlog binary not found at ${BIN} (build it or set AUDITLOG_BIN)`);
    assert(fs.existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM} (apt-get install chromium)`);

    // ---- data, plan, token, server
    await run(BIN, ['migrate'], { AUDITLOG_CLICKHOUSE__URL: CLICKHOUSE, AUDITLOG_CLICKHOUSE__DATABASE: DATABASE });
    const port = await freePort();
    server = await startServer(port);
    const { base } = server;
    const plan = await admin(base, 'PUT', `/v1/admin/workspaces/${WORKSPACE}/plan`, { plan: 'free' });
    assertEq(plan.retention_days, 7, 'the Free plan keeps 7 days');
    const now = Date.now();
    const events = makeEvents(now);
    const hidden = makeHiddenEvents(now);
    if (SEED_VIA === 'pipeline') {
      const recentHidden = hidden.filter((e) => now - Date.parse(e.time) < 6 * DAY).length;
      await seedThroughPipeline([...events, ...hidden], events.length + recentHidden);
    } else if (SEED_VIA === 'clickhouse') {
      await insertEvents([...events, ...hidden], 7);
    } else {
      throw new Error(`BROWSER_SEED=${SEED_VIA}: expected pipeline or clickhouse`);
    }
    const created = await admin(base, 'POST', '/v1/admin/tokens', { workspace_id: WORKSPACE, name: 'browser test' });
    const token = created.token;
    assert(token, 'the admin API returned a token');
    const byId = new Map(events.map((e) => [e.event_id, e]));
    const logged = await seedLog(events);
    console.log(`# server ${base}, database ${DATABASE}, workspace ${WORKSPACE}, ${events.length} events seeded (${SEED_VIA})`);

    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: { width: 1440, height: 900 },
      locale: 'en-US',
      acceptDownloads: true,
      reducedMotion: 'reduce', // the page then skips its animations: screenshots are not mid-slide
    });
    const page = context.pages()[0] || (await context.newPage());
    currentPage = page;
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    const requests = [];
    page.on('request', (r) => requests.push(r.url()));
    const consoleErrors = [];
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    const scripts = []; // every script response: the modules of the first load
    page.on('response', (r) => {
      if (r.request().resourceType() === 'script') {
        scripts.push({ url: r.url(), status: r.status(), type: r.headers()['content-type'] || '' });
      }
    });

    await test('the page and its assets are served with content types and cache headers', async () => {
      const res = await page.goto(`${base}/`);
      assertEq(res.status(), 200, 'GET / status');
      assert(res.headers()['content-type'].startsWith('text/html'), 'GET / is HTML');
      const js = await page.evaluate(() => document.querySelector('script[src]').getAttribute('src'));
      const asset = await fetch(`${base}${js}`);
      assert(asset.headers.get('content-type').startsWith('text/javascript'), 'app.js content type');
      assert(asset.headers.get('cache-control').includes('immutable'), 'a versioned asset is cached as immutable');
    });

    await test('the page loads its ES modules, each once and of one version, with no console error', async () => {
      // What the first load (the test above, on a fresh profile) fetched and logged.
      await page.waitForSelector('#token-input', { state: 'visible' });
      assertEq(consoleErrors, [], 'console errors while loading');
      assertEq(pageErrors, [], 'uncaught errors while loading');
      const entry = await page.evaluate(() => {
        const el = document.querySelector('script[src]');
        return { type: el.type, src: el.getAttribute('src') };
      });
      assertEq(entry.type, 'module', 'app.js is loaded as a module');
      const version = new URL(entry.src, base).searchParams.get('v');
      assert(version, `the entry carries the version: ${entry.src}`);
      assert(scripts.length > 1, `the entry imports other modules: ${JSON.stringify(scripts)}`);
      const paths = scripts.map((r) => new URL(r.url).pathname);
      assertEq(paths.length, new Set(paths).size, `no module is loaded twice: ${paths}`);
      for (const r of scripts) {
        const url = new URL(r.url);
        assert(url.pathname.startsWith('/assets/') && url.pathname.endsWith('.js'), `a module of the page: ${r.url}`);
        assertEq(url.searchParams.get('v'), version, `${url.pathname} is of the page's version`);
        assertEq(r.status, 200, `${url.pathname} status`);
        assert(r.type.startsWith('text/javascript'), `${url.pathname} content type: ${r.type}`);
      }
    });

    await test('a bad token is refused with an error that offers to enter another', async () => {
      await page.goto(`${base}/`);
      await signIn(page, 'not-a-real-token');
      await page.waitForSelector('#signin-error', { state: 'visible' });
      const text = await page.textContent('#signin-error');
      assert(/invalid, expired or revoked/.test(text), `error says why: ${text}`);
      assert(await page.isVisible('#token-input'), 'the token field is offered again');
      assert(await page.isHidden('#app'), 'no data is shown');
      await shot(page, '01-signin-bad-token');
    });

    await test('sign in shows the table, newest first, within retention', async () => {
      await signIn(page, token);
      await page.waitForSelector('#rows tr');
      await idle(page);
      const rows = await tableRows(page);
      assertEq(rows.length, 50, 'first page size');
      const newest = [...events].sort((a, b) => b.time.localeCompare(a.time));
      assertEq(rows.map((r) => r.id), newest.slice(0, 50).map((e) => e.event_id), 'rows are the 50 newest events, in order');
      for (let i = 1; i < rows.length; i += 1) assert(rows[i - 1].time >= rows[i].time, 'times are non-increasing');
      assert(/UTC$/.test(rows[0].title), `the UTC time is on hover (title): ${rows[0].title}`);
      const first = byId.get(rows[0].id);
      assert(rows[0].description === first.description, 'the description column shows the event description');
      const firstRow = page.locator('#rows tr').first();
      assert((await firstRow.locator('.c-actor').textContent()).includes(first.actor.id), 'actor id shown');
      assert((await firstRow.locator('.c-actor').textContent()).includes(first.actor.name), 'actor name shown');
      assertEq((await firstRow.locator('.c-action').textContent()).trim(), 'Create', 'action derived from key.create');
      assertEq((await page.textContent('#retention')).trim(), 'Retention: 7 days on Free', 'retention badge');
      assert((await page.textContent('#summary')).includes(`of ${SEEDED} events`), `summary counts every retained event: ${await page.textContent('#summary')}`);
      assert(!page.url().includes(token), 'the token is not in the URL');
      assert(!requests.some((u) => u.includes(token)), 'no request URL carries the token');
      const stored = await page.evaluate(() => ({ s: sessionStorage.getItem('auditlog.token'), l: localStorage.getItem('auditlog.token') }));
      assertEq(stored, { s: token, l: null }, 'the token is kept in session storage only');
      await shot(page, '02-table');
    });

    await test('the time-range picker offers nothing beyond the plan', async () => {
      const options = await page.$$eval('#range option', (os) => os.map((o) => ({ v: o.value, d: o.disabled })));
      const disabled = options.filter((o) => o.d).map((o) => o.v);
      assertEq(disabled, ['30d', '90d'], 'presets beyond 7 days are disabled');
      assert(options.some((o) => o.v === '7d' && !o.d), 'last 7 days is offered');
      const min = await page.getAttribute('#since', 'min');
      assert(min && Date.now() - new Date(min).getTime() <= 7 * DAY + MINUTE, `custom since is clamped: min=${min}`);
    });

    await test('scrolling loads more rows until the end of the log', async () => {
      // Hold the next page back a moment so the loading state can be seen.
      let release;
      const held = new Promise((r) => { release = r; });
      await page.route('**/v1/events?*', async (route) => { await held; await route.continue(); }, { times: 1 });
      await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
      await page.waitForSelector('#loading', { state: 'visible' });
      assert((await page.textContent('#loading')).includes('Loading'), 'a loading state shows while the next page loads');
      await shot(page, '03a-loading-more');
      release();
      await idle(page);
      assert(await page.isHidden('#loading'), 'the loading state goes away');
      assert((await page.locator('#rows tr').count()) > 50, 'the second page was appended');
      const n = await scrollToEnd(page, SEEDED);
      assertEq(n, SEEDED, 'every retained event is listed after scrolling');
      const rows = await tableRows(page);
      assertEq(new Set(rows.map((r) => r.id)).size, SEEDED, 'no row is listed twice');
      assert(rows.every((r) => byId.has(r.id)), 'only this workspace\'s retained events are listed');
      assert((await page.textContent('#end')).includes(`${SEEDED} events`), 'the end of the log is marked');
      await shot(page, '03-scrolled-to-end');
    });

    await test('the event-type filter shows only that type, with its count', async () => {
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.click('#event-btn');
      await page.waitForSelector('#event-panel', { state: 'visible' });
      const keyCreate = page.locator('label.group-item', { has: page.locator('input[data-event="key.create"]') });
      const expected = events.filter((e) => e.event === 'key.create').length;
      assertEq((await keyCreate.locator('.count').textContent()).trim(), String(expected), 'facet count for key.create');
      await keyCreate.locator('input').check();
      await idle(page);
      await shot(page, '04-event-type-filter');
      await page.keyboard.press('Escape');
      const rows = await tableRows(page);
      assertEq(rows.length, expected, 'rows after filtering');
      assert(rows.every((r) => r.event === 'key.create'), 'every row has the filtered event type');
      assert(new URL(page.url()).searchParams.get('event') === 'key.create', `the URL reflects the filter: ${page.url()}`);
    });

    await test('the event-type picker lists the catalog the server sends, types no event has used included', async () => {
      // The page's catalog is the one the server embeds, which is the product's (docs/events.md
      // is generated from it and checked by crates/event/tests/docs.rs).
      const served = contractOf(await (await fetch(`${base}/`)).text());
      assertEq(served.catalog, documentedCatalog(), 'the served catalog is the documented one');
      // A tab whose page gets one more type from the server: only the server can make it list.
      const probe = 'probe.from_server';
      const other = await context.newPage();
      try {
        await other.route(`${base}/`, async (route) => {
          const response = await route.fetch();
          const html = await response.text();
          const contract = contractOf(html);
          contract.catalog.push(probe);
          await route.fulfill({ response, body: html.replace(CONTRACT_BLOCK, (_, open, _json, close) => `${open}${JSON.stringify(contract)}${close}`) });
        });
        await other.goto(`${base}/`);
        await signIn(other, token);
        await other.waitForSelector('#rows tr');
        await idle(other);
        await other.click('#event-btn');
        await other.waitForSelector('#event-panel', { state: 'visible' });
        const listed = await other.$$eval('#event-groups label.group-item input', (is) => is.map((i) => i.dataset.event));
        const seeded = new Set(events.map((e) => e.event));
        for (const t of [...served.catalog, probe]) assert(listed.includes(t), `${t} is listed`);
        assertEq(listed.filter((t) => !served.catalog.includes(t)), [probe], 'nothing but the catalog (all seeded types are in it)');
        const unused = served.catalog.filter((t) => !seeded.has(t));
        assert(unused.length > 0, 'some catalog types have no event');
        for (const t of [...unused, probe]) {
          const item = other.locator('label.group-item', { has: other.locator(`input[data-event="${t}"]`) });
          assertEq((await item.locator('.count').textContent()).trim(), '0', `${t} lists with no event`);
        }
        const groups = await other.$$eval('#event-groups .group-head', (hs) => hs.map((g) => ({
          name: g.querySelector('.group-name').textContent, wildcard: g.querySelector('code').textContent,
        })));
        const resources = [...new Set([...served.catalog, probe].map((t) => t.split('.')[0]))];
        assertEq(groups.map((g) => g.wildcard), resources.map((r) => `${r}.*`), 'groups in catalog order');
        assertEq(groups[groups.length - 1].name, 'Probe', 'a resource with no label of its own still shows');
        await shot(other, '04b-catalog-from-server');
      } finally {
        await other.close();
      }
    });

    await test('a resource group filter (key.*) with scrolling past the first page', async () => {
      await page.click('#event-btn');
      await page.locator('input[data-event="key.*"]').check();
      await page.keyboard.press('Escape');
      await idle(page);
      const expected = events.filter((e) => e.event.startsWith('key.')).length;
      assert(expected > 50, 'the seeded key.* events span more than a page');
      const first = (await tableRows(page)).length;
      assertEq(first, 50, 'first page of key.*');
      const n = await scrollToEnd(page, expected);
      assertEq(n, expected, 'key.* rows after scrolling');
      assert((await tableRows(page)).every((r) => r.event.startsWith('key.')), 'every row is a key event');
      // Back to key.create only for the next tests.
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.click('#event-btn');
      await page.locator('input[data-event="key.*"]').uncheck();
      await page.locator('input[data-event="key.create"]').check();
      await page.keyboard.press('Escape');
      await idle(page);
    });

    await test('a time range narrows the rows to it', async () => {
      await page.selectOption('#range', '24h');
      await idle(page);
      const rows = await tableRows(page);
      const expected = events.filter((e) => e.event === 'key.create' && now - Date.parse(e.time) < DAY);
      assertEq(rows.map((r) => r.id), expected.map((e) => e.event_id), 'key.create events of the last 24 hours');
      assert(rows.length > 0, 'the range is not empty');
      assert(rows.every((r) => Date.now() - Date.parse(r.time) <= DAY && r.event === 'key.create'), 'every row is in range and of the type');
      assertEq(new URL(page.url()).searchParams.get('range'), '24h', 'the URL reflects the range');
      await shot(page, '05-filtered-24h');
    });

    await test('reloading a filtered URL gives the same view', async () => {
      const before = (await tableRows(page)).map((r) => r.id);
      const url = page.url();
      await page.reload();
      await page.waitForSelector('#rows tr');
      await idle(page);
      assertEq(page.url(), url, 'the URL survives the reload');
      assertEq((await tableRows(page)).map((r) => r.id), before, 'same rows after reload');
      assertEq(await page.inputValue('#range'), '24h', 'range control restored');
      assertEq((await page.textContent('#event-badge')).trim(), 'key.create', 'event filter restored');

      // Shared with someone who has to sign in first (a new tab has no session token).
      const other = await context.newPage();
      await other.goto(url);
      await signIn(other, token);
      await other.waitForSelector('#rows tr');
      await idle(other);
      assertEq((await tableRows(other)).map((r) => r.id), before, 'same rows in a new tab after signing in');
      assertEq(other.url(), url, 'signing in keeps the shared filters');
      await other.close();
    });

    await test('opening an entry shows every field and its payloads; Escape closes it', async () => {
      const rows = await tableRows(page);
      const ev = byId.get(rows[0].id);
      await page.locator('#rows tr').first().click();
      await page.waitForSelector('[data-json="request"]');
      await idle(page);
      const body = await page.textContent('#detail-body');
      for (const needle of [ev.event_id, ev.workspace_id, ev.actor.id, ev.actor.name, ev.context.remote_ip,
        ev.targets[0].id, ev.targets[0].name, `request-marker-${events.indexOf(ev)}`, `response-marker-${events.indexOf(ev)}`]) {
        assert(body.includes(needle), `detail shows ${needle}`);
      }
      const request = await page.innerText('[data-json-text="request"]');
      assertEq(JSON.parse(request), ev.request, 'the request payload is the seeded one, pretty-printed');
      assertEq(JSON.parse(await page.innerText('[data-json-text="response"]')), ev.response, 'the response payload');
      assert(new URL(page.url()).searchParams.get('open') === ev.event_id, 'the open entry is in the URL');
      await shot(page, '06-detail');
      await page.locator('[data-json="request"]').scrollIntoViewIfNeeded();
      await shot(page, '06b-detail-payloads');
      // Collapse a payload.
      await page.click('[data-json="request"] > summary .json-title');
      assert(!(await page.locator('[data-json="request"]').evaluate((d) => d.open)), 'the request block collapses');
      await page.keyboard.press('Escape');
      await page.waitForSelector('#detail', { state: 'hidden' });
      assert(!new URL(page.url()).searchParams.has('open'), 'closing removes it from the URL');
    });

    await test('the detail panel checks the event\'s inclusion in the latest checkpoint in the browser', async () => {
      const rows = await tableRows(page);
      const newest = rows.findIndex((r) => r.id === logged.newest);
      const older = rows.findIndex((r) => r.id !== logged.newest);
      assert(newest >= 0 && older >= 0, 'the newest event and an older one are listed');
      await page.locator('#rows tr').nth(older).click();
      await page.waitForSelector('#detail-integrity [data-integrity]');
      await idle(page);
      assertEq(await page.getAttribute('#detail-integrity [data-integrity]', 'data-integrity'), 'verified', 'an event of the log');
      assertEq(await page.textContent('#detail-integrity'), `Included in checkpoint ${logged.size} (verified)`, 'the integrity line');
      await shot(page, '06c-detail-integrity');
      // A proof altered on the way is caught by the page's own check.
      await page.route('**/v1/log/proof/inclusion**', async (route) => {
        const res = await route.fetch();
        const proof = await res.json();
        proof.hashes[0] = b64(Buffer.alloc(32, 7));
        await route.fulfill({ response: res, json: proof });
      });
      try {
        await page.keyboard.press('Escape');
        await page.waitForSelector('#detail', { state: 'hidden' });
        await page.locator('#rows tr').nth(older).click();
        await page.waitForSelector('#detail-integrity [data-integrity]');
        await idle(page);
        assertEq(await page.getAttribute('#detail-integrity [data-integrity]', 'data-integrity'), 'failed', 'a forged proof');
        assert(/does not lead to the checkpoint's root/.test(await page.textContent('#detail-integrity')), 'the failure says why');
      } finally {
        await page.unroute('**/v1/log/proof/inclusion**');
      }
      // The newest event is not in the log yet.
      await page.keyboard.press('Escape');
      await page.waitForSelector('#detail', { state: 'hidden' });
      await page.locator('#rows tr').nth(newest).click();
      await page.waitForSelector('#detail-integrity [data-integrity]');
      await idle(page);
      assertEq(await page.textContent('#detail-integrity'), 'Not yet in a checkpoint', 'an event not sequenced yet');
      await page.keyboard.press('Escape');
      await page.waitForSelector('#detail', { state: 'hidden' });
    });

    await test('keyboard: j/k move between rows, Enter opens, Escape closes', async () => {
      await page.locator('#rows tr').first().focus();
      await page.keyboard.press('j');
      const rows = await tableRows(page);
      const focused = await page.evaluate(() => document.activeElement.dataset.eventId);
      assertEq(focused, rows[1].id, 'j focuses the next row');
      await page.keyboard.press('k');
      await page.keyboard.press('ArrowDown');
      await page.keyboard.press('Enter');
      await page.waitForSelector('#detail', { state: 'visible' });
      await idle(page);
      assert((await page.textContent('#detail-body')).includes(rows[1].id), 'Enter opened the focused row');
      await page.keyboard.press('Escape');
      await page.waitForSelector('#detail', { state: 'hidden' });
      assertEq(await page.evaluate(() => document.activeElement.dataset.eventId), rows[1].id, 'focus returns to the row');
    });

    await test('export downloads the current filtered view as CSV', async () => {
      const shown = (await tableRows(page)).map((r) => r.id);
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
      assert(/\.csv$/.test(download.suggestedFilename()), `CSV file name: ${download.suggestedFilename()}`);
      const file = path.join(ARTIFACTS, 'export.csv');
      await download.saveAs(file);
      const csv = parseCsv(fs.readFileSync(file, 'utf8')).filter((r) => r.length > 1);
      const [header, ...data] = csv;
      for (const col of ['event_id', 'time', 'event', 'actor_id', 'description', 'request', 'response']) {
        assert(header.includes(col), `CSV has column ${col}`);
      }
      const col = (name) => header.indexOf(name);
      assertEq(data.map((r) => r[col('event_id')]), shown, 'the CSV rows are the rows of the view, in order');
      assert(data.every((r) => r[col('event')] === 'key.create'), 'every CSV row has the filtered type');
      const ev = byId.get(data[0][col('event_id')]);
      assertEq(JSON.parse(data[0][col('request')]), ev.request, 'the CSV carries the request payload');
      assert(!requests.some((u) => u.includes(token)), 'the export URL does not carry the token');
    });

    await test('a narrow screen shows the entries as cards without horizontal scrolling', async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      await page.evaluate(() => window.scrollTo(0, 0));
      await idle(page);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert(overflow <= 0, `no horizontal overflow (${overflow}px)`);
      assert(await page.locator('#rows tr').first().isVisible(), 'rows are visible');
      await shot(page, '07-narrow');
      await page.locator('#rows tr').first().click();
      await page.waitForSelector('[data-json="request"]');
      await idle(page);
      await shot(page, '08-narrow-detail');
      await page.keyboard.press('Escape');
      await page.setViewportSize({ width: 1440, height: 900 });
    });

    // Phones: a tab of its own (signed in afresh), so the main page's filters stay as they are.
    for (const width of [390, 360]) {
      await test(`a ${width} px phone: the custom range fits without sideways scrolling`, async () => {
        const phone = await context.newPage();
        try {
          await phone.setViewportSize({ width, height: 800 });
          await phone.goto(`${base}/`);
          await signIn(phone, token);
          await phone.waitForSelector('#rows tr');
          await idle(phone);
          await phone.selectOption('#range', 'custom');
          await idle(phone);
          await phone.waitForSelector('#custom-range', { state: 'visible' });
          const m = await phone.evaluate(() => {
            const el = document.documentElement;
            const box = (id) => document.getElementById(id).getBoundingClientRect();
            return {
              scrollWidth: el.scrollWidth, clientWidth: el.clientWidth,
              since: box('since').right, until: box('until').right,
              sinceWidth: box('since').width, untilWidth: box('until').width,
            };
          });
          assert(m.scrollWidth <= m.clientWidth, `no sideways scrolling at ${width} px: scrollWidth ${m.scrollWidth} > clientWidth ${m.clientWidth}`);
          assert(m.since <= m.clientWidth && m.until <= m.clientWidth, `both custom-range fields end inside the screen: ${JSON.stringify(m)}`);
          assert(m.sinceWidth >= 150 && m.untilWidth >= 150, `the fields are wide enough to use: ${JSON.stringify(m)}`);
          assert(await phone.isVisible('#since') && await phone.isVisible('#until'), 'both fields are visible');
          await shot(phone, `12-phone-${width}-custom-range`);
        } finally {
          await phone.close();
        }
      });

      await test(`a ${width} px phone: "Copy JSON" is offered in the detail and copies the event`, async () => {
        const phone = await context.newPage();
        try {
          await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
          await phone.setViewportSize({ width, height: 800 });
          await phone.goto(`${base}/`);
          await signIn(phone, token);
          await phone.waitForSelector('#rows tr');
          await idle(phone);
          const id = await phone.locator('#rows tr').first().getAttribute('data-event-id');
          await phone.locator('#rows tr').first().click();
          await phone.waitForSelector('[data-json="request"]');
          await idle(phone);
          assert(await phone.isVisible('#detail-copy'), 'the Copy JSON button is visible');
          const b = await phone.locator('#detail-copy').boundingBox();
          assert(b && b.x >= 0 && b.x + b.width <= width, `the button is inside the screen: ${JSON.stringify(b)}`);
          const overflow = await phone.evaluate(() => document.querySelector('#detail').scrollWidth - document.querySelector('#detail').clientWidth);
          assert(overflow <= 0, `the detail panel does not scroll sideways (${overflow}px)`);
          await shot(phone, `13-phone-${width}-detail`);
          await phone.click('#detail-copy');
          await phone.waitForSelector('#toast', { state: 'visible' });
          assertEq((await phone.textContent('#toast')).trim(), 'Event JSON copied', 'the copy is confirmed');
          const copied = JSON.parse(await phone.evaluate(() => navigator.clipboard.readText()));
          assertEq(copied.event_id, id, 'the clipboard holds the open event');
          assertEq(copied.request, byId.get(id).request, 'with its payloads');
        } finally {
          await context.clearPermissions();
          await phone.close();
        }
      });
    }

    await test('an event that fails to load shows the error and offers nothing to copy', async () => {
      const rows = await tableRows(page);
      assert(rows.length >= 2, 'two rows to open');
      // The first opens fine: Copy JSON is there.
      await page.locator('#rows tr').first().click();
      await page.waitForSelector('[data-json="request"]');
      await idle(page);
      assert(await page.isVisible('#detail-copy'), 'Copy JSON for a loaded event');
      // The next one fails (a server error), reached with j from the open panel.
      const failing = rows[1].id;
      await page.route(`**/v1/events/${failing}`, (route) => route.fulfill({
        status: 500, contentType: 'application/json',
        body: JSON.stringify({ error: { code: 'internal', message: 'ClickHouse is unreachable (browser test)' } }),
      }));
      try {
        await page.locator('#rows tr').first().focus();
        await page.keyboard.press('j');
        await page.waitForFunction(() => document.getElementById('detail-title').textContent === 'Could not load this event');
        await idle(page);
        assert((await page.textContent('#detail-body')).includes('ClickHouse is unreachable (browser test)'), 'the error is shown');
        assert(await page.isHidden('#detail-copy'), 'no Copy JSON for an event that did not load');
        assert(await page.locator('#detail-copy').isDisabled(), 'and the button is disabled');
        await shot(page, '14-detail-load-failed');
      } finally {
        await page.unroute(`**/v1/events/${failing}`);
      }
      // Answers that are not a usable event: `null`, and an event whose time cannot be shown.
      // The panel says it could not load the event; there is nothing to copy.
      for (const [what, body] of [['null', 'null'], ['an event with a broken time', JSON.stringify({ ...byId.get(failing), time: 'not a time' })]]) {
        await page.route(`**/v1/events/${failing}`, (route) => route.fulfill({ status: 200, contentType: 'application/json', body }));
        try {
          await page.click('#detail-body button:has-text("Try again")');
          await page.waitForFunction(() => document.getElementById('detail-title').textContent === 'Could not load this event', null, { timeout: 5000 });
          await idle(page);
          assert(await page.isHidden('#detail-copy'), `no Copy JSON when the server answers ${what}`);
          assert(await page.isVisible('#detail-body button:has-text("Try again")'), `a way to retry after ${what}`);
        } finally {
          await page.unroute(`**/v1/events/${failing}`);
        }
      }
      // Try again loads it (the failure is gone) and offers the copy again.
      await page.click('#detail-body button:has-text("Try again")');
      await page.waitForSelector('[data-json="request"]');
      await idle(page);
      assert(await page.isVisible('#detail-copy'), 'Copy JSON once the event loaded');
      await page.keyboard.press('Escape');
      await page.waitForSelector('#detail', { state: 'hidden' });

      // An id that is not in the workspace (a shared link to it, say): not found, nothing to copy.
      const other = await context.newPage();
      try {
        await other.goto(`${base}/?open=${uuidv7(Date.now(), 4242)}`);
        await signIn(other, token);
        await other.waitForFunction(() => document.getElementById('detail-title').textContent === 'Event not found');
        await idle(other);
        assert(await other.isHidden('#detail-copy'), 'no Copy JSON for an event that does not exist');
      } finally {
        await other.close();
      }
    });

    await test('a new workspace with no events shows a clear empty state (no "null")', async () => {
      const emptyWs = `ws_empty_${RUN}`;
      const fresh = await admin(base, 'POST', '/v1/admin/tokens', { workspace_id: emptyWs, name: 'browser test, empty workspace' });
      const other = await context.newPage();
      try {
        await other.goto(`${base}/`);
        await signIn(other, fresh.token);
        await other.waitForSelector('#state.state-empty', { state: 'visible' });
        await idle(other);
        const text = (await other.innerText('#state')).trim();
        assert(text.includes('No audit events yet'), `the empty state says so: ${text}`);
        assert(text.includes('Retention: 7 days on Free'), `and what the plan keeps: ${text}`);
        assert(!/\bnull\b|undefined/.test(text), `no "null" or "undefined" in the empty state: ${JSON.stringify(text)}`);
        assert(!/\bnull\b|undefined/.test(await other.innerText('body')), 'nor anywhere on the page');
        assertEq(await other.locator('#state button').count(), 0, 'no "Clear filters" button without filters');
        await shot(other, '15-new-workspace-empty');
      } finally {
        await other.close();
      }
    });

    await test('an empty result shows the empty state', async () => {
      await page.fill('#q', 'no description contains this string');
      await page.waitForFunction(() => new URL(window.location.href).searchParams.has('q'));
      await idle(page);
      await page.waitForSelector('#state.state-empty', { state: 'visible' });
      assertEq(await page.locator('#rows tr').count(), 0, 'no rows');
      assert((await page.textContent('#state')).includes('No events match'), 'the empty state explains');
      await shot(page, '09-empty');
      await page.click('#state button');
      await idle(page);
      assertEq(await page.locator('#rows tr').count(), 50, 'clearing the filters shows the log again');
    });

    await test('the actor filter and a custom range clamped to retention', async () => {
      await page.selectOption('#actor-type', 'root_key');
      await idle(page);
      await page.fill('#actor-id', 'rk_ci_deploy');
      await page.press('#actor-id', 'Enter'); // commits the field (change event)
      await page.locator('#actor-id').blur();
      await idle(page);
      const expected = events.filter((e) => e.actor.id === 'rk_ci_deploy');
      const n = await scrollToEnd(page, expected.length);
      assertEq(n, expected.length, 'rows of that actor');
      const actors = await page.$$eval('#rows td.c-actor', (tds) => tds.map((td) => td.textContent));
      assert(actors.every((t) => t.includes('rk_ci_deploy') && t.includes('CI deploy key')), 'every row is by that root key');
      const sp = new URL(page.url()).searchParams;
      assertEq([sp.get('actor_type'), sp.get('actor_id')], ['root_key', 'rk_ci_deploy'], 'the URL reflects the actor');

      await page.evaluate(() => window.scrollTo(0, 0));
      await page.selectOption('#range', 'custom');
      await idle(page);
      await page.fill('#since', '2020-01-01T00:00'); // far beyond the 7 days the plan keeps
      await page.locator('#since').blur();
      await idle(page);
      const since = Date.parse(new URL(page.url()).searchParams.get('since'));
      assert(Date.now() - since <= 7 * DAY + MINUTE, `since was moved to the retention limit: ${new Date(since).toISOString()}`);
      assert(Date.now() - since > 7 * DAY - 5 * MINUTE, 'and not further');
      assertEq(await page.locator('#rows tr').count(), expected.length, 'every retained row of that actor');
      await shot(page, '11-actor-custom-range');
      await page.click('#chips button:has-text("Clear all filters")');
      await idle(page);
    });

    await test('the Streams view lists the workspace\'s destinations with their state, lag and last error, and refreshes', async () => {
      const t0 = Date.now();
      const { siem, splunk, archive, webhookSecret } = await createStreams(base);
      assert(webhookSecret && webhookSecret.startsWith('whsec_'), 'the webhook got a signing secret');
      // No stream worker runs in this suite: status rows stand for what one would report.
      await insertRows('stream_status', [
        streamStatus(siem.stream_id, t0, {
          state: 'failing', last_error: 'HTTP 503 Service Unavailable from hooks.example.com', last_error_at: chTime(t0 - 2 * MINUTE),
          failing_since: chTime(t0 - 5 * MINUTE), delivered_events: 1200, delivered_batches: 12, failed_attempts: 7,
          redelivered_events: 3, lag_events: 42, lag_seconds: 12.5,
        }),
        streamStatus(splunk.stream_id, t0, { delivered_events: 5000, delivered_batches: 50 }),
      ]);
      await page.click('#nav-streams');
      await page.waitForSelector('#streams-view', { state: 'visible' });
      await idle(page);
      assert(await page.isHidden('#events-view'), 'the events table is hidden');
      assert(await page.isHidden('#filters'), 'the event filters are hidden');
      assertEq(new URL(page.url()).hash, '#streams', 'the view is in the URL');
      const rows = () => page.$$eval('#stream-rows tr', (trs) => trs.map((tr) => ({
        id: tr.dataset.streamId,
        state: tr.dataset.state,
        badge: tr.querySelector('.stream-state').textContent,
        text: tr.textContent,
      })));
      let shown = await rows();
      assertEq(shown.map((r) => r.id).sort(), [siem, splunk, archive].map((s) => s.stream_id).sort(),
        'the workspace\'s streams, not deleted ones nor another workspace\'s');
      const by = Object.fromEntries(shown.map((r) => [r.id, r]));
      assertEq([by[siem.stream_id].state, by[splunk.stream_id].state, by[archive.stream_id].state], ['failing', 'active', 'paused'], 'states');
      assertEq(by[siem.stream_id].badge, 'Failing', 'the failing badge');
      for (const want of ['SIEM webhook', 'Webhook', 'hooks.example.com', 'OCSF', '42 events', 'oldest 12.5 s', '1,200', '3 redelivered', 'HTTP 503 Service Unavailable', 'minutes ago']) {
        assert(by[siem.stream_id].text.includes(want), `the failing stream shows ${want}: ${by[siem.stream_id].text}`);
      }
      assert(by[splunk.stream_id].text.includes('caught up') && by[splunk.stream_id].text.includes('5,000'), `the healthy stream: ${by[splunk.stream_id].text}`);
      assert(by[archive.stream_id].text.includes('acme-audit/audit/') && by[archive.stream_id].text.includes('ECS'), `the paused stream: ${by[archive.stream_id].text}`);
      const tones = await page.$$eval('#stream-rows .stream-state', (els) => els.map((e) => getComputedStyle(e).color));
      assertEq(new Set(tones).size, 3, 'three states, three badge colours');
      const pageText = await page.evaluate(() => document.body.innerText);
      for (const secret of [...STREAM_SECRETS, webhookSecret]) assert(!pageText.includes(secret), 'no credential on the page');
      assert(/3 streams · 1 failing/.test(await page.textContent('#streams-summary')), 'the summary counts streams and failures');
      await shot(page, '12-streams');

      // A new report from the worker shows without a click (the view refreshes every 10 s).
      await insertRows('stream_status', [streamStatus(splunk.stream_id, Date.now(), {
        state: 'failing', last_error: 'connection refused', last_error_at: chTime(Date.now()), failed_attempts: 1, delivered_events: 5000, lag_events: 9, lag_seconds: 3,
      })]);
      await page.waitForFunction((id) => {
        const tr = document.querySelector(`#stream-rows tr[data-stream-id="${id}"]`);
        return tr && tr.dataset.state === 'failing' && tr.textContent.includes('connection refused');
      }, splunk.stream_id, { timeout: 15_000 });

      // A phone: the rows become cards, nothing scrolls sideways.
      await page.setViewportSize({ width: 390, height: 844 });
      await idle(page);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert(overflow <= 0, `no sideways scrolling at 390 px (${overflow}px)`);
      await shot(page, '12b-streams-phone');
      await page.setViewportSize({ width: 1440, height: 900 });

      // The view is bookmarkable: a reload opens it again.
      await page.reload();
      await page.waitForSelector('#streams-view', { state: 'visible' });
      await idle(page);
      shown = await rows();
      assertEq(shown.length, 3, 'the streams after a reload');
      // Back to the events.
      await page.click('#nav-events');
      await page.waitForSelector('#events-view', { state: 'visible' });
      await idle(page);
      assert(await page.isHidden('#streams-view'), 'the streams view is hidden again');
      assert((await page.locator('#rows tr').count()) > 0, 'the events are listed');
      assertEq(new URL(page.url()).hash, '', 'no view in the URL');
    });

    await test('the Log view shows the latest checkpoint, its witness cosignatures and the log keys', async () => {
      await page.click('#nav-log');
      await page.waitForSelector('#log-view', { state: 'visible' });
      await page.waitForSelector('#log-checkpoint');
      await idle(page);
      assertEq(new URL(page.url()).hash, '#log', 'the view is in the URL');
      assert(await page.isHidden('#events-view') && await page.isHidden('#streams-view') && await page.isHidden('#filters'), 'only the log is shown');
      assertEq(await page.textContent('#log-size'), String(logged.size), 'the tree size');
      assertEq(await page.textContent('#log-root'), logged.root, 'the root hash');
      assertEq(await page.textContent('#log-note'), logged.note, 'the signed note with the cosignature after the log\'s signature');
      const checkpoint = await page.textContent('#log-checkpoint');
      assert(checkpoint.includes(`audit.example.com/log/${WORKSPACE}`), 'the origin');
      const witnesses = await page.textContent('#log-witnesses');
      assert(witnesses.includes('Witness cosignatures (1)') && witnesses.includes(logged.witness), `the witness: ${witnesses}`);
      assert((await page.textContent('#log-keys')).includes(logged.key), 'the log key');
      await shot(page, '15-log');
      await page.reload();
      await page.waitForSelector('#log-checkpoint');
      await idle(page);
      assert(await page.isVisible('#log-view'), 'the Log view after a reload');
      await page.click('#nav-events');
      await page.waitForSelector('#events-view', { state: 'visible' });
      await idle(page);
      assert(await page.isHidden('#log-view'), 'the log view is hidden again');
      assertEq(new URL(page.url()).hash, '', 'no view in the URL');
    });

    await test('a token revoked mid-session sends the user back to sign in with an explanation', async () => {
      await admin(base, 'DELETE', `/v1/admin/tokens/${created.token_id}`);
      // The server may cache token checks briefly: refresh until the 401 arrives (30 s at most).
      for (let i = 0; i < 60 && (await page.isHidden('#signin-error')); i += 1) {
        await page.click('#refresh');
        await idle(page);
        if (await page.isHidden('#signin-error')) await sleep(500);
      }
      await page.waitForSelector('#signin-error', { state: 'visible', timeout: 1000 });
      assert(/invalid, expired or revoked/.test(await page.textContent('#signin-error')), 'the 401 is explained');
      assertEq(await page.evaluate(() => sessionStorage.getItem('auditlog.token')), null, 'the rejected token is forgotten');
      await shot(page, '10-token-revoked');
    });

    await test('no script errors on the page', async () => {
      assertEq(pageErrors, [], 'uncaught page errors');
    });
  } catch (err) {
    results.push({ name: 'setup', ok: false, err });
    console.log(`FAIL - setup\n       ${String(err && err.stack ? err.stack : err).split('\n').join('\n       ')}`);
  } finally {
    if (context) await context.close().catch(() => {});
    await Promise.all([...children].map(stopChild));
    fs.rmSync(userDataDir, { recursive: true, force: true });
    if (!process.env.KEEP_DB) await clickhouse(`DROP DATABASE IF EXISTS ${DATABASE}`).catch(() => {});
  }

  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  console.log(`# screenshots and logs in ${path.relative(process.cwd(), ARTIFACTS) || ARTIFACTS}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
}

await main();
