// The JSON viewer: pretty-printed payloads that fold and copy.

import { h, fmtCount, copyText } from './helpers.js?v=__ASSET_VERSION__';

/** A collapsible, copyable, pretty-printed JSON block. */
export function jsonBlock(title, value, { big = false } = {}) {
  const text = JSON.stringify(value === undefined ? null : value, null, 2);
  const isEmpty = value == null || (typeof value === 'object' && Object.keys(value).length === 0);
  const slug = title.toLowerCase().replace(/\s+/g, '-');
  return h('details', { class: `json-block${big ? ' json-big' : ''}`, open: true, 'data-json': slug },
    h('summary', {},
      h('span', { class: 'json-title' }, title),
      h('span', { class: 'muted small' }, isEmpty ? 'empty' : `${fmtCount.format(text.length)} bytes`),
      h('span', { class: 'spacer' }),
      h('button', {
        type: 'button', class: 'btn btn-ghost btn-xs', title: 'Collapse or expand every nested value',
        onclick: (e) => {
          e.preventDefault();
          const nodes = e.target.closest('details').querySelectorAll('details.jn');
          const anyOpen = [...nodes].some((n) => n.open);
          nodes.forEach((n) => { n.open = !anyOpen; });
        },
      }, 'Fold all'),
      h('button', {
        type: 'button', class: 'btn btn-ghost btn-xs', onclick: (e) => { e.preventDefault(); copyText(text, title); },
      }, 'Copy')),
    h('div', { class: 'json', 'data-json-text': slug }, jsonNode(value === undefined ? null : value, null, true)));
}

function jsonScalar(v) {
  if (v === null) return h('span', { class: 'j-null' }, 'null');
  if (typeof v === 'string') return h('span', { class: 'j-str' }, JSON.stringify(v));
  if (typeof v === 'number') return h('span', { class: 'j-num' }, String(v));
  if (typeof v === 'boolean') return h('span', { class: 'j-bool' }, String(v));
  return h('span', {}, String(v));
}

/** One JSON value; objects and arrays are <details> that fold. */
function jsonNode(value, key, last) {
  const keyEl = key == null ? null : [h('span', { class: 'j-key' }, JSON.stringify(key)), ': '];
  const comma = last ? null : h('span', { class: 'j-punc' }, ',');
  if (value === null || typeof value !== 'object') {
    return h('div', { class: 'jl' }, keyEl, jsonScalar(value), comma);
  }
  const isArray = Array.isArray(value);
  const entries = isArray ? value.map((v, i) => [i, v]) : Object.entries(value);
  const [open, close] = isArray ? ['[', ']'] : ['{', '}'];
  if (!entries.length) return h('div', { class: 'jl' }, keyEl, h('span', { class: 'j-punc' }, open + close), comma);
  const n = entries.length;
  const hint = isArray ? `${n} item${n === 1 ? '' : 's'}` : `${n} key${n === 1 ? '' : 's'}`;
  return h('details', { class: 'jn', open: true },
    h('summary', { class: 'jl' }, keyEl, h('span', { class: 'j-punc' }, open),
      h('span', { class: 'j-fold' }, ` ${hint} `, h('span', { class: 'j-punc' }, close), comma)),
    h('div', { class: 'j-children' }, entries.map(([k, v], i) => jsonNode(v, isArray ? null : k, i === n - 1))),
    h('div', { class: 'jl j-close' }, h('span', { class: 'j-punc' }, close), comma));
}
