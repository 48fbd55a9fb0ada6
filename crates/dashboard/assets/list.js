// Loading the table: pages by cursor, facet counts, the rows, the loading, empty and error states.

import { PAGE_SIZE, ACTOR_LABELS } from './constants.js?v=__ASSET_VERSION__';
import { FILTER_KEYS } from './contract.js?v=__ASSET_VERSION__';
import { $, h, actionOf, actionTone, resourceOf, fmtCount, localTime, utcTime, relativeTime, initials, svgIcon } from './helpers.js?v=__ASSET_VERSION__';
import { state } from './state.js?v=__ASSET_VERSION__';
import { api, describeError } from './api.js?v=__ASSET_VERSION__';
import { apiParams, retentionLabel } from './range.js?v=__ASSET_VERSION__';
import { clearFilters, renderEventGroups } from './filters.js?v=__ASSET_VERSION__';
import { select } from './keyboard.js?v=__ASSET_VERSION__';
import { highlightOpen, openDetail } from './detail.js?v=__ASSET_VERSION__';
import { handleAuthError } from './signin.js?v=__ASSET_VERSION__';

export function reload() {
  state.generation += 1;
  state.rows = [];
  state.cursor = null;
  state.done = false;
  state.error = null;
  state.loading = false;
  state.selected = -1;
  state.total = null;
  state.params = apiParams();
  $('rows').replaceChildren();
  renderStatus();
  loadCounts(state.generation);
  loadMore();
}

async function loadCounts(gen) {
  try {
    const body = await api('/v1/event-counts', apiParams({ withEvent: false }));
    if (gen !== state.generation) return;
    state.counts = new Map(body.counts.map((c) => [c.event, c.count]));
    const sel = state.filters.event;
    let total = 0;
    for (const [t, c] of state.counts) {
      if (!sel.length || sel.includes(t) || sel.includes(`${resourceOf(t)}.*`)) total += c;
    }
    state.total = total;
    renderEventGroups();
    renderStatus();
  } catch (err) {
    if (gen === state.generation) handleAuthError(err);
  }
}

export async function loadMore() {
  if (state.loading || state.done || state.error) return;
  const gen = state.generation;
  state.loading = true;
  renderStatus();
  try {
    const body = await api('/v1/events', { ...state.params, limit: PAGE_SIZE, cursor: state.cursor });
    if (gen !== state.generation) return;
    const start = state.rows.length;
    state.rows.push(...body.data);
    state.cursor = body.next_cursor || null;
    state.done = !state.cursor;
    state.loading = false;
    appendRows(body.data, start);
    renderStatus();
    if (start === 0 && state.openId) highlightOpen();
    // Keep filling while the end of the table is on screen.
    requestAnimationFrame(() => { if (sentinelVisible()) loadMore(); });
  } catch (err) {
    if (gen !== state.generation) return;
    state.loading = false;
    if (handleAuthError(err)) return;
    state.error = err;
    renderStatus();
  }
}

function sentinelVisible() {
  const r = $('sentinel').getBoundingClientRect();
  return r.top < window.innerHeight + 300;
}

function appendRows(events, start) {
  const frag = document.createDocumentFragment();
  events.forEach((ev, i) => frag.append(renderRow(ev, start + i)));
  $('rows').append(frag);
}

function actorCell(actor) {
  const a = actor || {};
  const type = a.type || 'system';
  return h('div', { class: 'actor' },
    h('span', { class: `avatar avatar-${type}`, 'aria-hidden': 'true' },
      type === 'root_key' ? keyIcon() : type === 'system' ? gearIcon() : initials(a.name, a.id)),
    h('div', { class: 'actor-text' },
      h('div', { class: 'actor-name', title: a.name || a.id }, a.name || a.id || 'Unknown'),
      h('div', { class: 'mono muted small', title: `${ACTOR_LABELS[type] || type} ${a.id || ''}` },
        h('span', { class: 'actor-type' }, ACTOR_LABELS[type] || type), a.id || '')));
}

const keyIcon = () => svgIcon('M12.5 3.5a4 4 0 1 1-3.3 6.3L4 15v1.5h2.5V15H8v-1.5h1.5l1-1a4 4 0 0 1 2-9zM13.5 6.5h.01');
const gearIcon = () => svgIcon('M10 7a3 3 0 1 0 0 6 3 3 0 0 0 0-6zM10 2v2m0 12v2M2 10h2m12 0h2M4.3 4.3l1.4 1.4m8.6 8.6 1.4 1.4m0-11.4-1.4 1.4m-8.6 8.6-1.4 1.4');

function renderRow(ev, index) {
  const action = actionOf(ev.event);
  const failed = ev.outcome && ev.outcome.status === 'failure';
  const tr = h('tr', {
    tabindex: '-1', 'data-index': index, 'data-event-id': ev.event_id, 'data-event': ev.event,
    class: ev.event_id === state.openId ? 'open' : null,
    onclick: (e) => { if (!e.target.closest('button, a')) { select(index, false); openDetail(ev.event_id); } },
    onfocus: () => { if (state.selected !== index) select(index, false); },
  },
  h('td', { class: 'c-time' },
    h('time', { datetime: ev.time, title: utcTime(ev.time) }, localTime(ev.time)),
    h('div', { class: 'muted small ago', 'data-time': ev.time }, relativeTime(ev.time))),
  h('td', { class: 'c-actor' }, actorCell(ev.actor)),
  h('td', { class: 'c-action' }, h('span', { class: `pill pill-${actionTone(action)}` }, action)),
  h('td', { class: 'c-event' }, h('code', { class: 'event-type' }, ev.event)),
  h('td', { class: 'c-desc' },
    h('div', { class: 'desc' },
      failed ? h('span', { class: 'pill pill-red pill-sm', title: ev.outcome.reason || 'Failed' }, 'Failed') : null,
      h('span', { class: 'desc-text', title: ev.description }, ev.description)),
    targetsLine(ev.targets)));
  return tr;
}

function targetsLine(targets) {
  if (!targets || !targets.length) return null;
  const shown = targets.slice(0, 3).map((t) => h('span', { class: 'target', title: `${t.type} ${t.id}` },
    h('span', { class: 'muted' }, `${t.type} `), t.name || t.id));
  if (targets.length > 3) shown.push(h('span', { class: 'muted' }, `+${targets.length - 3} more`));
  return h('div', { class: 'targets small' }, shown);
}

function renderStatus() {
  const st = $('state');
  const n = state.rows.length;
  $('loading').hidden = !state.loading;
  $('loading').classList.toggle('first', state.loading && n === 0);
  $('events').classList.toggle('is-empty', n === 0 && !state.loading);
  st.hidden = true;
  st.replaceChildren();
  if (state.error) {
    st.hidden = false;
    st.className = 'state state-error';
    st.append(
      h('div', { class: 'state-icon' }, '!'),
      h('h3', {}, n ? 'Could not load more events' : 'Could not load events'),
      h('p', { class: 'muted' }, describeError(state.error)),
      h('button', { type: 'button', class: 'btn', onclick: () => { state.error = null; loadMore(); } }, 'Try again'));
  } else if (state.done && n === 0) {
    const filtered = FILTER_KEYS.some((k) => (k === 'event' ? state.filters.event.length : state.filters[k]));
    st.hidden = false;
    st.className = 'state state-empty';
    st.append(
      h('div', { class: 'state-icon' }, svgIcon('M4 5h12M4 10h12M4 15h7')),
      h('h3', {}, filtered ? 'No events match these filters' : 'No audit events yet'),
      h('p', { class: 'muted' }, filtered
        ? 'Try a wider time range, another event type, or clear the filters.'
        : `Events appear here as your workspace changes. ${retentionLabel()}.`),
      ...(filtered ? [h('button', { type: 'button', class: 'btn', onclick: clearFilters }, 'Clear filters')] : []));
  }
  $('end').hidden = !(state.done && n > 0);
  $('end').textContent = `End of the log · ${fmtCount.format(n)} event${n === 1 ? '' : 's'}`
    + (state.workspace && state.workspace.retention_days != null ? ` · older events are past retention (${state.workspace.retention_days} days)` : '');
  let text = '';
  if (n === 0 && state.loading) text = 'Loading…';
  else if (n === 0 && state.done) text = 'No events';
  else if (state.total != null) text = `Showing ${fmtCount.format(n)} of ${fmtCount.format(Math.max(state.total, n))} events`;
  else text = `Showing ${fmtCount.format(n)} event${n === 1 ? '' : 's'}`;
  $('summary').textContent = text;
}
