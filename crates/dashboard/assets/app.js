// The audit-log viewer. Plain JS modules, no build step: it talks to the API on the same origin
// (`/v1/...`, see docs/dashboard.md) with the workspace token kept in session/local storage.
//
// This is the entry module (index.html loads it as `<script type="module">`): it wires the
// controls and boots. The other modules hold one section each and import each other, cycles
// included (the table opens the detail panel, which filters the table): nothing but constants
// runs when a module loads, so every import is bound before it is called. Every import carries
// `?v=__ASSET_VERSION__`, which the server replaces with its assets' version: a page loads one
// binary's modules, each once.

import { DAY } from './constants.js?v=__ASSET_VERSION__';
import { $, debounce, relativeTime, fromLocalInput, toast } from './helpers.js?v=__ASSET_VERSION__';
import { state } from './state.js?v=__ASSET_VERSION__';
import { api, describeError } from './api.js?v=__ASSET_VERSION__';
import { storedToken, clearToken } from './token.js?v=__ASSET_VERSION__';
import { readUrl } from './url.js?v=__ASSET_VERSION__';
import { retentionMs, retentionLabel, normalizeRange } from './range.js?v=__ASSET_VERSION__';
import { renderActorTypes, syncControls, renderEventGroups, toggleEventPanel, applyFilters } from './filters.js?v=__ASSET_VERSION__';
import { reload, loadMore } from './list.js?v=__ASSET_VERSION__';
import { onKey } from './keyboard.js?v=__ASSET_VERSION__';
import { openDetail, copyDetailEvent, closeDetail } from './detail.js?v=__ASSET_VERSION__';
import { exportCsv } from './export.js?v=__ASSET_VERSION__';
import { showSignin, signOut, signIn, start } from './signin.js?v=__ASSET_VERSION__';
import { refresh as refreshStreams, onVisibilityChange } from './streams.js?v=__ASSET_VERSION__';
import { refresh as refreshLog } from './logview.js?v=__ASSET_VERSION__';
import { syncView, showView, shownView, requestedView, VIEW_NAMES } from './views.js?v=__ASSET_VERSION__';

function wire() {
  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = $('token-input').value.trim();
    const view = requestedView();
    if (token) signIn(token, $('remember').checked).then(() => syncView(view));
  });
  $('signout').addEventListener('click', () => signOut(null));
  for (const name of VIEW_NAMES) {
    $(`nav-${name}`).addEventListener('click', (e) => { e.preventDefault(); showView(name); });
  }
  $('streams-refresh').addEventListener('click', () => refreshStreams());
  $('log-refresh').addEventListener('click', () => refreshLog());
  document.addEventListener('visibilitychange', onVisibilityChange);

  const onSearch = debounce(() => {
    state.filters.q = $('q').value.trim();
    applyFilters(false);
  }, 300);
  $('q').addEventListener('input', onSearch);
  $('q').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); $('q').blur(); } });

  renderActorTypes();
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
  $('detail-copy').addEventListener('click', copyDetailEvent);
  // The table's shortcuts belong to the events view.
  document.addEventListener('keydown', (e) => { if (shownView() === 'events') onKey(e); });

  window.addEventListener('popstate', () => {
    if (!state.token) return;
    syncView();
    if (requestedView() !== 'events') return;
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
    const view = requestedView();
    await start(ws);
    syncView(view);
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
