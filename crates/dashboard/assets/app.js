// The audit-log viewer. Plain JS, no build step: it talks to the API on the same origin
// (`/v1/...`, see docs/dashboard.md) with the workspace token kept in session/local storage.
'use strict';

(() => {
  // ---------------------------------------------------------------- constants

  /** The product's event catalog (crates/event/src/catalog.rs), so empty types still list. */
  const CATALOG = [
    'key.create', 'key.update', 'key.revoke', 'key.delete', 'key.verify_failed',
    'api.create', 'api.update', 'api.delete',
    'permission.create', 'permission.update', 'permission.delete', 'permission.attach', 'permission.detach',
    'role.create', 'role.update', 'role.delete', 'role.assign', 'role.unassign',
    'ratelimit.namespace_create', 'ratelimit.update', 'ratelimit.override_set',
    'workspace.member_add', 'workspace.member_remove', 'workspace.settings_update',
  ];
  const RESOURCE_LABELS = {
    key: 'Keys', api: 'APIs', permission: 'Permissions', role: 'Roles',
    ratelimit: 'Rate limits', workspace: 'Workspace',
  };
  const DAY = 86400000;
  const PRESETS = [
    { id: '1h', label: 'Last hour', ms: 3600000 },
    { id: '24h', label: 'Last 24 hours', ms: DAY },
    { id: '7d', label: 'Last 7 days', ms: 7 * DAY },
    { id: '30d', label: 'Last 30 days', ms: 30 * DAY },
    { id: '90d', label: 'Last 90 days', ms: 90 * DAY },
  ];
  const PAGE_SIZE = 50;
  const TOKEN_KEY = 'auditlog.token';
  const ACTOR_LABELS = { user: 'User', root_key: 'Root key', system: 'System' };
  /** URL query parameters that are filters (same names as the API's). */
  const FILTER_KEYS = ['event', 'actor_type', 'actor_id', 'outcome', 'q', 'range', 'since', 'until',
    'correlation_id', 'target_type', 'target_id', 'bucket'];

  // ---------------------------------------------------------------- small helpers

  const $ = (id) => document.getElementById(id);

  /** Creates an element: h('td', {class: 'x', onclick: fn}, child, 'text', ...). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) {
      if (c == null || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  function debounce(fn, ms) {
    let t;
    return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
  }

  const capitalize = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

  /** `key.create` -> `Create`; `workspace.member_add` -> `Add`; `key.verify_failed` -> `Verify`. */
  function actionOf(eventType) {
    const action = eventType.includes('.') ? eventType.slice(eventType.indexOf('.') + 1) : eventType;
    const special = { verify_failed: 'Verify', override_set: 'Set' };
    if (special[action]) return special[action];
    const words = action.split('_');
    return capitalize(words[words.length - 1]);
  }

  /** Colour family for an action pill. */
  function actionTone(action) {
    const a = action.toLowerCase();
    if (['create', 'add', 'assign', 'attach'].includes(a)) return 'green';
    if (['delete', 'remove', 'revoke'].includes(a)) return 'red';
    if (['unassign', 'detach'].includes(a)) return 'amber';
    if (a === 'verify') return 'amber';
    return 'blue';
  }

  const resourceOf = (t) => (t.includes('.') ? t.slice(0, t.indexOf('.')) : t);

  const fmtCount = new Intl.NumberFormat();
  const fmtTime = new Intl.DateTimeFormat(undefined, {
    month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
  const fmtTimeYear = new Intl.DateTimeFormat(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
  const fmtFull = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'long' });
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

  function localTime(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    return (d.getFullYear() === new Date().getFullYear() ? fmtTime : fmtTimeYear).format(d);
  }

  /** `2026-11-25 22:14:05.123 UTC`. */
  function utcTime(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    return d.toISOString().replace('T', ' ').replace('Z', ' UTC');
  }

  function relativeTime(iso) {
    const diff = (new Date(iso).getTime() - Date.now()) / 1000;
    const abs = Math.abs(diff);
    if (abs < 45) return 'just now';
    if (abs < 3600) return rtf.format(Math.round(diff / 60), 'minute');
    if (abs < 86400) return rtf.format(Math.round(diff / 3600), 'hour');
    if (abs < 30 * 86400) return rtf.format(Math.round(diff / 86400), 'day');
    return rtf.format(Math.round(diff / (30 * 86400)), 'month');
  }

  /** `<input type=datetime-local>` value (local time) <-> Date. */
  function toLocalInput(d) {
    const pad = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function fromLocalInput(v) {
    if (!v) return null;
    const d = new Date(v);
    return Number.isNaN(d.getTime()) ? null : d;
  }

  function initials(name, id) {
    const src = (name || id || '?').trim();
    const parts = src.split(/[\s._@-]+/).filter(Boolean);
    return ((parts[0] || '?')[0] + (parts.length > 1 ? parts[1][0] : '')).toUpperCase();
  }

  async function copyText(text, label) {
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
      } else {
        const ta = h('textarea', { class: 'offscreen', readonly: true });
        ta.value = text;
        document.body.append(ta);
        ta.select();
        document.execCommand('copy');
        ta.remove();
      }
      toast(`${label || 'Text'} copied`);
    } catch {
      toast('Copy failed: your browser blocked clipboard access');
    }
  }

  let toastTimer;
  function toast(message) {
    const t = $('toast');
    t.textContent = message;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 2200);
  }

  // ---------------------------------------------------------------- state

  const state = {
    token: null,
    workspace: null, // {workspace_id, plan, retention_days}
    filters: {}, // from the URL, see FILTER_KEYS; `event` is an array
    openId: null, // event id shown in the detail panel
    rows: [],
    cursor: null,
    done: false,
    loading: false,
    error: null,
    generation: 0, // bumps on every new view: late answers for an old view are dropped
    params: null, // the API parameters of the current view (resolved time range)
    counts: null, // Map event type -> count (facet counts: every filter but `event`)
    total: null, // matching events in the current view
    selected: -1, // index of the focused row
  };

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, code, message, retryAfter) {
      super(message);
      this.status = status;
      this.code = code;
      this.retryAfter = retryAfter;
    }
  }

  /** Requests in flight, mirrored on <html data-busy> (tests and styles can wait for 0). */
  let inFlight = 0;
  function busy(delta) {
    inFlight += delta;
    document.documentElement.dataset.busy = String(inFlight);
  }

  /**
   * GET an API path with the bearer token and read the body (`json`, or `blob` with the
   * response headers); throws ApiError with the API's error body.
   */
  async function api(path, params, { token = state.token, as = 'json' } = {}) {
    busy(1);
    try {
      const res = await request(path, params, token);
      if (as === 'blob') return { blob: await res.blob(), headers: res.headers };
      return await res.json();
    } finally {
      busy(-1);
    }
  }

  async function request(path, params, token) {
    const url = new URL(path, window.location.origin);
    for (const [k, v] of Object.entries(params || {})) {
      if (v != null && v !== '') url.searchParams.set(k, v);
    }
    let res;
    try {
      res = await fetch(url, {
        headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
        cache: 'no-store',
      });
    } catch {
      throw new ApiError(0, 'network', 'Could not reach the server. Check your connection and try again.');
    }
    if (!res.ok) {
      let body = null;
      try { body = await res.json(); } catch { /* not JSON */ }
      const err = (body && body.error) || {};
      throw new ApiError(res.status, err.code || `http_${res.status}`,
        err.message || `${res.status} ${res.statusText}`, res.headers.get('Retry-After'));
    }
    return res;
  }


  /** A rejected token: back to the sign-in form with an explanation. */
  function handleAuthError(err) {
    if (err instanceof ApiError && err.status === 401) {
      signOut('Your token was rejected: it is invalid, expired or revoked. Enter another token to continue.');
      return true;
    }
    return false;
  }

  function describeError(err) {
    if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
    if (err.status === 503) {
      const wait = err.retryAfter ? ` Try again in ${err.retryAfter} s.` : '';
      return `The audit log is temporarily unavailable.${wait}`;
    }
    return err.message;
  }

  // ---------------------------------------------------------------- token storage

  function storedToken() {
    return sessionStorage.getItem(TOKEN_KEY) || localStorage.getItem(TOKEN_KEY);
  }
  function storeToken(token, remember) {
    sessionStorage.setItem(TOKEN_KEY, token);
    if (remember) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  }
  function clearToken() {
    sessionStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(TOKEN_KEY);
  }

  // ---------------------------------------------------------------- URL <-> filters

  function readUrl() {
    const sp = new URLSearchParams(window.location.search);
    const f = {};
    for (const k of FILTER_KEYS) {
      const v = sp.get(k);
      if (v) f[k] = v;
    }
    f.event = f.event ? f.event.split(',').map((s) => s.trim()).filter(Boolean) : [];
    state.filters = f;
    state.openId = sp.get('open') || null;
  }

  function writeUrl(push) {
    const sp = new URLSearchParams();
    for (const k of FILTER_KEYS) {
      const v = k === 'event' ? state.filters.event.join(',') : state.filters[k];
      if (v) sp.set(k, v);
    }
    if (state.openId) sp.set('open', state.openId);
    const qs = sp.toString().replace(/%2C/g, ',').replace(/%2A/g, '*').replace(/%3A/g, ':');
    const url = `${window.location.pathname}${qs ? `?${qs}` : ''}`;
    if (url === `${window.location.pathname}${window.location.search}`) return;
    if (push) window.history.pushState(null, '', url);
    else window.history.replaceState(null, '', url);
  }

  // ---------------------------------------------------------------- retention and time range

  /** Milliseconds the plan keeps, or Infinity. */
  function retentionMs() {
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

  /** The current filters as API parameters (no cursor/limit). */
  function apiParams({ withEvent = true } = {}) {
    const f = state.filters;
    const p = {
      actor_type: f.actor_type, actor_id: f.actor_id, outcome: f.outcome, q: f.q,
      correlation_id: f.correlation_id, target_type: f.target_type, target_id: f.target_id, bucket: f.bucket,
      ...resolveRange(Date.now()),
    };
    if (withEvent && f.event.length) p.event = f.event.join(',');
    return p;
  }

  function retentionLabel() {
    const ws = state.workspace;
    if (!ws) return '';
    const plan = capitalize(ws.plan || 'unknown');
    if (ws.retention_days == null) return `Retention: unlimited on ${plan}`;
    const d = ws.retention_days;
    return `Retention: ${fmtCount.format(d)} day${d === 1 ? '' : 's'} on ${plan}`;
  }

  function renderRangeOptions() {
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
  function normalizeRange() {
    const f = state.filters;
    const preset = PRESETS.find((p) => p.id === f.range);
    if (f.range !== 'custom' && (!preset || preset.ms > retentionMs())) delete f.range;
    if (f.range !== 'custom') {
      delete f.since;
      delete f.until;
    }
  }

  // ---------------------------------------------------------------- filter controls

  function syncControls() {
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

  function clearFilters() {
    state.filters = { event: [] };
    applyFilters(true);
  }

  /** Every known event type grouped by resource, with facet counts. */
  function renderEventGroups() {
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
    const order = Object.keys(RESOURCE_LABELS);
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

  function toggleEventPanel(open) {
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
  function applyFilters(push) {
    normalizeRange();
    writeUrl(push);
    syncControls();
    reload();
  }

  // ---------------------------------------------------------------- loading the table

  function reload() {
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

  async function loadMore() {
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

  function svgIcon(d) {
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('viewBox', '0 0 20 20');
    const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
    path.setAttribute('d', d);
    svg.append(path);
    return svg;
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

  // ---------------------------------------------------------------- keyboard navigation in the table

  function rowEl(index) {
    return $('rows').querySelector(`tr[data-index="${index}"]`);
  }

  function select(index, focus = true) {
    if (index < 0 || index >= state.rows.length) return;
    const prev = rowEl(state.selected);
    if (prev) { prev.classList.remove('selected'); prev.tabIndex = -1; }
    state.selected = index;
    const el = rowEl(index);
    if (!el) return;
    el.classList.add('selected');
    el.tabIndex = 0;
    if (focus) {
      el.focus({ preventScroll: true });
      el.scrollIntoView({ block: 'nearest' });
    }
    if (index >= state.rows.length - 5) loadMore();
  }

  function move(delta) {
    const next = state.selected < 0 ? 0 : state.selected + delta;
    if (next >= state.rows.length) { loadMore(); return; }
    select(Math.max(0, next));
    if (!$('detail').hidden) openDetail(state.rows[state.selected].event_id, { keepFocus: true });
  }

  function onKey(e) {
    if (!state.token || $('app').hidden) return;
    const target = e.target;
    const typing = target.matches('input, select, textarea') || target.isContentEditable;
    if (e.key === 'Escape') {
      if (!$('event-panel').hidden) { toggleEventPanel(false); $('event-btn').focus(); e.preventDefault(); return; }
      if (!$('detail').hidden) { closeDetail(); e.preventDefault(); return; }
      if (typing) target.blur();
      return;
    }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === '/') { e.preventDefault(); $('q').focus(); $('q').select(); return; }
    const inDetail = target.closest && target.closest('#detail');
    if (inDetail && ['ArrowDown', 'ArrowUp'].includes(e.key)) return; // let the panel scroll
    if (e.key === 'ArrowDown' || e.key === 'j') { e.preventDefault(); move(1); } else if (e.key === 'ArrowUp' || e.key === 'k') {
      e.preventDefault(); move(-1);
    } else if (e.key === 'Enter' && target.matches('tr[data-index]')) {
      e.preventDefault();
      openDetail(state.rows[Number(target.dataset.index)].event_id);
    }
  }

  // ---------------------------------------------------------------- detail panel

  let detailGen = 0;
  let detailEvent = null;

  function highlightOpen() {
    for (const tr of $('rows').querySelectorAll('tr.open')) tr.classList.remove('open');
    if (!state.openId) return;
    const tr = $('rows').querySelector(`tr[data-event-id="${CSS.escape(state.openId)}"]`);
    if (tr) tr.classList.add('open');
  }

  async function openDetail(id, { keepFocus = false } = {}) {
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

  function closeDetail() {
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
        field('Schema version', ev.version != null ? String(ev.version) : null))),
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

  // ---------------------------------------------------------------- JSON viewer

  /** A collapsible, copyable, pretty-printed JSON block. */
  function jsonBlock(title, value, { big = false } = {}) {
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

  // ---------------------------------------------------------------- export

  async function exportCsv() {
    const btn = $('export');
    if (btn.disabled) return;
    btn.disabled = true;
    btn.classList.add('busy');
    const label = btn.querySelector('span');
    label.textContent = 'Exporting…';
    try {
      const { blob, headers } = await api('/v1/export', { format: 'csv', ...(state.params || apiParams()) }, { as: 'blob' });
      const disposition = headers.get('Content-Disposition') || '';
      const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
      const name = match ? decodeURIComponent(match[1]) : `audit-log-${state.workspace ? state.workspace.workspace_id : 'export'}.csv`;
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: name, class: 'offscreen' });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      toast(`Exported ${name}`);
    } catch (err) {
      if (!handleAuthError(err)) toast(`Export failed: ${describeError(err)}`);
    } finally {
      btn.disabled = false;
      btn.classList.remove('busy');
      label.textContent = 'Export CSV';
    }
  }

  // ---------------------------------------------------------------- sign-in

  function showSignin(message) {
    $('app').hidden = true;
    $('signin').hidden = false;
    const err = $('signin-error');
    err.hidden = !message;
    err.textContent = message || '';
    $('token-input').value = '';
    $('token-input').focus();
  }

  function signOut(message) {
    state.token = null;
    state.workspace = null;
    state.generation += 1;
    clearToken();
    closeDetail();
    showSignin(message);
  }

  async function signIn(token, remember) {
    const btn = $('signin-submit');
    btn.disabled = true;
    btn.textContent = 'Signing in…';
    try {
      const ws = await api('/v1/workspace', null, { token });
      state.token = token;
      storeToken(token, remember);
      await start(ws);
    } catch (err) {
      const msg = err.status === 401
        ? 'This token was not accepted: it is invalid, expired or revoked.'
        : `Could not sign in: ${describeError(err)}`;
      showSignin(msg);
    } finally {
      btn.disabled = false;
      btn.textContent = 'Sign in';
    }
  }

  async function start(ws) {
    state.workspace = ws;
    $('signin').hidden = true;
    $('app').hidden = false;
    $('workspace').textContent = ws.workspace_id;
    $('retention').textContent = retentionLabel();
    renderRangeOptions();
    readUrl();
    normalizeRange();
    writeUrl(false);
    syncControls();
    reload();
    if (state.openId) openDetail(state.openId, { keepFocus: true });
  }

  // ---------------------------------------------------------------- wiring

  function wire() {
    $('signin-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const token = $('token-input').value.trim();
      if (token) signIn(token, $('remember').checked);
    });
    $('signout').addEventListener('click', () => signOut(null));

    const onSearch = debounce(() => {
      state.filters.q = $('q').value.trim();
      applyFilters(false);
    }, 300);
    $('q').addEventListener('input', onSearch);
    $('q').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); $('q').blur(); } });

    $('actor-type').addEventListener('change', () => { state.filters.actor_type = $('actor-type').value; applyFilters(true); });
    $('actor-id').addEventListener('change', () => { state.filters.actor_id = $('actor-id').value.trim(); applyFilters(true); });
    $('outcome').addEventListener('change', () => { state.filters.outcome = $('outcome').value; applyFilters(true); });
    $('range').addEventListener('change', () => {
      const v = $('range').value;
      state.filters.range = v;
      if (v === 'custom') {
        // Start the custom range from what the user was looking at.
        const now = Date.now();
        const floor = Number.isFinite(retentionMs()) ? now - retentionMs() : now - 7 * DAY;
        state.filters.since = new Date(Math.max(floor, now - DAY)).toISOString();
        delete state.filters.until;
      }
      applyFilters(true);
    });
    const onCustom = () => {
      const s = fromLocalInput($('since').value);
      const u = fromLocalInput($('until').value);
      const floor = Date.now() - retentionMs();
      if (s && s.getTime() < floor) {
        toast(`Start moved to the oldest retained time (${retentionLabel()})`);
      }
      state.filters.since = s ? new Date(Math.max(s.getTime(), floor)).toISOString() : undefined;
      state.filters.until = u ? u.toISOString() : undefined;
      applyFilters(true);
    };
    $('since').addEventListener('change', onCustom);
    $('until').addEventListener('change', onCustom);

    $('event-btn').addEventListener('click', () => toggleEventPanel());
    $('event-search').addEventListener('input', renderEventGroups);
    $('event-clear').addEventListener('click', () => { state.filters.event = []; applyFilters(true); });
    document.addEventListener('click', (e) => {
      if (!$('event-panel').hidden && !e.target.closest('.popover-wrap')) toggleEventPanel(false);
    });

    $('refresh').addEventListener('click', () => reload());
    $('export').addEventListener('click', exportCsv);
    $('detail-close').addEventListener('click', closeDetail);
    $('scrim').addEventListener('click', closeDetail);
    $('detail-copy').addEventListener('click', () => { if (detailEvent) copyText(JSON.stringify(detailEvent, null, 2), 'Event JSON'); });
    document.addEventListener('keydown', onKey);

    window.addEventListener('popstate', () => {
      if (!state.token) return;
      readUrl();
      normalizeRange();
      syncControls();
      reload();
      if (state.openId) openDetail(state.openId, { keepFocus: true });
      else closeDetail();
    });

    // "5 minutes ago" stays true while the page is open.
    setInterval(() => {
      for (const el of document.querySelectorAll('#rows .ago')) el.textContent = relativeTime(el.dataset.time);
    }, 60000);

    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) loadMore();
    }, { rootMargin: '300px 0px' }).observe($('sentinel'));
  }

  async function boot() {
    wire();
    // A token in the URL is refused outright: strip it so it is not kept in history.
    const sp = new URLSearchParams(window.location.search);
    if (sp.has('token')) {
      sp.delete('token');
      const qs = sp.toString();
      window.history.replaceState(null, '', window.location.pathname + (qs ? `?${qs}` : ''));
    }
    const token = storedToken();
    if (!token) { showSignin(null); return; }
    try {
      const ws = await api('/v1/workspace', null, { token });
      state.token = token;
      await start(ws);
    } catch (err) {
      if (err.status === 401) {
        clearToken();
        showSignin('Your token was rejected: it is invalid, expired or revoked. Enter another token to continue.');
      } else {
        showSignin(`Could not reach the audit log: ${describeError(err)}`);
      }
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
