// Publishing audit events over HTTP from TypeScript/JavaScript (Node 20+, built-in fetch; no
// dependencies). Run: AUDITLOG_URL=http://127.0.0.1:8080 AUDITLOG_TOKEN=alt_... node ingest.mjs
//
// Each event carries its own event_id (a UUIDv7) and time, so sending the same batch again after a
// timeout or a 429/503 never stores an event twice: the consumer keeps one row per event_id.
// Prints the per-line result as JSON on stdout; exits 1 unless every event was accepted.

/** A UUIDv7 (time-ordered; the id the API requires when a client sets one). */
function uuidv7() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  const ms = BigInt(Date.now());
  for (let i = 0; i < 6; i++) b[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const url = process.env.AUDITLOG_URL ?? "http://127.0.0.1:8080";
const token = process.env.AUDITLOG_TOKEN;
const workspace = process.env.AUDITLOG_WORKSPACE ?? "demo";
if (!token) {
  console.error("set AUDITLOG_TOKEN to an ingest token (auditlog token create WS --ingest)");
  process.exit(2);
}

/** @typedef {{line: number, event_id: string}} Accepted */
/** @typedef {{line: number, field: string | null, code: string, message: string}} Rejected */

const events = [1, 2].map((n) => ({
  event_id: uuidv7(),
  time: new Date().toISOString(),
  workspace_id: workspace,
  event: "key.create",
  actor: { type: "user", id: "user_ts" },
  targets: [{ type: "key", id: `key_ts_${n}` }],
  description: `created key ${n} from TypeScript`,
}));
const body = events.map((e) => JSON.stringify(e)).join("\n") + "\n";

async function send(attempt = 1) {
  const res = await fetch(`${url}/v1/ingest`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/x-ndjson" },
    body,
  });
  // 429 (buffer full) and 503 (broker not acknowledging): wait Retry-After seconds and send
  // the same lines again (same event_ids, so nothing is duplicated).
  if ((res.status === 429 || res.status === 503) && attempt < 5) {
    const wait = Number(res.headers.get("retry-after") ?? "1");
    await new Promise((r) => setTimeout(r, wait * 1000));
    return send(attempt + 1);
  }
  return { status: res.status, result: await res.json() };
}

const { status, result } = await send();
for (const r of /** @type {Rejected[]} */ (result.rejected ?? [])) {
  console.error(`line ${r.line}: ${r.message} (${r.code})`);
}
console.log(JSON.stringify({ status, ...result }));
process.exit(status === 200 && result.accepted.length === events.length ? 0 : 1);
