// Integrity, checked in the browser: an event's inclusion in the workspace's latest signed
// checkpoint (docs/integrity.md). The page fetches the checkpoint and the event's inclusion
// proof in that checkpoint's tree size, recomputes the leaf hash from the leaf's fields with
// SubtleCrypto SHA-256, walks the proof (RFC 9162 2.1.3.2) and compares the result with the
// checkpoint's root. The checkpoint's signatures are not checked here (`auditlog verify` does,
// against keys pinned out of band): the line says the proof matches the root the server signed.

import { h } from './helpers.js?v=__ASSET_VERSION__';
import { api } from './api.js?v=__ASSET_VERSION__';

const b64decode = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const hexOf = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

async function sha256(...parts) {
  const len = parts.reduce((n, p) => n + p.length, 0);
  const buf = new Uint8Array(len);
  let at = 0;
  for (const p of parts) { buf.set(p, at); at += p.length; }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
}

const LEAF = Uint8Array.of(0);
const NODE = Uint8Array.of(1);

/**
 * The leaf hash of a leaf body: SHA-256(0x00 || leaf data), the leaf data being the RFC 8785
 * (JCS) text of {content_sha256, event_id, time_ms, v: 1}: keys sorted, no spaces, and for
 * these strings and integers JCS is what JSON.stringify writes.
 */
export async function leafHash(leaf) {
  const data = `{"content_sha256":${JSON.stringify(leaf.content_sha256)},"event_id":${JSON.stringify(leaf.event_id)},"time_ms":${JSON.stringify(leaf.time_ms)},"v":1}`;
  return sha256(LEAF, new TextEncoder().encode(data));
}

/** RFC 9162 2.1.3.2: the root `proof` leads to from `leaf` at `index` in a tree of `size`, or null. */
export async function rootFromInclusion(leaf, index, size, proof) {
  if (!(index < size)) return null;
  // Indices as BigInt: tree sizes may exceed 2^53.
  let f = BigInt(index);
  let s = BigInt(size) - 1n;
  let r = leaf;
  for (const p of proof) {
    if (s === 0n) return null;
    if ((f & 1n) === 1n || f === s) {
      r = await sha256(NODE, p, r);
      while ((f & 1n) === 0n && f !== 0n) { f >>= 1n; s >>= 1n; }
    } else {
      r = await sha256(NODE, r, p);
    }
    f >>= 1n;
    s >>= 1n;
  }
  return s === 0n ? r : null;
}

/**
 * Whether the event is included in the latest checkpoint: `{state: 'verified', checkpoint}`,
 * `{state: 'pending'}` (not yet in a checkpoint), `{state: 'failed', why}`, or
 * `{state: 'unavailable', why}` (the log could not be read).
 */
export async function checkInclusion(eventId) {
  if (!(window.crypto && crypto.subtle)) {
    return { state: 'unavailable', why: 'this browser offers SHA-256 (SubtleCrypto) only on HTTPS pages' };
  }
  let cp;
  try {
    cp = await api('/v1/log/checkpoint');
  } catch (err) {
    if (err.code === 'no_checkpoint') return { state: 'pending' };
    return { state: 'unavailable', why: err.message };
  }
  let proof;
  try {
    proof = await api('/v1/log/proof/inclusion', { event_id: eventId, tree_size: cp.tree_size });
  } catch (err) {
    if (err.code === 'not_in_log') return { state: 'pending', checkpoint: cp };
    return { state: 'unavailable', why: err.message };
  }
  const leaf = proof.leaf;
  if (!leaf || leaf.event_id !== eventId) return { state: 'failed', why: 'the proof is for another event', checkpoint: cp };
  const computed = await leafHash(leaf);
  if (hexOf(computed) !== hexOf(b64decode(leaf.leaf_hash))) {
    return { state: 'failed', why: 'the leaf hash does not match the leaf\'s fields', checkpoint: cp };
  }
  const root = await rootFromInclusion(computed, leaf.leaf_index, proof.tree_size, proof.hashes.map(b64decode));
  if (proof.tree_size !== cp.tree_size || root == null || hexOf(root) !== hexOf(b64decode(cp.root_hash))) {
    return { state: 'failed', why: 'the inclusion proof does not lead to the checkpoint\'s root', checkpoint: cp };
  }
  return { state: 'verified', checkpoint: cp, leafIndex: leaf.leaf_index };
}

/** The detail panel's integrity line for a result of checkInclusion. */
export function integrityLine(result) {
  const n = result.checkpoint ? result.checkpoint.tree_size : null;
  switch (result.state) {
    case 'verified':
      return h('span', { class: 'integrity integrity-ok', 'data-integrity': 'verified', title: `Leaf ${result.leafIndex} of the log; proof checked in this browser against the checkpoint's root` },
        `Included in checkpoint ${n} (verified)`);
    case 'pending':
      return h('span', { class: 'integrity integrity-pending muted', 'data-integrity': 'pending' }, 'Not yet in a checkpoint');
    case 'failed':
      return h('span', { class: 'integrity integrity-bad', 'data-integrity': 'failed' }, `Verification failed: ${result.why}`);
    default:
      return h('span', { class: 'integrity muted', 'data-integrity': 'unavailable' }, `Could not check: ${result.why}`);
  }
}
