// The filter controls: their values, the chips, the event-type picker with its facet counts.

import { RESOURCE_LABELS, ACTOR_LABELS } from './constants.js?v=__ASSET_VERSION__';
import { CATALOG, ACTOR_TYPES, FILTER_KEYS } from './contract.js?v=__ASSET_VERSION__';
import { $, h, capitalize, actionOf, actionTone, resourceOf, fmtCount, toLocalInput } from './helpers.js?v=__ASSET_VERSION__';
import { state } from './state.js?v=__ASSET_VERSION__';
import { writeUrl } from './url.js?v=__ASSET_VERSION__';
import { normalizeRange } from './range.js?v=__ASSET_VERSION__';
import { reload } from './list.js?v=__ASSET_VERSION__';

/** Fills the actor-type select from the server's actor types (after its "Any actor" option). */
export function renderActorTypes() {
  const select = $('actor-type');
  for (const t of ACTOR_TYPES) select.append(h('option', { value: t }, ACTOR_LABELS[t] || capitalize(t.replace(/_/g, ' '))));
}

export function syncControls() {
  const f = state.filters;
  $('q').value = f.q || '';
  $('actor-type').value = f.actor_type || '';
  $('actor-id').value = f.actor_id || '';
  $('outcome').value = f.outcome || '';
  $('range').value = f.range || 'all';
  const custom = f.range === 'custom';
  $('custom-range').hidden = !custom;
  if (custom) {
    const s = f.since ? new Date(f.since) : null;
    const u = f.until ? new Date(f.until) : null;
    $('since').value = s && !Number.isNaN(s.getTime()) ? toLocalInput(s) : '';
    $('until').value = u && !Number.isNaN(u.getTime()) ? toLocalInput(u) : '';
  }
  const n = f.event.length;
  $('event-badge').hidden = n === 0;
  $('event-badge').textContent = n === 1 ? f.event[0] : String(n);
  $('event-btn').classList.toggle('active', n > 0);
  for (const [id, on] of [['actor-type', f.actor_type], ['actor-id', f.actor_id], ['outcome', f.outcome], ['range', f.range]]) {
    $(id).classList.toggle('active', Boolean(on));
  }
  renderChips();
  renderEventGroups();
}

/** Filters with no control of their own (set from the detail view) show as removable chips. */
function renderChips() {
  const f = state.filters;
  const chips = [];
  const add = (label, keys) => chips.push(h('span', { class: 'chip chip-filter' }, label,
    h('button', {
      type: 'button', class: 'chip-x', 'aria-label': `Remove filter ${label}`,
      onclick: () => { for (const k of keys) delete state.filters[k]; applyFilters(true); },
    }, '×')));
  if (f.correlation_id) add(`Correlation: ${f.correlation_id}`, ['correlation_id']);
  if (f.target_id || f.target_type) add(`Target: ${[f.target_type, f.target_id].filter(Boolean).join(' ')}`, ['target_type', 'target_id']);
  if (f.bucket) add(`Bucket: ${f.bucket}`, ['bucket']);
  const any = FILTER_KEYS.some((k) => (k === 'event' ? f.event.length : f[k]));
  if (any) {
    chips.push(h('button', { type: 'button', class: 'btn btn-ghost btn-sm', onclick: clearFilters }, 'Clear all filters'));
  }
  $('chips').replaceChildren(...chips);
  $('chips').hidden = chips.length === 0;
}

export function clearFilters() {
  state.filters = { event: [] };
  applyFilters(true);
}

/** Every known event type grouped by resource, with facet counts. */
export function renderEventGroups() {
  const counts = state.counts || new Map();
  const types = new Set([...CATALOG, ...counts.keys(), ...state.filters.event.filter((e) => !e.endsWith('.*'))]);
  const needle = $('event-search').value.trim().toLowerCase();
  const groups = new Map();
  for (const t of types) {
    if (needle && !t.includes(needle)) continue;
    const r = resourceOf(t);
    if (!groups.has(r)) groups.set(r, []);
    groups.get(r).push(t);
  }
  const selected = new Set(state.filters.event);
  const order = [...new Set(CATALOG.map(resourceOf))];
  const resources = [...groups.keys()].sort((a, b) => {
    const ia = order.indexOf(a); const ib = order.indexOf(b);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
  });
  const nodes = resources.map((r) => {
    const list = groups.get(r).sort((a, b) => CATALOG.indexOf(a) - CATALOG.indexOf(b) || a.localeCompare(b));
    const wildcard = `${r}.*`;
    const groupOn = selected.has(wildcard);
    const total = list.reduce((s, t) => s + (counts.get(t) || 0), 0);
    return h('div', { class: 'group' },
      h('label', { class: 'group-head' },
        h('input', { type: 'checkbox', checked: groupOn, 'data-event': wildcard, onchange: onEventToggle }),
        h('span', { class: 'group-name' }, RESOURCE_LABELS[r] || capitalize(r)),
        h('code', { class: 'muted' }, wildcard),
        h('span', { class: 'count' }, state.counts ? fmtCount.format(total) : '')),
      ...list.map((t) => {
        const c = counts.get(t) || 0;
        return h('label', { class: `group-item${c === 0 && state.counts ? ' zero' : ''}` },
          h('input', {
            type: 'checkbox', checked: groupOn || selected.has(t), disabled: groupOn,
            'data-event': t, onchange: onEventToggle,
          }),
          h('span', { class: `pill pill-${actionTone(actionOf(t))}` }, actionOf(t)),
          h('code', {}, t),
          h('span', { class: 'count' }, state.counts ? fmtCount.format(c) : ''));
      }));
  });
  if (!nodes.length) nodes.push(h('p', { class: 'muted pad' }, 'No event type matches.'));
  $('event-groups').replaceChildren(...nodes);
}

function onEventToggle(e) {
  const t = e.target.dataset.event;
  let list = state.filters.event.filter((x) => x !== t);
  if (e.target.checked) {
    if (t.endsWith('.*')) {
      const r = t.slice(0, -2);
      list = list.filter((x) => resourceOf(x) !== r);
    }
    list.push(t);
  }
  state.filters.event = list;
  applyFilters(true);
}

export function toggleEventPanel(open) {
  const panel = $('event-panel');
  const show = open == null ? panel.hidden : open;
  panel.hidden = !show;
  $('event-btn').setAttribute('aria-expanded', String(show));
  if (show) {
    renderEventGroups();
    $('event-search').focus();
  }
}

/** New filters: URL, controls, facet counts, first page. */
export function applyFilters(push) {
  normalizeRange();
  writeUrl(push);
  syncControls();
  reload();
}
