// URL <-> filters: a view can be reloaded, bookmarked and shared.

import { FILTER_KEYS } from './contract.js?v=__ASSET_VERSION__';
import { state } from './state.js?v=__ASSET_VERSION__';

export function readUrl() {
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

export function writeUrl(push) {
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
