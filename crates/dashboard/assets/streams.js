// The Streams view: the workspace's push destinations (`GET /v1/streams`) with how delivery
// goes (state, lag, deliveries, failures, the last error), refreshed every 10 s while the view
// is on screen. The view is `#streams` in the URL (views.js switches views).

import { $, h, fmtCount, relativeTime, utcTime, svgIcon } from './helpers.js?v=__ASSET_VERSION__';
import { state } from './state.js?v=__ASSET_VERSION__';
import { api, describeError } from './api.js?v=__ASSET_VERSION__';
import { handleAuthError } from './signin.js?v=__ASSET_VERSION__';

/** How often the table refreshes while it is visible. */
export const STREAMS_REFRESH_MS = 10_000;

const DESTINATION_LABELS = { webhook: 'Webhook', splunk_hec: 'Splunk HEC', datadog: 'Datadog', s3: 'S3' };
const FORMAT_LABELS = { json: 'JSON', ocsf: 'OCSF', ecs: 'ECS' };
/** The state badge: label and colour. `pending` = active, but no worker has reported yet. */
const STATES = {
  active: ['Active', 'green'],
  failing: ['Failing', 'red'],
  paused: ['Paused', 'amber'],
  pending: ['Pending', 'gray'],
};

const view = {
  streams: null, // the last answer's `data`
  error: null,
  loading: false,
  loadedAt: null, // Date of the last answer
  timer: null,
  generation: 0, // bumps when the view is left: late answers are dropped
};

/** Whether the Streams view is on screen. */
const streamsShown = () => !$('streams-view').hidden;

/** The view was left: stop polling, drop late answers. */
export function leave() {
  stopTimer();
  view.generation += 1;
}

/** Loads the streams now, then every STREAMS_REFRESH_MS while the view and the tab are visible. */
export async function refresh() {
  stopTimer();
  if (!streamsShown() || !state.token) return;
  const gen = view.generation;
  view.loading = true;
  render();
  try {
    const body = await api('/v1/streams');
    if (gen !== view.generation) return;
    view.streams = body.data || [];
    view.error = null;
    view.loadedAt = new Date();
  } catch (err) {
    if (gen !== view.generation) return;
    if (handleAuthError(err)) { view.loading = false; return; }
    view.error = err;
  }
  view.loading = false;
  render();
  schedule();
}

function schedule() {
  stopTimer();
  if (streamsShown() && document.visibilityState === 'visible' && state.token) {
    view.timer = setTimeout(refresh, STREAMS_REFRESH_MS);
  }
}

function stopTimer() {
  clearTimeout(view.timer);
  view.timer = null;
}

/** A hidden tab stops polling; coming back refreshes at once. */
export function onVisibilityChange() {
  if (document.visibilityState === 'visible') {
    if (streamsShown()) refresh();
  } else {
    stopTimer();
  }
}

/** What the page shows as the state: the workspace's pause wins over a stale worker report. */
export function displayState(s) {
  if (s.desired === 'paused') return 'paused';
  return s.status ? s.status.state : 'pending';
}

/** Where it delivers, without credentials: the host of the URL, or the bucket. */
function destinationText(d) {
  if (!d) return '';
  if (d.type === 's3') return d.bucket ? `${d.bucket}${d.prefix ? `/${d.prefix}` : ''}` : '';
  try {
    return new URL(d.url).host;
  } catch {
    return '';
  }
}

const seconds = (s) => (s < 60 ? `${s.toFixed(1)} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`);
const isoOf = (ms) => new Date(ms).toISOString();

function renderRow(s) {
  const st = s.status;
  const shown = displayState(s);
  const [label, tone] = STATES[shown] || [shown, 'gray'];
  const type = (s.destination && s.destination.type) || '';
  const reason = s.desired === 'paused' && s.paused_reason ? s.paused_reason : '';
  return h('tr', { 'data-stream-id': s.stream_id, 'data-state': shown },
    h('td', { class: 's-name' },
      h('div', { class: 'stream-name', title: s.name || s.stream_id }, s.name || s.stream_id),
      h('div', { class: 'mono muted small' }, s.stream_id)),
    h('td', { class: 's-dest' },
      h('div', {}, DESTINATION_LABELS[type] || type),
      h('div', { class: 'mono muted small', title: destinationText(s.destination) }, destinationText(s.destination))),
    h('td', { class: 's-format' }, h('span', { class: 'pill pill-gray pill-sm' }, FORMAT_LABELS[s.format] || s.format || 'JSON')),
    h('td', { class: 's-state' },
      h('span', { class: `pill pill-${tone} stream-state`, title: reason || label }, label),
      reason ? h('div', { class: 'muted small', title: reason }, reason) : null),
    h('td', { class: 's-lag num' },
      st ? h('div', {}, `${fmtCount.format(st.lag_events)} events`) : h('span', { class: 'muted' }, '—'),
      st ? h('div', { class: 'muted small' }, st.lag_events ? `oldest ${seconds(st.lag_seconds)}` : 'caught up') : null),
    h('td', { class: 's-delivered num' },
      st ? fmtCount.format(st.delivered_events) : h('span', { class: 'muted' }, '—'),
      st && st.redelivered_events ? h('div', { class: 'muted small', title: 'Events sent again after an unacknowledged attempt (at-least-once)' },
        `${fmtCount.format(st.redelivered_events)} redelivered`) : null),
    h('td', { class: 's-failures num' }, st ? fmtCount.format(st.failed_attempts) : h('span', { class: 'muted' }, '—')),
    h('td', { class: 's-error' },
      st && st.last_error
        ? [h('div', { class: 'stream-error', title: st.last_error }, st.last_error),
          st.last_error_at_ms != null
            ? h('time', { class: 'muted small', datetime: isoOf(st.last_error_at_ms), title: utcTime(isoOf(st.last_error_at_ms)) },
              relativeTime(isoOf(st.last_error_at_ms)))
            : null]
        : h('span', { class: 'muted' }, 'None')));
}

function render() {
  const rows = $('stream-rows');
  const box = $('streams-state');
  const list = view.streams || [];
  $('streams-loading').hidden = !(view.loading && view.streams == null);
  $('streams').classList.toggle('is-empty', list.length === 0);
  box.hidden = true;
  box.replaceChildren();
  if (view.error) {
    box.hidden = false;
    box.className = 'state state-error';
    box.append(
      h('div', { class: 'state-icon' }, '!'),
      h('h3', {}, 'Could not load streams'),
      h('p', { class: 'muted' }, describeError(view.error)),
      h('button', { type: 'button', class: 'btn', onclick: () => { view.error = null; refresh(); } }, 'Try again'));
  } else if (view.streams != null && list.length === 0) {
    box.hidden = false;
    box.className = 'state state-empty';
    box.append(
      h('div', { class: 'state-icon' }, svgIcon('M3 10h9m-3-4 4 4-4 4M14 4h3v12h-3')),
      h('h3', {}, 'No streams yet'),
      h('p', { class: 'muted' }, 'Streams push this workspace\'s events to a webhook, Splunk, Datadog or an S3 bucket as they arrive. '
        + 'Create one with `auditlog stream create` or the admin API (docs/streams.md).'));
  }
  // The error box replaces the table only when there is nothing to show; stale rows stay
  // visible (with the error above them) so a blip does not blank the page.
  if (!(view.error && list.length === 0)) rows.replaceChildren(...list.map(renderRow));
  else rows.replaceChildren();
  const n = list.length;
  const failing = list.filter((s) => displayState(s) === 'failing').length;
  let text = view.streams == null ? 'Loading…' : `${fmtCount.format(n)} stream${n === 1 ? '' : 's'}`;
  if (failing) text += ` · ${fmtCount.format(failing)} failing`;
  $('streams-summary').textContent = text;
  $('streams-updated').textContent = view.loadedAt
    ? `Updated ${view.loadedAt.toLocaleTimeString()} · refreshes every ${STREAMS_REFRESH_MS / 1000} s` : '';
}
