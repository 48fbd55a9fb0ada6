// The detail panel: one event with every field, its actor, targets, context and payloads, and
// whether it is included in the log's latest checkpoint (checked in the browser: integrity.js).

import { ACTOR_LABELS } from './constants.js?v=__ASSET_VERSION__';
import { $, h, actionOf, actionTone, fmtFull, utcTime, copyText, svgIcon } from './helpers.js?v=__ASSET_VERSION__';
import { state } from './state.js?v=__ASSET_VERSION__';
import { api, describeError } from './api.js?v=__ASSET_VERSION__';
import { writeUrl } from './url.js?v=__ASSET_VERSION__';
import { applyFilters } from './filters.js?v=__ASSET_VERSION__';
import { rowEl } from './keyboard.js?v=__ASSET_VERSION__';
import { jsonBlock } from './jsonview.js?v=__ASSET_VERSION__';
import { handleAuthError } from './signin.js?v=__ASSET_VERSION__';
import { checkInclusion, integrityLine } from './integrity.js?v=__ASSET_VERSION__';

let detailGen = 0;
let detailEvent = null;

export function highlightOpen() {
  for (const tr of $('rows').querySelectorAll('tr.open')) tr.classList.remove('open');
  if (!state.openId) return;
  const tr = $('rows').querySelector(`tr[data-event-id="${CSS.escape(state.openId)}"]`);
  if (tr) tr.classList.add('open');
}

export async function openDetail(id, { keepFocus = false } = {}) {
  const panel = $('detail');
  const gen = ++detailGen;
  const firstOpen = panel.hidden;
  state.openId = id;
  writeUrl(false);
  highlightOpen();
  panel.hidden = false;
  $('scrim').hidden = false;
  document.body.classList.add('detail-open');
  $('detail-kicker').replaceChildren();
  $('detail-title').textContent = 'Loading…';
  $('detail-body').replaceChildren(h('div', { class: 'loading first' }, h('span', { class: 'spinner' }), h('span', {}, 'Loading event…')));
  setDetailEvent(null);
  if (firstOpen && !keepFocus) $('detail-close').focus();
  let ev;
  try {
    ev = await api(`/v1/events/${encodeURIComponent(id)}`);
    if (gen !== detailGen) return;
    if (!ev || typeof ev !== 'object' || !ev.event_id) throw new Error('The server sent no event.');
    renderDetail(ev);
    checkInclusion(ev.event_id).then((r) => {
      const slot = $('detail-integrity');
      if (gen === detailGen && slot) slot.replaceChildren(integrityLine(r));
    });
  } catch (err) {
    if (gen !== detailGen) return;
    if (handleAuthError(err)) return;
    // Nothing to copy: the button stays hidden and the panel says what went wrong.
    setDetailEvent(null);
    $('detail-kicker').replaceChildren();
    $('detail-title').textContent = err.status === 404 ? 'Event not found' : 'Could not load this event';
    $('detail-body').replaceChildren(h('div', { class: 'state state-error', role: 'alert' },
      h('div', { class: 'state-icon' }, '!'),
      h('p', { class: 'muted' }, err.status === 404
        ? 'It does not exist in this workspace, or it is older than your plan\'s retention.'
        : describeError(err)),
      h('button', { type: 'button', class: 'btn', onclick: () => openDetail(id, { keepFocus: true }) }, 'Try again')));
    return;
  }
  // Only an event that loaded and rendered can be copied.
  setDetailEvent(ev);
}

/** The event the detail panel shows, or null: "Copy JSON" is offered only for a loaded one. */
function setDetailEvent(ev) {
  detailEvent = ev;
  const btn = $('detail-copy');
  btn.hidden = ev == null;
  btn.disabled = ev == null;
}

/** "Copy JSON": the whole event the panel shows, once it loaded. */
export function copyDetailEvent() {
  if (detailEvent) copyText(JSON.stringify(detailEvent, null, 2), 'Event JSON');
}

export function closeDetail() {
  if ($('detail').hidden) return;
  detailGen += 1;
  $('detail').hidden = true;
  $('scrim').hidden = true;
  document.body.classList.remove('detail-open');
  state.openId = null;
  writeUrl(false);
  highlightOpen();
  const row = rowEl(state.selected);
  if (row) row.focus({ preventScroll: true });
}

function copyButton(text, label) {
  return h('button', {
    type: 'button', class: 'btn-copy', title: `Copy ${label}`, 'aria-label': `Copy ${label}`,
    onclick: () => copyText(text, label),
  }, svgIcon('M7 7V4.5A1.5 1.5 0 0 1 8.5 3h7A1.5 1.5 0 0 1 17 4.5v7a1.5 1.5 0 0 1-1.5 1.5H13M4.5 7h7A1.5 1.5 0 0 1 13 8.5v7a1.5 1.5 0 0 1-1.5 1.5h-7A1.5 1.5 0 0 1 3 15.5v-7A1.5 1.5 0 0 1 4.5 7z'));
}

function filterButton(label, apply) {
  return h('button', {
    type: 'button', class: 'btn btn-ghost btn-xs', onclick: () => { apply(); closeDetail(); applyFilters(true); },
  }, label);
}

/** A definition list row; `value` may be a node. */
function field(label, value, { mono = false, copy = null, extra = null } = {}) {
  const empty = value == null || value === '';
  return [
    h('dt', {}, label),
    h('dd', { class: mono ? 'mono' : null },
      h('span', { class: empty ? 'muted' : null }, empty ? '—' : value),
      copy && !empty ? copyButton(copy, label.toLowerCase()) : null,
      extra),
  ];
}

function section(title, ...body) {
  return h('section', { class: 'detail-section' }, h('h3', {}, title), ...body);
}

function renderDetail(ev) {
  const action = actionOf(ev.event);
  const failed = ev.outcome && ev.outcome.status === 'failure';
  $('detail-kicker').replaceChildren(
    h('span', { class: `pill pill-${actionTone(action)}` }, action),
    h('code', { class: 'event-type' }, ev.event),
    failed ? h('span', { class: 'pill pill-red' }, 'Failed') : h('span', { class: 'pill pill-gray' }, 'Succeeded'));
  $('detail-title').textContent = ev.description || ev.event;
  const actor = ev.actor || {};
  const ctx = ev.context || {};
  const targets = ev.targets || [];
  $('detail-body').replaceChildren(
    section('Event', h('dl', { class: 'fields' },
      field('Event ID', ev.event_id, { mono: true, copy: ev.event_id }),
      field('Time', h('time', { datetime: ev.time, title: utcTime(ev.time) }, fmtFull.format(new Date(ev.time)))),
      field('Time (UTC)', utcTime(ev.time), { mono: true, copy: ev.time }),
      field('Recorded', ev.inserted_at ? utcTime(ev.inserted_at) : null, { mono: true }),
      field('Workspace', ev.workspace_id, { mono: true, copy: ev.workspace_id }),
      field('Bucket', ev.bucket, { mono: true }),
      field('Outcome', failed ? `Failed: ${ev.outcome.reason || 'no reason given'}` : 'Succeeded'),
      field('Correlation ID', ev.correlation_id, {
        mono: true, copy: ev.correlation_id,
        extra: ev.correlation_id ? filterButton('Show related', () => {
          state.filters = { event: [], correlation_id: ev.correlation_id };
        }) : null,
      }),
      field('Schema version', ev.version != null ? String(ev.version) : null),
      field('Integrity', h('span', { id: 'detail-integrity', class: 'muted' }, 'Checking…')))),
    section('Actor', h('dl', { class: 'fields' },
      field('Type', ACTOR_LABELS[actor.type] || actor.type),
      field('Name', actor.name),
      field('ID', actor.id, {
        mono: true, copy: actor.id,
        extra: actor.id ? filterButton('Filter by actor', () => {
          state.filters.actor_type = actor.type; state.filters.actor_id = actor.id;
        }) : null,
      })),
    actor.meta ? jsonBlock('Actor metadata', actor.meta) : null),
    section(`Targets (${targets.length})`, targets.length
      ? h('ul', { class: 'target-list' }, targets.map((t) => h('li', { class: 'target-card' },
        h('div', { class: 'target-head' },
          h('span', { class: 'pill pill-gray' }, t.type),
          h('strong', {}, t.name || t.id),
          filterButton('Filter', () => { state.filters.target_type = t.type; state.filters.target_id = t.id; })),
        h('div', { class: 'mono small muted' }, t.id, copyButton(t.id, 'target id')),
        t.meta ? jsonBlock('Metadata', t.meta) : null)))
      : h('p', { class: 'muted' }, 'No targets.')),
    section('Context', h('dl', { class: 'fields' },
      field('IP address', ctx.remote_ip, { mono: true, copy: ctx.remote_ip }),
      field('User agent', ctx.user_agent, { mono: true }),
      field('Location', ctx.location))),
    jsonBlock('Request', ev.request, { big: true }),
    jsonBlock('Response', ev.response, { big: true }),
  );
}
