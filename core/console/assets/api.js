// The REST API through the console's session: the cookie authenticates,
// and every state-changing call carries the session's CSRF token (kept in
// this module's memory only, never in storage or the URL).
let csrf = null;
let onSignedOut = () => {};

export class APIError extends Error {
  constructor(status, code, msg) { super(msg); this.status = status; this.code = code; }
}

export function setSignedOutHandler(fn) { onSignedOut = fn; }

async function send(method, path, body, headers = {}) {
  const h = { 'Accept': 'application/json', ...headers };
  if (method !== 'GET' && method !== 'HEAD' && csrf && !h.Authorization) h['X-CSRF-Token'] = csrf;
  let payload;
  if (body !== undefined) { h['Content-Type'] = 'application/json'; payload = JSON.stringify(body); }
  const res = await fetch(path, { method, headers: h, body: payload, credentials: 'same-origin', cache: 'no-store' });
  let env = null;
  try { env = await res.json(); } catch (_) { /* not an envelope */ }
  if (!res.ok || !env || env.code !== 0) {
    const msg = env && env.msg ? env.msg : `${method} ${path}: HTTP ${res.status}`;
    if (res.status === 401 && !h.Authorization) { csrf = null; onSignedOut(msg); }
    throw new APIError(res.status, env ? env.code : res.status, msg);
  }
  return env.data;
}

export const get = (path) => send('GET', path);
export const post = (path, body) => send('POST', path, body === undefined ? {} : body);
export const put = (path, body) => send('PUT', path, body);
export const del = (path) => send('DELETE', path);

// signIn opens a session with an API token: the token goes once, in the
// Authorization header, and is dropped by the caller at once.
export async function signIn(token) {
  const s = await send('POST', '/api/session', undefined, { Authorization: 'Bearer ' + token });
  csrf = s.csrfToken;
  return s;
}

// session returns who is signed in (and keeps the CSRF token), or null.
export async function session() {
  try {
    const s = await send('GET', '/api/session', undefined, {});
    csrf = s.csrfToken;
    return s;
  } catch (e) {
    if (e.status === 401) return null;
    throw e;
  }
}

export async function signOut() {
  try { await del('/api/session'); } finally { csrf = null; }
}
