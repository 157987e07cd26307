// The editor's state: who is signed in, what the server said of the plan version on
// screen, the selection and the undo/redo stacks. window.wanggeEditor is this object, so
// that tests can poll it (it never holds the API key).

import { canWrite, covers } from "./auth.js";

const params = new URLSearchParams(location.search);

export const S = {
  ready: false, // map loaded, state fetched, tiles of the current version drawn
  me: null, // the signed-in account: {name, role, scopes, expires_at} (GET /me)
  plan: params.get("plan") || null,
  version: null,
  name: "",
  editable: true,
  latest: null,
  latestLoaded: true,
  lang: "zh",
  mode: "select",
  moveMode: false,
  selected: [],
  grids: {},
  communities: {},
  violations: [],
  locks: [],
  limits: null,
  bbox: null,
  changed: [],
  diff: null,
  versions: [],
  busy: false,
  lastError: null,
  conflict: false,
  undo: 0,
  redo: 0,
  renderedVersion: null,
  lastWrite: null,
  message: "",
};
window.wanggeEditor = S;

export const selection = new Map(); // unit code → {grid, micro, households, building_id}
export const undoStack = [];
export const redoStack = [];

// adopt GET /plans/{id}/state
export function applyState(st) {
  S.plan = st.plan ?? S.plan;
  S.version = st.version;
  S.name = st.name || "";
  S.limits = st.limits || S.limits;
  S.locks = [...(st.locks || [])];
  S.bbox = st.bbox || S.bbox;
  const locks = new Set(S.locks);
  S.grids = {};
  for (const g of st.grids || []) {
    S.grids[g.code] = { ...g, locked: g.locked ?? locks.has(g.code) };
  }
  S.communities = {};
  for (const c of st.communities || []) S.communities[c.code] = c;
  S.violations = st.violations || [];
  if (st.editable !== undefined) S.editable = !!st.editable;
}

// adopt GET /plans/{id}/versions: a version older than the latest is read-only
export function applyVersions(list) {
  S.versions = list || [];
  const last = S.versions[S.versions.length - 1];
  if (last) S.latest = Math.max(S.latest || 0, last.version);
  S.latestLoaded = S.latest === null || S.version >= S.latest;
  if (S.latest !== null && S.version < S.latest) S.editable = false;
}

// May the signed-in account change anything, and this grid (unit, micro-grid) in particular?
export const mayWrite = () => canWrite(S.me);
export const writable = (code) => covers(S.me, code);

// what the selection is: its units, households, grids and the grids it may move to
// (those outside the account's territory are listed, marked read-only)
export function selectionInfo() {
  const units = [...selection.keys()];
  let households = 0;
  const grids = new Set();
  for (const u of selection.values()) {
    households += u.households;
    grids.add(u.grid);
  }
  const targets = new Map();
  for (const code of grids) {
    for (const n of S.grids[code]?.neighbours || []) {
      if (!grids.has(n) && S.grids[n]) targets.set(n, 0);
    }
  }
  for (const code of targets.keys()) {
    let gain = 0;
    for (const u of selection.values()) if (u.grid !== code) gain += u.households;
    targets.set(code, S.grids[code].households + gain);
  }
  return {
    units,
    households,
    grids: [...grids].sort(),
    targets: [...targets]
      .map(([code, after]) => ({ code, after, readonly: !writable(code) }))
      .sort((a, b) => a.code.localeCompare(b.code)),
    sourceLocked: [...grids].some((c) => S.grids[c]?.locked),
  };
}
