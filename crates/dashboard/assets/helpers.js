// Small helpers: building elements, formatting times and counts, naming actions, clipboard, toast.

export const $ = (id) => document.getElementById(id);

/** Creates an element: h('td', {class: 'x', onclick: fn}, child, 'text', ...). */
export function h(tag, attrs, ...children) {
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

export function debounce(fn, ms) {
  let t;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

export const capitalize = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

/** `key.create` -> `Create`; `workspace.member_add` -> `Add`; `key.verify_failed` -> `Verify`. */
export function actionOf(eventType) {
  const action = eventType.includes('.') ? eventType.slice(eventType.indexOf('.') + 1) : eventType;
  const special = { verify_failed: 'Verify', override_set: 'Set' };
  if (special[action]) return special[action];
  const words = action.split('_');
  return capitalize(words[words.length - 1]);
}

/** Colour family for an action pill. */
export function actionTone(action) {
  const a = action.toLowerCase();
  if (['create', 'add', 'assign', 'attach'].includes(a)) return 'green';
  if (['delete', 'remove', 'revoke'].includes(a)) return 'red';
  if (['unassign', 'detach'].includes(a)) return 'amber';
  if (a === 'verify') return 'amber';
  return 'blue';
}

export const resourceOf = (t) => (t.includes('.') ? t.slice(0, t.indexOf('.')) : t);

export const fmtCount = new Intl.NumberFormat();
const fmtTime = new Intl.DateTimeFormat(undefined, {
  month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
});
const fmtTimeYear = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
});
export const fmtFull = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'long' });
const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export function localTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return (d.getFullYear() === new Date().getFullYear() ? fmtTime : fmtTimeYear).format(d);
}

/** `2026-11-25 22:14:05.123 UTC`. */
export function utcTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().replace('T', ' ').replace('Z', ' UTC');
}

export function relativeTime(iso) {
  const diff = (new Date(iso).getTime() - Date.now()) / 1000;
  const abs = Math.abs(diff);
  if (abs < 45) return 'just now';
  if (abs < 3600) return rtf.format(Math.round(diff / 60), 'minute');
  if (abs < 86400) return rtf.format(Math.round(diff / 3600), 'hour');
  if (abs < 30 * 86400) return rtf.format(Math.round(diff / 86400), 'day');
  return rtf.format(Math.round(diff / (30 * 86400)), 'month');
}

/** `<input type=datetime-local>` value (local time) <-> Date. */
export function toLocalInput(d) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
export function fromLocalInput(v) {
  if (!v) return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function initials(name, id) {
  const src = (name || id || '?').trim();
  const parts = src.split(/[\s._@-]+/).filter(Boolean);
  return ((parts[0] || '?')[0] + (parts.length > 1 ? parts[1][0] : '')).toUpperCase();
}

export async function copyText(text, label) {
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
export function toast(message) {
  const t = $('toast');
  t.textContent = message;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 2200);
}

export function svgIcon(d) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 20 20');
  const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  path.setAttribute('d', d);
  svg.append(path);
  return svg;
}
