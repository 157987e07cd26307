// The planner's editor: signing in, actions (move, lock, complete, undo/redo, save,
// compare, restore, export), drawing and wiring. The state (state.js) lives on
// window.wanggeEditor for tests to poll.
//
// Nothing is asked of the API before the key is checked with GET /me. A 401 from any
// request or tile forgets the key and goes back to the sign-in form, which says why; a 403
// shows the server's message. Grids outside the account's territory are read-only here
// as on the server: never the source or target of a move, no lock toggle.

import { ApiError, makeApi } from "./api.js";
import { currentKey, forget, leaveNotice, remember, takeNotice } from "./auth.js";
import { applyI18n, setLang, t } from "./i18n.js";
import { MapView, REQUIRED_LAYERS, TILE_LAYERS, shortName, unitGrid } from "./mapview.js";
import { serverText } from "./messages.js";
import { makeGridInfo } from "./gridinfo.js";
import * as panel from "./panel.js";
import {
  S,
  applyState,
  applyVersions,
  mayWrite,
  redoStack,
  selection,
  selectionInfo,
  undoStack,
  writable,
} from "./state.js";

const ROOT = document.body.dataset.root || "";
const params = new URLSearchParams(location.search);
const $ = (sel) => document.querySelector(sel);

const filter = { text: "", problems: false, changed: false };
let api = null;
let view = null;
let signinMsg = null; // what the sign-in form says: {key, params, kind}
let leaving = false; // the page is reloading to the sign-in form
let inspected = null; // the grid last clicked in the grid list (its name and staff shown)

// the grid whose name and staff are shown: the one grid of the selection, else the one
// last clicked in the grid list
function currentGrid() {
  const grids = selectionInfo().grids;
  return grids.length === 1 ? grids[0] : grids.length ? null : inspected;
}

const gridInfo = makeGridInfo({
  S,
  api: () => api,
  current: currentGrid,
  whyReadonly: (code) => panel.whyReadonly(S, code),
  rename: (code, name) =>
    commit(
      "names",
      api.names,
      { base_version: S.version, names: { [code]: name } },
      (d) => t("msg.renamed", { name, version: d.version.version }),
    ),
});

// --- state ----------------------------------------------------------------------------

// ?street=<9 digits> opens one street of a city: the server reads that street alone
const STREET = params.get("street") || undefined;

async function loadState(version) {
  const { data } = await api.state(version, STREET);
  applyState(data);
}

async function refreshVersions() {
  try {
    const { data } = await api.versions();
    applyVersions(data);
  } catch (err) {
    report(err);
  }
  renderAll();
}

// --- drawing --------------------------------------------------------------------------

function renderAll() {
  const sel = selectionInfo();
  S.selected = sel.units;
  S.undo = undoStack.length;
  S.redo = redoStack.length;
  $("#plan-label").textContent = S.plan && S.me ? `${S.plan} · v${S.version ?? "…"}` : "";
  panel.renderAccount(S);
  panel.renderToolbar(S, sel);
  renderSignin();
  if (S.version === null) return;
  panel.renderSelection(S, sel);
  gridInfo.render();
  panel.renderGrids(S, filter);
  panel.renderChecks(S);
  panel.renderVersions(S);
  panel.renderDiff(S);
  panel.renderStatus(S, sel);
  $("#status-msg").textContent = S.message;
  $("#conflict").hidden = !S.conflict;
  $("#conflict-text").textContent = S.conflict ? t("conflict.msg", { latest: S.latest ?? "?" }) : "";
  $("#readonly").hidden = S.conflict || S.latestLoaded;
  $("#readonly-text").textContent = t("readonly.msg", { version: S.version });
  const showError = S.lastError && S.lastError.status !== 409;
  $("#error").hidden = !showError;
  if (showError) $("#error-text").textContent = S.lastError.text;
  if (!view || !view.layers.length) return;
  view.setSelection(sel.units);
  view.setChanged(S.changed);
  view.setLocks(S.locks);
  view.setDiff(S.diff ? S.diff.moved.map((m) => String(m.unit)) : []);
  view.setChanges(S.diff ? S.diff.changes : null);
  const changed = new Set(S.changed);
  const labels = {};
  for (const [code, g] of Object.entries(S.grids)) {
    const status = panel.gridStatus(g.households, S.limits);
    labels[code] = { ...g, status, changed: changed.has(code), readonly: !writable(code) };
  }
  view.setLabels(labels, t("hh"));
}

function setMessage(text) {
  S.message = text;
  $("#status-msg").textContent = text;
}

function report(err) {
  const status = err instanceof ApiError ? err.status : 0;
  const message = serverText(err.message || String(err));
  let text = t("err.network", { message });
  if (status === 403) text = t("err.forbidden", { message });
  else if (status) text = t("err.http", { status, message });
  S.lastError = { status, message, where: err.body?.where ?? null, text };
  if (!(err instanceof ApiError)) console.error(err);
}

async function handleError(err) {
  report(err);
  if (err instanceof ApiError && err.status === 409) {
    S.conflict = true;
    const latest = err.body?.detail?.latest;
    if (Number.isInteger(latest)) S.latest = latest;
    else {
      try {
        const { data } = await api.versions();
        S.latest = data.length ? data[data.length - 1].version : S.latest;
      } catch {
        // the banner says "?" then
      }
    }
  }
}

// --- writes ---------------------------------------------------------------------------

// Send one write (edits, complete, restore); on success adopt the new version, re-fetch its
// state, point the tiles at it and say what changed. Returns the response body or null.
async function commit(kind, request, body, describe, { keepChanged = false } = {}) {
  if (S.busy) {
    setMessage(t("msg.busy"));
    return null;
  }
  if (S.conflict || !S.editable) return null;
  const why = panel.whyNoWrite(S);
  if (why) {
    setMessage(why);
    return null;
  }
  S.busy = true;
  S.lastError = null;
  renderAll();
  try {
    const { data, ms } = await request(body);
    const version = data.version.version;
    const moved = data.moved || [];
    for (const m of moved) {
      const u = selection.get(String(m.unit));
      if (u) {
        u.grid = String(m.to).slice(0, 15);
        u.micro = String(m.to);
      }
    }
    if (!keepChanged) {
      const changed = new Set(data.completion?.resolved || data.resolved || []);
      for (const m of moved) {
        changed.add(String(m.from).slice(0, 15));
        changed.add(String(m.to).slice(0, 15));
      }
      for (const g of data.grids || []) changed.add(g.code);
      S.changed = [...changed];
    }
    S.version = version;
    S.latest = version;
    S.latestLoaded = true;
    for (const g of data.grids || []) S.grids[g.code] = { ...S.grids[g.code], ...g };
    if (data.violations) S.violations = data.violations;
    if (data.locks) S.locks = data.locks;
    const t0 = performance.now();
    try {
      await loadState(version);
    } catch (err) {
      report(err);
    }
    S.lastWrite = {
      kind,
      version,
      moved: moved.length,
      ms: Math.round(ms),
      stateMs: Math.round(performance.now() - t0),
      server: data.timings || null,
    };
    setMessage(`${describe(data)} · ${t("msg.ms", { ms: Math.round(ms) })}`);
    view.setVersion(version).then(() => {
      if (S.version === version) S.renderedVersion = version;
    });
    refreshVersions();
    return data;
  } catch (err) {
    await handleError(err);
    return null;
  } finally {
    S.busy = false;
    renderAll();
  }
}

// An undoable step: the versions before and after it. Undo and redo restore the assignment
// (and locks) of one of them as a new version: exact even where a move emptied a
// micro-grid, which inverse moves could not bring back. Stale bases get 409 as any write.
function pushStep(kind, before, data) {
  undoStack.push({ kind, before, after: data.version.version });
  redoStack.length = 0;
}

const gridName = (code) => (S.grids[code] ? shortName(S.grids[code].name, code) : code);

async function moveSelection(target) {
  const why = panel.whyReadonly(S, target);
  if (why) return setMessage(mayWrite() ? t("msg.readonlyTarget", { grid: gridName(target) }) : why);
  const moves = [...selection]
    .filter(([, u]) => u.grid !== target)
    .map(([unit]) => ({ unit, to: target }));
  if (!selection.size) return setMessage(t("msg.selectFirst"));
  if (!moves.length) return setMessage(t("msg.nothingToMove"));
  const before = S.version;
  const data = await commit("move", api.edits, { base_version: before, moves }, (d) =>
    t("msg.moved", { n: d.moved.length, to: gridName(target), version: d.version.version }),
  );
  if (data) {
    if (data.moved.length) pushStep("move", before, data);
    setMode("select");
  }
}

async function toggleLock(code) {
  const why = panel.whyReadonly(S, code);
  if (why) return setMessage(why);
  const locking = !S.locks.includes(code);
  const locks = locking ? [...S.locks, code].sort() : S.locks.filter((c) => c !== code);
  const before = S.version;
  const data = await commit(
    "lock",
    api.edits,
    { base_version: before, moves: [], locks },
    (d) =>
      t(locking ? "msg.locked" : "msg.unlocked", {
        grid: gridName(code),
        version: d.version.version,
      }),
    { keepChanged: true },
  );
  if (data) pushStep("lock", before, data);
}

async function complete() {
  const before = S.version;
  const data = await commit(
    "complete",
    api.complete,
    { base_version: before, locks: S.locks },
    (d) => {
      const done = d.completion || d;
      const after = done.errors_after;
      const valid = after === undefined ? done.valid : after === 0;
      return t("msg.completed", {
        n: (d.moved || []).length,
        r: (done.resolved || []).length,
        valid: valid ? t("msg.valid") : t("msg.invalid", { n: after ?? "?" }),
        version: d.version.version,
      });
    },
  );
  if (data && (data.moved || []).length) pushStep("complete", before, data);
  if (data) {
    setTab("grids", { changedOnly: true });
    fitGrids(S.changed);
  }
}

async function undo() {
  const step = undoStack[undoStack.length - 1];
  if (!step) return setMessage(t("msg.nothingToUndo"));
  const body = {
    base_version: S.version,
    version: step.before,
    comment: `undo ${step.kind} (v${step.after})`,
  };
  const data = await commit("undo", api.restore, body, (d) =>
    t("msg.undone", { version: d.version.version }),
  );
  if (data) {
    undoStack.pop();
    redoStack.push(step);
    renderAll();
  }
}

async function redo() {
  const step = redoStack[redoStack.length - 1];
  if (!step) return setMessage(t("msg.nothingToRedo"));
  const body = {
    base_version: S.version,
    version: step.after,
    comment: `redo ${step.kind} (v${step.after})`,
  };
  const data = await commit("redo", api.restore, body, (d) =>
    t("msg.redone", { version: d.version.version }),
  );
  if (data) {
    redoStack.pop();
    undoStack.push(step);
    renderAll();
  }
}

async function save(name, comment) {
  return commit(
    "save",
    api.edits,
    { base_version: S.version, moves: [], name, comment: comment || "" },
    (d) => t("msg.saved", { version: d.version.version, name }),
    { keepChanged: true },
  );
}

async function restore(version) {
  const before = S.version;
  const data = await commit(
    "restore",
    api.restore,
    { base_version: before, version: Number(version) },
    (d) => t("msg.restored", { from: version, version: d.version.version }),
  );
  if (data && (data.moved || []).length) pushStep("restore", before, data);
}

// zoom the map onto some grids (those a completion or a comparison changed)
function fitGrids(codes) {
  const boxes = codes.map((c) => S.grids[c]?.bbox).filter(Boolean);
  if (!boxes.length) return;
  view.fit([
    Math.min(...boxes.map((x) => x[0])),
    Math.min(...boxes.map((x) => x[1])),
    Math.max(...boxes.map((x) => x[2])),
    Math.max(...boxes.map((x) => x[3])),
  ]);
}

async function compare(a, b) {
  try {
    const [diff, changes] = await Promise.all([api.diff(a, b), api.changes(a, b)]);
    S.diff = { ...diff.data, changes: changes.data };
    fitGrids(diff.data.grids || []);
  } catch (err) {
    await handleError(err);
  }
  renderAll();
}

// Forget local edits and load the latest version (after a conflict, or from an old version).
async function reloadLatest() {
  S.busy = true;
  renderAll();
  try {
    selection.clear();
    undoStack.length = 0;
    redoStack.length = 0;
    S.changed = [];
    S.diff = null;
    S.lastError = null;
    const url = new URL(location.href);
    url.searchParams.delete("version");
    history.replaceState(null, "", url);
    await loadState();
    S.editable = true;
    S.conflict = false;
    S.latest = S.version;
    S.latestLoaded = true;
    await refreshVersions();
    const version = S.version;
    view.setVersion(version).then(() => {
      if (S.version === version) S.renderedVersion = version;
    });
    setMessage(t("msg.reloaded", { version }));
  } catch (err) {
    await handleError(err);
  } finally {
    S.busy = false;
    renderAll();
  }
}

// --- selection and modes --------------------------------------------------------------

function onUnits(features, additive, boxed) {
  // units of grids the account may not change are never selected (nor moved)
  const open = features.filter((f) => writable(unitGrid(f)));
  if (open.length < features.length) {
    setMessage(panel.whyNoWrite(S) || t("msg.readonlyUnit"));
    if (!open.length) return renderAll();
    features = open;
  }
  if (!additive) {
    const only = selection.size === 1 && features.length === 1;
    const same = only && selection.has(String(features[0].code));
    selection.clear();
    if (same && !boxed) return renderAll(); // a second click on the one selected unit
  }
  for (const f of features) {
    const code = String(f.code);
    if (additive && !boxed && selection.has(code)) {
      selection.delete(code);
      continue;
    }
    const micro = f.parent_code === undefined ? "" : String(f.parent_code);
    selection.set(code, {
      grid: unitGrid(f),
      micro,
      households: Number(f.households) || 0,
      building_id: f.building_id ?? null,
    });
  }
  renderAll();
}

function onGrid(code) {
  if (!selection.size) return setMessage(t("msg.selectFirst"));
  if (!writable(code)) return setMessage(t("msg.readonlyTarget", { grid: gridName(code) }));
  moveSelection(code);
}

// A failed tile or TileJSON request of the map; a 401 means the key no longer works.
function onMapError(err) {
  if (err && err.status === 401) expire(err);
  else console.error(err);
}

// --- exports --------------------------------------------------------------------------

// Download the grids of the version on screen: fetched with the key (a plain link would
// carry none), then handed to the browser as a file.
async function download(format) {
  $("#export-menu").open = false;
  if (!api || S.version === null) return;
  setMessage(t("msg.exporting"));
  try {
    const { blob, filename } = await api.exportFile("grids", S.version, format);
    const href = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = href;
    a.download = filename;
    a.hidden = true;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60_000);
    setMessage(t("msg.exported", { file: filename }));
  } catch (err) {
    await handleError(err);
    renderAll();
  }
}

// --- signing in and out ---------------------------------------------------------------

function showSignin(key = null, params = {}, kind = "error") {
  signinMsg = key ? { key, params, kind } : null;
  document.body.classList.add("signed-out");
  $("#signin").hidden = false;
  $("#signin-key").disabled = false;
  $("#signin-ok").disabled = false;
  renderAll();
  $("#signin-key").focus();
}

function renderSignin() {
  const msg = $("#signin-msg");
  // the server's reason in the page's language (a 401 says why the key was refused)
  const params = signinMsg ? { ...signinMsg.params } : {};
  if (params.message) params.message = serverText(params.message);
  msg.textContent = signinMsg ? t(signinMsg.key, params) : "";
  msg.className = signinMsg ? signinMsg.kind : "";
}

// Check a key with GET /me; keep it (in this tab's sessionStorage) only if it works, then
// load the plan. typed: the key comes from the form (else from an earlier sign-in).
async function signIn(key, typed) {
  $("#signin-key").disabled = true;
  $("#signin-ok").disabled = true;
  signinMsg = { key: "signin.checking", params: {}, kind: "info" };
  renderSignin();
  let me;
  try {
    ({ data: me } = await makeApi(ROOT, "", { key: () => key }).me());
  } catch (err) {
    const message = err.message || String(err);
    if (err instanceof ApiError && err.status === 401) {
      forget();
      showSignin(typed ? "signin.rejected" : "signin.expired", { message });
    } else {
      showSignin("signin.failed", { message });
    }
    return;
  }
  remember(key);
  S.me = {
    name: me.name,
    role: me.role,
    scopes: [...(me.scopes || [])],
    expires_at: me.expires_at ?? null,
  };
  signinMsg = null;
  $("#signin").hidden = true;
  document.body.classList.remove("signed-out");
  renderAll();
  await boot();
}

// The key stopped working (a 401 from any request or tile): forget it and reload to the
// sign-in form, which says why. Nothing of the plan stays on screen or in memory.
function expire(err) {
  if (leaving) return;
  leaving = true;
  forget();
  leaveNotice("expired", err?.message || "");
  location.reload();
}

function signOut() {
  if (leaving) return;
  leaving = true;
  forget();
  leaveNotice("signedOut");
  location.reload();
}

function setMode(mode) {
  if (mode === "moveto" && !selection.size) {
    setMessage(t("msg.selectFirst"));
    mode = "select";
  }
  S.mode = mode;
  S.moveMode = mode === "moveto";
  if (view) view.setMode(mode);
  if (S.moveMode) setMessage(t("sel.pickGrid"));
  renderAll();
}

function clearSelection() {
  selection.clear();
  renderAll();
}

// --- UI wiring ------------------------------------------------------------------------

function setTab(name, { changedOnly = false } = {}) {
  for (const b of document.querySelectorAll(".tab")) {
    b.classList.toggle("active", b.dataset.tab === name);
  }
  for (const pane of document.querySelectorAll(".tabpane")) pane.hidden = pane.id !== `tab-${name}`;
  if (changedOnly) {
    filter.changed = true;
    $("#grid-changed").checked = true;
  }
  renderAll();
}

function switchLang(lang) {
  S.lang = setLang(lang);
  const url = new URL(location.href);
  if (S.lang === "en") url.searchParams.set("lang", "en");
  else url.searchParams.delete("lang");
  history.replaceState(null, "", url);
  applyI18n();
  renderAll();
}

function openSave() {
  if (!S.editable || S.conflict || S.busy) return;
  const dialog = $("#save-dialog");
  $("#save-name").value = "";
  $("#save-comment").value = "";
  dialog.showModal();
  $("#save-name").focus();
}

function zoomToGrid(code) {
  const g = S.grids[code];
  if (g) view.fit(g.bbox);
}

const ACTIONS = {
  mode: (d) => setMode(S.mode === d.mode && d.mode !== "select" ? "select" : d.mode),
  undo: () => undo(),
  redo: () => redo(),
  "lock-selection": () => {
    const { grids } = selectionInfo();
    if (grids.length === 1) toggleLock(grids[0]);
  },
  lock: (d) => toggleLock(d.grid),
  move: (d) => moveSelection(d.grid),
  complete: () => complete(),
  save: () => openSave(),
  restore: (d) => restore(d.version),
  compare: () => compare($("#cmp-a").value, $("#cmp-b").value),
  "clear-diff": () => {
    S.diff = null;
    renderAll();
  },
  "clear-selection": () => clearSelection(),
  "zoom-grid": (d) => {
    inspected = d.grid;
    zoomToGrid(d.grid);
    renderAll();
  },
  "zoom-violation": (d) => {
    const v = S.violations[Number(d.index)];
    if (v?.bbox) view.fit(v.bbox);
    else zoomToGrid(String(v?.code || "").slice(0, 15));
  },
  "zoom-unit": (d) => zoomToGrid(d.grid),
  tab: (d) => setTab(d.tab),
  lang: (d) => switchLang(d.lang),
  reload: () => reloadLatest(),
  latest: () => reloadLatest(),
  "close-save": () => $("#save-dialog").close("cancel"),
  export: (d) => download(d.export),
  signout: () => signOut(),
  "close-error": () => {
    S.lastError = null;
    renderAll();
  },
};

function wire() {
  document.addEventListener("click", (e) => {
    const target = e.target.closest("[data-action]");
    if (!target || target.disabled) return;
    const action = ACTIONS[target.dataset.action];
    if (action) {
      e.preventDefault();
      action(target.dataset);
    }
  });
  document.addEventListener("keydown", (e) => {
    if (!S.me || e.target.closest("input, textarea, select, dialog")) return;
    const key = e.key.toLowerCase();
    const mod = e.ctrlKey || e.metaKey;
    if (mod && key === "z" && !e.shiftKey) undo();
    else if (mod && (key === "y" || (key === "z" && e.shiftKey))) redo();
    else if (mod && key === "s") openSave();
    else if (key === "escape") {
      if (S.mode !== "select") setMode("select");
      else clearSelection();
      return;
    } else if (!mod && key === "b") setMode(S.mode === "box" ? "select" : "box");
    else if (!mod && key === "m") setMode("moveto");
    else if (!mod && key === "l") ACTIONS["lock-selection"]();
    else return;
    e.preventDefault();
  });
  $("#grid-filter").addEventListener("input", (e) => {
    filter.text = e.target.value;
    renderAll();
  });
  $("#grid-problems").addEventListener("change", (e) => {
    filter.problems = e.target.checked;
    renderAll();
  });
  $("#grid-changed").addEventListener("change", (e) => {
    filter.changed = e.target.checked;
    renderAll();
  });
  for (const id of ["#cmp-a", "#cmp-b"]) {
    $(id).addEventListener("change", (e) => (e.target.dataset.touched = "1"));
  }
  $("#labels-on").addEventListener("change", (e) => view?.toggleLabels(e.target.checked));
  $("#signin-form").addEventListener("submit", (e) => {
    e.preventDefault(); // never a submitted form: the key stays out of the address and logs
    const input = $("#signin-key");
    const key = input.value.trim();
    input.value = "";
    if (!key) return showSignin("signin.empty");
    signIn(key, true);
  });
  $("#save-dialog").addEventListener("close", () => {
    const dialog = $("#save-dialog");
    const name = $("#save-name").value.trim();
    if (dialog.returnValue === "ok" && name) save(name, $("#save-comment").value.trim());
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.target.closest("#violations li")) e.target.click();
  });
}

// --- start ----------------------------------------------------------------------------

async function start() {
  S.lang = setLang(params.get("lang") === "en" ? "en" : "zh");
  applyI18n();
  wire();
  const notice = takeNotice();
  const key = currentKey();
  if (key) return signIn(key, false);
  if (notice?.kind === "expired") showSignin("signin.expired", { message: notice.message });
  else if (notice?.kind === "signedOut") showSignin("signin.signedOut", {}, "info");
  else showSignin();
}

// Signed in: draw the map and load the plan, every request with the key.
async function boot() {
  view = new MapView("map", { onUnits, onGrid, onError: onMapError }, currentKey);
  view.setAccess(S.me, writable);
  S.map = view.map;
  const auth = { key: currentKey, onUnauthorized: expire };
  try {
    if (!S.plan) {
      const { data } = await makeApi(ROOT, "", auth).plans();
      if (!data.length) throw new ApiError(404, { error: t("err.noPlan") });
      S.plan = data[0].plan;
    }
    api = makeApi(ROOT, S.plan, auth);
    const wanted = params.get("version") || undefined;
    const [state, versions] = await Promise.all([api.state(wanted, STREET), api.versions()]);
    applyState(state.data);
    applyVersions(versions.data);
    let layers = TILE_LAYERS;
    try {
      const { data } = await api.tileLayers(S.version);
      const have = new Set((data.layers || []).map((l) => l.id));
      layers = TILE_LAYERS.filter((l) => have.has(l) || REQUIRED_LAYERS.includes(l));
    } catch {
      // no listing: ask for each layer's TileJSON and skip the optional ones missing
    }
    const tilejsons = {};
    await Promise.all(
      layers.map(async (layer) => {
        try {
          tilejsons[layer] = (await api.tilejson(layer, S.version)).data;
        } catch (err) {
          if (REQUIRED_LAYERS.includes(layer)) throw err;
        }
      }),
    );
    // the basemap beneath the plan; a plan stored before wangge kept one has none (404)
    const basemap = await api.basemapStyle(S.version).then((r) => r.data, () => null);
    await view.loaded;
    view.addData(tilejsons, S.version, S.limits, basemap);
    if (S.bbox) view.map.fitBounds([S.bbox.slice(0, 2), S.bbox.slice(2)], { padding: 30, duration: 0 });
    document.body.classList.remove("loading");
    renderAll();
    await view.idle();
    S.renderedVersion = S.version;
    S.ready = true;
    setMessage("");
  } catch (err) {
    await handleError(err);
    $("#status-main").textContent = S.lastError.text;
  }
  renderAll();
}

// helpers for scripts and tests; the e2e test drives the real UI and polls the state
S.api = {
  select: (codes) => {
    selection.clear();
    const wanted = new Set(codes.map(String));
    const feats = view.map.querySourceFeatures("units", { sourceLayer: "units" });
    onUnits(
      feats.filter((f) => wanted.has(String(f.properties.code))).map((f) => f.properties),
      true,
      true,
    );
  },
  move: moveSelection,
  lock: toggleLock,
  undo,
  redo,
  complete,
  save,
  restore,
  compare,
  reload: reloadLatest,
  setLang: switchLang,
  signOut,
  selectionInfo,
};

start();
