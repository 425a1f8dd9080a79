// The HTTP client: every call of the API goes through `api`, which sends the session token as a
// bearer header (never in a URL), parses the JSON answer, and turns the API's JSON errors
// (`{"error": {"code", "message", "field"}}`) into `ApiError`s whose message people can read.

import { t, locale } from './i18n.js';

const TOKEN = 'mh.token';

/** The session token, kept in this browser's storage. */
export function token() {
  return localStorage.getItem(TOKEN);
}

export function setToken(value) {
  if (value) localStorage.setItem(TOKEN, value);
  else localStorage.removeItem(TOKEN);
}

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

let onSignedOut = () => {};
/** What to do when the server says the session is gone (401). */
export function whenSignedOut(f) {
  onSignedOut = f;
}

/** Calls the API; resolves with the JSON body (null when empty), rejects with an ApiError. */
export async function api(method, path, body, extra = {}) {
  const headers = { accept: 'application/json', 'accept-language': locale(), ...extra };
  const tok = token();
  if (tok) headers.authorization = `Bearer ${tok}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'offline', t('error.offline'));
  }
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!res.ok) {
    const e = (json && json.error) || {};
    if (res.status === 401 && tok && path !== '/api/v1/sessions') onSignedOut();
    const message = e.message || t('error.status', { status: res.status });
    throw new ApiError(res.status, e.code || 'http_' + res.status,
      e.field ? `${e.field}: ${message}` : message, e.field);
  }
  return json;
}

export const get = (p) => api('GET', p);
export const post = (p, b = {}, headers = {}) => api('POST', p, b, headers);
export const put = (p, b = {}) => api('PUT', p, b);
export const del = (p) => api('DELETE', p);

/** `s` safe inside a path segment. */
export const seg = (s) => encodeURIComponent(s);

/** A fresh idempotency key: 128 random bits in hex (`crypto.randomUUID` needs a secure context;
 * `getRandomValues` does not). */
export function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Whether a failed call may have been lost on the way (no answer, or a gateway's): worth sending
 * again with the same idempotency key. */
export const retriable = (e) => e instanceof ApiError && (e.status === 0 || e.status === 502 || e.status === 503 || e.status === 504);

/** `POST`s `body` with an `Idempotency-Key`, sending it again (same key) after a lost answer,
 * up to `tries` times with growing pauses: the server stores it once whatever happened. */
export async function postOnce(p, body, key, { tries = 4, pause = 500 } = {}) {
  for (let i = 1; ; i++) {
    try {
      return await post(p, body, { 'idempotency-key': key });
    } catch (e) {
      if (i >= tries || !retriable(e)) throw e;
      await new Promise((r) => setTimeout(r, pause * 2 ** (i - 1)));
    }
  }
}
