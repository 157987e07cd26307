// The API key the editor signs in with, and who it stands for. The key is kept in this
// tab's sessionStorage only (never localStorage, a cookie or the address), so it is gone
// when the tab closes or the planner signs out. api.js sends it with every fetch and
// mapview.js with every tile and TileJSON request, as `Authorization: Bearer KEY`, and
// only to this server's own origin.

const KEY = "wangge.apiKey";
const NOTICE = "wangge.signinNotice"; // what the sign-in form says after a reload
let memory = null; // when sessionStorage is unavailable (some privacy modes)

function storage() {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

export function currentKey() {
  const s = storage();
  return (s ? s.getItem(KEY) : memory) || null;
}

export function remember(key) {
  memory = key;
  storage()?.setItem(KEY, key);
}

export function forget() {
  memory = null;
  storage()?.removeItem(KEY);
}

// A note for the sign-in form shown after the page reloads: {kind: "expired" |
// "signedOut", message}. Read once.
export function leaveNotice(kind, message = "") {
  storage()?.setItem(NOTICE, JSON.stringify({ kind, message }));
}

export function takeNotice() {
  const s = storage();
  const raw = s?.getItem(NOTICE);
  s?.removeItem(NOTICE);
  try {
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

export function sameOrigin(url) {
  try {
    return new URL(url, location.href).origin === location.origin;
  } catch {
    return false;
  }
}

// The headers that sign a request to ``url`` in: none without a key or off this origin.
export function authHeaders(url, key = currentKey()) {
  return key && sameOrigin(url) ? { Authorization: `Bearer ${key}` } : {};
}

// What an account may change. me: GET /me ({name, role, scopes, expires_at}).
export function canWrite(me) {
  return !!me && (me.role === "admin" || me.role === "planner");
}

// Whether the grid (or unit, micro-grid) ``code`` lies in the account's territory: all of
// them for an admin, those under one of its code prefixes for a planner, none for a viewer.
export function covers(me, code) {
  if (!canWrite(me)) return false;
  if (me.role === "admin") return true;
  const c = String(code);
  return (me.scopes || []).some((prefix) => c.startsWith(prefix));
}
