// The Log view (`#log`): the workspace log's latest signed checkpoint (origin, size, root, when
// it was signed, the signed note as text), the witnesses that cosigned it, and the log's public
// keys (`GET /v1/log/checkpoint`, `GET /v1/log/keys`; docs/integrity.md).

import { $, h, relativeTime, utcTime, fmtCount, copyText } from './helpers.js?v=__ASSET_VERSION__';
import { api, describeError } from './api.js?v=__ASSET_VERSION__';
import { state } from './state.js?v=__ASSET_VERSION__';
import { handleAuthError } from './signin.js?v=__ASSET_VERSION__';

let generation = 0;

/** The view was left: late answers are dropped. */
export function leave() {
  generation += 1;
}

/** The cosignature lines of a signed note: every signature line after the log's own. */
export function cosignatureLines(note) {
  const blank = note.indexOf('\n\n');
  if (blank < 0) return [];
  const sigs = note.slice(blank + 2).split('\n').filter((l) => l.startsWith('\u2014 '));
  return sigs.slice(1);
}

/** Loads the checkpoint and the keys, then renders. */
export async function refresh() {
  if ($('log-view').hidden || !state.token) return;
  const gen = ++generation;
  $('log-body').replaceChildren(h('div', { class: 'loading first' }, h('span', { class: 'spinner' }), h('span', {}, 'Loading the log…')));
  let cp = null;
  let keys = [];
  let error = null;
  try {
    const [c, k] = await Promise.allSettled([api('/v1/log/checkpoint'), api('/v1/log/keys')]);
    if (c.status === 'fulfilled') cp = c.value;
    else if (c.reason.code !== 'no_checkpoint') error = c.reason;
    if (k.status === 'fulfilled') keys = k.value.keys || [];
    else error = error || k.reason;
  } catch (err) {
    error = err;
  }
  if (gen !== generation) return;
  if (error && handleAuthError(error)) return;
  render(cp, keys, error);
}

function row(label, value, { mono = false, copy = null } = {}) {
  return [
    h('dt', {}, label),
    h('dd', { class: mono ? 'mono' : null }, value,
      copy ? h('button', { type: 'button', class: 'btn btn-ghost btn-xs', onclick: () => copyText(copy, label.toLowerCase()) }, 'Copy') : null),
  ];
}

function render(cp, keys, error) {
  const parts = [];
  if (error) {
    parts.push(h('div', { class: 'state state-error', role: 'alert' },
      h('div', { class: 'state-icon' }, '!'),
      h('h3', {}, 'Could not load the log'),
      h('p', { class: 'muted' }, describeError(error)),
      h('button', { type: 'button', class: 'btn', onclick: () => refresh() }, 'Try again')));
  } else if (!cp) {
    parts.push(h('div', { id: 'log-empty', class: 'state state-empty' },
      h('h3', {}, 'No checkpoint yet'),
      h('p', { class: 'muted' }, 'The log of this workspace has no signed checkpoint yet: its events are not sequenced yet, or the sequencer has not signed one since.')));
  } else {
    const signed = new Date(cp.signed_at_ms).toISOString();
    const cosigs = cosignatureLines(cp.note);
    parts.push(
      h('section', { id: 'log-checkpoint', class: 'card log-card' },
        h('h3', {}, 'Latest checkpoint'),
        h('dl', { class: 'fields' },
          row('Origin', cp.origin, { mono: true }),
          row('Tree size', h('span', { id: 'log-size' }, fmtCount.format(cp.tree_size))),
          row('Root hash', h('span', { id: 'log-root' }, cp.root_hash), { mono: true, copy: cp.root_hash }),
          row('Signed', h('time', { datetime: signed, title: utcTime(signed) }, `${utcTime(signed)} (${relativeTime(signed)})`))),
        h('h4', {}, 'Signed note'),
        h('pre', { id: 'log-note', class: 'json log-note' }, cp.note)),
      h('section', { id: 'log-witnesses', class: 'card log-card' },
        h('h3', {}, `Witness cosignatures (${cp.witnesses.length})`),
        cp.witnesses.length
          ? h('ul', { class: 'log-list' }, cp.witnesses.map((w, i) => h('li', { class: 'log-witness' },
            h('strong', {}, w), h('div', { class: 'mono small muted' }, cosigs[i] || ''))))
          : h('p', { class: 'muted' }, 'No witness has cosigned this checkpoint yet.')));
  }
  if (!error) {
    parts.push(h('section', { id: 'log-keys', class: 'card log-card' },
      h('h3', {}, `Log keys (${keys.length})`),
      h('p', { class: 'muted small' }, 'The public keys checkpoints are signed with, newest first. Pin them out of band: a key shown here proves nothing by itself.'),
      keys.length
        ? h('ul', { class: 'log-list' }, keys.map((k) => h('li', { class: 'mono small log-key' }, k)))
        : h('p', { class: 'muted' }, 'No keys announced yet.')));
  }
  $('log-body').replaceChildren(...parts);
}
