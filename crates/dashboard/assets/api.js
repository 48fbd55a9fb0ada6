// The API client: GET with the bearer token; the API's error body becomes an ApiError.

import { state } from './state.js?v=__ASSET_VERSION__';

export class ApiError extends Error {
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
export async function api(path, params, { token = state.token, as = 'json' } = {}) {
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

export function describeError(err) {
  if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
  if (err.status === 503) {
    const wait = err.retryAfter ? ` Try again in ${err.retryAfter} s.` : '';
    return `The audit log is temporarily unavailable.${wait}`;
  }
  return err.message;
}
