// Keyboard navigation in the table.

import { $ } from './helpers.js?v=__ASSET_VERSION__';
import { state } from './state.js?v=__ASSET_VERSION__';
import { toggleEventPanel } from './filters.js?v=__ASSET_VERSION__';
import { loadMore } from './list.js?v=__ASSET_VERSION__';
import { openDetail, closeDetail } from './detail.js?v=__ASSET_VERSION__';

export function rowEl(index) {
  return $('rows').querySelector(`tr[data-index="${index}"]`);
}

export function select(index, focus = true) {
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

export function onKey(e) {
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
