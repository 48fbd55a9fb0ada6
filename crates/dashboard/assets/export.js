// Export: the current view as CSV, fetched with the token and saved as a file.

import { $, h, toast } from './helpers.js?v=__ASSET_VERSION__';
import { state } from './state.js?v=__ASSET_VERSION__';
import { api, describeError } from './api.js?v=__ASSET_VERSION__';
import { apiParams } from './range.js?v=__ASSET_VERSION__';
import { handleAuthError } from './signin.js?v=__ASSET_VERSION__';

export async function exportCsv() {
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
