// Retention and the time range: presets within the plan, the filters as API parameters.

import { DAY, PRESETS } from './constants.js?v=__ASSET_VERSION__';
import { API_FILTERS } from './contract.js?v=__ASSET_VERSION__';
import { $, h, capitalize, fmtCount, toLocalInput } from './helpers.js?v=__ASSET_VERSION__';
import { state } from './state.js?v=__ASSET_VERSION__';

/** Milliseconds the plan keeps, or Infinity. */
export function retentionMs() {
  const days = state.workspace && state.workspace.retention_days;
  return days == null ? Infinity : days * DAY;
}

/** The time range filter as API parameters, clamped to the plan's retention. */
function resolveRange(now) {
  const f = state.filters;
  const range = f.range || 'all';
  const preset = PRESETS.find((p) => p.id === range);
  const floor = now - retentionMs();
  if (preset) return { since: new Date(Math.max(now - preset.ms, floor)).toISOString() };
  if (range === 'custom') {
    const out = {};
    const since = f.since ? new Date(f.since) : null;
    if (since && !Number.isNaN(since.getTime())) out.since = new Date(Math.max(since.getTime(), floor)).toISOString();
    const until = f.until ? new Date(f.until) : null;
    if (until && !Number.isNaN(until.getTime())) out.until = until.toISOString();
    return out;
  }
  return {};
}

/** The current filters as API parameters (no cursor/limit), the time range resolved. */
export function apiParams({ withEvent = true } = {}) {
  const f = state.filters;
  const p = {};
  for (const k of API_FILTERS) {
    if (k !== 'event' && k !== 'since' && k !== 'until') p[k] = f[k];
  }
  Object.assign(p, resolveRange(Date.now()));
  if (withEvent && f.event.length) p.event = f.event.join(',');
  return p;
}

export function retentionLabel() {
  const ws = state.workspace;
  if (!ws) return '';
  const plan = capitalize(ws.plan || 'unknown');
  if (ws.retention_days == null) return `Retention: unlimited on ${plan}`;
  const d = ws.retention_days;
  return `Retention: ${fmtCount.format(d)} day${d === 1 ? '' : 's'} on ${plan}`;
}

export function renderRangeOptions() {
  const sel = $('range');
  const limit = retentionMs();
  const all = state.workspace && state.workspace.retention_days != null
    ? `All retained (${state.workspace.retention_days} days)` : 'All time';
  sel.replaceChildren(
    ...PRESETS.map((p) => h('option', {
      value: p.id,
      disabled: p.ms > limit,
      title: p.ms > limit ? `Beyond your plan's retention (${retentionLabel()})` : null,
    }, p.ms > limit ? `${p.label} — beyond retention` : p.label)),
    h('option', { value: 'all' }, all),
    h('option', { value: 'custom' }, 'Custom range…'),
  );
  const min = limit === Infinity ? '' : toLocalInput(new Date(Date.now() - limit));
  $('since').min = min;
  $('until').min = min;
}

/**
 * Keeps the range filter valid: an unknown preset, or one longer than the plan keeps, falls
 * back to everything retained (no `range`); `since`/`until` only go with `range=custom`.
 */
export function normalizeRange() {
  const f = state.filters;
  const preset = PRESETS.find((p) => p.id === f.range);
  if (f.range !== 'custom' && (!preset || preset.ms > retentionMs())) delete f.range;
  if (f.range !== 'custom') {
    delete f.since;
    delete f.until;
  }
}
