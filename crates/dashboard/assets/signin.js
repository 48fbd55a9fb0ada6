// Sign-in and sign-out; a token the API rejects (401) anywhere leads back here.

import { $ } from './helpers.js?v=__ASSET_VERSION__';
import { state } from './state.js?v=__ASSET_VERSION__';
import { ApiError, api, describeError } from './api.js?v=__ASSET_VERSION__';
import { storeToken, clearToken } from './token.js?v=__ASSET_VERSION__';
import { readUrl, writeUrl } from './url.js?v=__ASSET_VERSION__';
import { retentionLabel, renderRangeOptions, normalizeRange } from './range.js?v=__ASSET_VERSION__';
import { syncControls } from './filters.js?v=__ASSET_VERSION__';
import { reload } from './list.js?v=__ASSET_VERSION__';
import { openDetail, closeDetail } from './detail.js?v=__ASSET_VERSION__';

/** A rejected token: back to the sign-in form with an explanation. */
export function handleAuthError(err) {
  if (err instanceof ApiError && err.status === 401) {
    signOut('Your token was rejected: it is invalid, expired or revoked. Enter another token to continue.');
    return true;
  }
  return false;
}

export function showSignin(message) {
  $('app').hidden = true;
  $('signin').hidden = false;
  const err = $('signin-error');
  err.hidden = !message;
  err.textContent = message || '';
  $('token-input').value = '';
  $('token-input').focus();
}

export function signOut(message) {
  state.token = null;
  state.workspace = null;
  state.generation += 1;
  clearToken();
  closeDetail();
  showSignin(message);
}

export async function signIn(token, remember) {
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

export async function start(ws) {
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
