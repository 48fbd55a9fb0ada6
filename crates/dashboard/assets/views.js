// The page's views: Events (the page without a fragment), Streams (`#streams`) and Log
// (`#log`). The fragment names the view, so a view survives a reload and back/forward.

import { $ } from './helpers.js?v=__ASSET_VERSION__';
import { state } from './state.js?v=__ASSET_VERSION__';
import { refresh as refreshStreams, leave as leaveStreams } from './streams.js?v=__ASSET_VERSION__';
import { refresh as refreshLog, leave as leaveLog } from './logview.js?v=__ASSET_VERSION__';

/** Every view: its fragment, its element, what runs when it is shown or left. */
const VIEWS = {
  events: { hash: '', el: 'events-view', enter: null, leave: null },
  streams: { hash: '#streams', el: 'streams-view', enter: refreshStreams, leave: leaveStreams },
  log: { hash: '#log', el: 'log-view', enter: refreshLog, leave: leaveLog },
};

/** The view the URL asks for. */
export function requestedView() {
  const found = Object.entries(VIEWS).find(([, v]) => v.hash && v.hash === window.location.hash);
  return found ? found[0] : 'events';
}

/** The view on screen. */
export function shownView() {
  const found = Object.entries(VIEWS).find(([, v]) => !$(v.el).hidden);
  return found ? found[0] : 'events';
}

/**
 * Shows the view the URL names (on back/forward), or the one given: sign-in rewrites the query
 * (and with it the fragment), so it passes the view the URL named before.
 */
export function syncView(wanted = requestedView()) {
  const name = state.token != null && VIEWS[wanted] ? wanted : 'events';
  const { hash } = VIEWS[name];
  if (hash && window.location.hash !== hash) {
    window.history.replaceState(null, '', `${window.location.pathname}${window.location.search}${hash}`);
  }
  for (const id of ['filters', 'events-view']) $(id).hidden = name !== 'events';
  for (const [n, v] of Object.entries(VIEWS)) {
    $(v.el).hidden = n !== name;
    $(`nav-${n}`).setAttribute('aria-current', n === name ? 'page' : 'false');
    if (n === name) { if (v.enter) v.enter(); } else if (v.leave) v.leave();
  }
}

/** Switches views by a link: a history entry, then the view. */
export function showView(name) {
  const { pathname, search } = window.location;
  const url = `${pathname}${search}${(VIEWS[name] || VIEWS.events).hash}`;
  if (url !== `${pathname}${search}${window.location.hash}`) window.history.pushState(null, '', url);
  syncView();
}

/** The names of the views, in navigation order. */
export const VIEW_NAMES = Object.keys(VIEWS);
