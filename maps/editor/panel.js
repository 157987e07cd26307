// The side panel and the status line, drawn from the editor's state. Buttons carry
// data-action attributes; editor.js handles every click in one delegated listener.

import { getLang, num, t, tOr } from "./i18n.js";
import { lockIcon, shortName } from "./mapview.js";
import { serverText } from "./messages.js";
import { mayWrite, writable } from "./state.js";

const $ = (sel) => document.querySelector(sel);

// el("button", {class: "x", dataset: {action: "move"}}, "text", child…)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "class") node.className = v;
    else if (k === "style") node.setAttribute("style", v);
    else if (k in node && typeof v !== "string") node[k] = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function gridStatus(households, limits) {
  const lim = (limits && limits.grid) || {};
  if (lim.lo !== undefined && households < lim.lo) return "under";
  if (lim.hi !== undefined && households > lim.hi) return "over";
  return "ok";
}

function gridLabel(S, code) {
  const g = S.grids[code];
  return g ? shortName(g.name, code) : code;
}

// --- who is signed in, and what they may change ---------------------------------------

// "社区001 320102001001、320102001002": the account's code prefixes, named where known
export function scopeText(S) {
  if (!S.me) return "";
  if (S.me.role === "admin") return t("account.all");
  const scopes = S.me.scopes || [];
  if (!scopes.length) return t("account.none");
  return scopes
    .map((c) => (S.communities[c] ? `${S.communities[c].name} ${c}` : c))
    .join("、");
}

// Why the account may not change anything (a viewer), or null.
export function whyNoWrite(S) {
  if (!S.me) return t("why.signedOut");
  return mayWrite() ? null : t("why.viewer", { role: tOr(`role.${S.me.role}`, S.me.role) });
}

// Why the account may not change this grid, or null.
export function whyReadonly(S, code) {
  const no = whyNoWrite(S);
  if (no) return no;
  if (writable(code)) return null;
  return t("why.outside", { grid: `${gridLabel(S, code)} ${code}`, scopes: scopeText(S) });
}

export function renderAccount(S) {
  const box = $("#account");
  box.hidden = !S.me;
  if (!S.me) return;
  $("#account-name").textContent = S.me.name;
  const role = $("#account-role");
  role.textContent = tOr(`role.${S.me.role}`, S.me.role);
  role.className = `role ${S.me.role}`;
  const expires = S.me.expires_at ? ` · ${t("account.expires", { when: when(S.me.expires_at) })}` : "";
  $("#account-scopes").textContent = `${t("account.scopes")}: ${scopeText(S)}${expires}`;
  const note = $("#access-note");
  const kind = S.me.role === "admin" ? "admin" : mayWrite() ? "planner" : "viewer";
  note.textContent = t(`access.${kind}`, { scopes: scopeText(S) });
  note.className = `access ${kind}`;
}

// --- selection ------------------------------------------------------------------------

// sel: {units, households, grids, targets: [{code, after}], sourceLocked}
export function renderSelection(S, sel) {
  const box = $("#sel-body");
  box.replaceChildren();
  if (!sel.units.length) {
    box.append(el("p", { class: "muted" }, whyNoWrite(S) ? t("sel.viewer") : t("sel.none")));
    return;
  }
  const grids = sel.grids.map((c) => gridLabel(S, c)).join("、");
  box.append(
    el(
      "p",
      { class: "sel-summary" },
      t("sel.summary", { n: sel.units.length, hh: num(sel.households), grids }),
    ),
  );
  if (S.moveMode) box.append(el("p", { class: "hint" }, t("sel.pickGrid")));
  if (sel.sourceLocked) {
    box.append(el("p", { class: "warn" }, t("sel.lockedSource")));
  } else if (!sel.targets.length) {
    box.append(el("p", { class: "muted" }, t("sel.noNeighbours")));
  } else {
    const list = el("div", { id: "sel-targets", class: "targets" });
    const home = new Set(sel.grids.map((c) => c.slice(0, 12)));
    for (const { code, after } of sel.targets) {
      const g = S.grids[code];
      const other = home.has(code.slice(0, 12)) ? null : S.communities[code.slice(0, 12)];
      const status = gridStatus(after, S.limits);
      const why = whyReadonly(S, code);
      list.append(
        el(
          "button",
          {
            class: `target ${status}${why ? " readonly" : ""}`,
            dataset: { action: "move", grid: code },
            disabled: !!why || g.locked || S.busy || !S.editable || S.conflict,
            title: why || `${g.name} ${code}`,
          },
          el(
            "span",
            { class: "name" },
            g.locked ? lockIcon(true) : null,
            shortName(g.name, code),
            other ? el("small", { class: "community" }, other.name) : null,
            why ? el("small", { class: "ro-tag" }, t("sel.readonly")) : null,
          ),
          el("span", { class: "after" }, t("sel.after", { from: num(g.households), to: num(after) })),
        ),
      );
    }
    box.append(el("div", { class: "label" }, t("sel.moveTo")), list);
    if (sel.targets.some((x) => x.readonly)) {
      box.append(el("p", { class: "muted small ro-note" }, t("sel.readonlyTargets")));
    }
  }
  const lockWord = sel.grids.every((c) => S.grids[c]?.locked) ? "tool.unlock" : "tool.lock";
  const lockWhy = sel.grids.length === 1 ? whyReadonly(S, sel.grids[0]) : null;
  box.append(
    el(
      "div",
      { class: "row-actions" },
      sel.grids.length === 1
        ? el(
            "button",
            {
              dataset: { action: "lock", grid: sel.grids[0] },
              disabled: !!lockWhy || S.busy || !S.editable || S.conflict,
              title: lockWhy,
            },
            t(lockWord),
          )
        : null,
      el("button", { dataset: { action: "clear-selection" } }, t("sel.clear")),
    ),
  );
}

// --- grids ----------------------------------------------------------------------------

export function renderGrids(S, filter) {
  const lim = S.limits?.grid || {};
  $("#grid-limits").textContent = lim.lo !== undefined ? t("grids.limits", lim) : "";
  const body = $("#grid-table tbody");
  body.replaceChildren();
  const changed = new Set(S.changed);
  const codes = Object.keys(S.grids).sort();
  const counts = { over: 0, under: 0 };
  const scale = (lim.hi || Math.max(1, ...codes.map((c) => S.grids[c].households))) * 1.25;
  const needle = (filter.text || "").trim().toLowerCase();
  let community = null;
  for (const code of codes) {
    const g = S.grids[code];
    const status = gridStatus(g.households, S.limits);
    if (status !== "ok") counts[status] += 1;
    if (filter.problems && status === "ok") continue;
    if (filter.changed && !changed.has(code)) continue;
    if (needle && !`${g.name} ${code}`.toLowerCase().includes(needle)) continue;
    if (g.parent_code !== community) {
      community = g.parent_code;
      const c = S.communities[community];
      const label = c ? `${c.name} · ${num(c.households)} ${t("hh")}` : community;
      body.append(el("tr", { class: "community" }, el("td", { colspan: 4 }, label)));
    }
    const pct = (v) => `${Math.min(100, (100 * v) / scale).toFixed(1)}%`;
    const why = whyReadonly(S, code);
    const classes = [
      "grid",
      status,
      changed.has(code) && "changed",
      g.locked && "locked",
      why && "readonly",
    ];
    // a grid the account may not change has no lock toggle: its lock state, and why
    const lockCell = why
      ? el(
          "span",
          { class: "ro", title: why, "aria-label": why },
          g.locked ? lockIcon(true) : t("grids.readonlyMark"),
        )
      : el(
          "button",
          {
            class: "lock-toggle",
            dataset: { action: "lock", grid: code },
            title: t("grids.lockTip"),
            "aria-pressed": g.locked ? "true" : "false",
            disabled: S.busy || !S.editable || S.conflict,
          },
          lockIcon(g.locked),
        );
    body.append(
      el(
        "tr",
        { class: classes.filter(Boolean).join(" "), dataset: { code } },
        el("td", { class: "lock" }, lockCell),
        el(
          "td",
          { class: "name", dataset: { action: "zoom-grid", grid: code }, title: t("grids.zoomTip") },
          el("span", {}, shortName(g.name, code), g.locked ? lockIcon(true) : null),
          el("small", {}, code),
        ),
        el(
          "td",
          { class: "hh" },
          el("span", { class: "v" }, String(Math.round(g.households))),
          el(
            "div",
            { class: "bar" },
            el("i", { style: `width:${pct(g.households)}` }),
            lim.lo !== undefined ? el("b", { style: `left:${pct(lim.lo)}` }) : null,
            lim.hi !== undefined ? el("b", { style: `left:${pct(lim.hi)}` }) : null,
          ),
        ),
        el("td", { class: "pop" }, num(g.population)),
      ),
    );
  }
  $("#grid-count").textContent = t("grids.count", { n: codes.length, ...counts });
}

// --- checks ---------------------------------------------------------------------------

export function renderChecks(S) {
  const list = $("#violations");
  list.replaceChildren();
  const errors = S.violations.filter((v) => v.severity === "error").length;
  $("#checks-count").textContent = S.violations.length ? String(S.violations.length) : "";
  $("#checks-count").className = errors ? "count error" : "count";
  $("#checks-summary").textContent = S.violations.length
    ? `${t("checks.summary", { errors, warnings: S.violations.length - errors })} · ${t("checks.zoom")}`
    : t("checks.none");
  const changed = new Set(S.changed);
  S.violations.forEach((v, i) => {
    const hot = changed.has(String(v.code).slice(0, 15));
    list.append(
      el(
        "li",
        {
          class: `violation sev-${v.severity}${hot ? " changed" : ""}`,
          dataset: { action: "zoom-violation", index: i, code: v.code },
          tabindex: 0,
        },
        el("span", { class: "badge" }, tOr(`sev.${v.severity}`, v.severity)),
        el("span", { class: "level" }, tOr(`level.${v.level}`, v.level)),
        el("code", {}, v.code),
        el("span", { class: "check" }, tOr(`check.${v.check}`, v.check)),
        el("div", { class: "reason" }, serverText(v.reason)),
      ),
    );
  });
}

// --- versions -------------------------------------------------------------------------

function when(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso || "";
  return d.toLocaleString(getLang() === "en" ? "en-GB" : "zh-CN", {
    dateStyle: "short",
    timeStyle: "short",
  });
}

export function renderVersions(S) {
  const noWrite = whyNoWrite(S);
  const list = $("#version-list");
  list.replaceChildren();
  if (!S.versions.length) list.append(el("li", { class: "muted" }, t("versions.none")));
  for (const v of [...S.versions].reverse()) {
    const current = v.version === S.version;
    const kind = v.kind ? tOr(`kind.${v.kind}`, v.kind) : "";
    list.append(
      el(
        "li",
        { class: current ? "version current" : "version", dataset: { version: v.version } },
        el(
          "div",
          { class: "head" },
          el("b", {}, `v${v.version}`),
          el("span", { class: "vname" }, v.name || ""),
          el("span", { class: "kind" }, kind),
          current ? el("span", { class: "tag" }, t("versions.current")) : null,
        ),
        el(
          "small",
          {},
          [when(v.created_at), v.moves ? t("versions.moves", { n: v.moves }) : "", v.author, v.comment]
            .filter(Boolean)
            .join(" · "),
        ),
        current
          ? null
          : el(
              "button",
              {
                dataset: { action: "restore", version: v.version },
                title: noWrite || t("versions.restoreTip"),
                disabled: !!noWrite || S.busy || S.conflict || !S.latestLoaded,
              },
              t("versions.restore"),
            ),
      ),
    );
  }
  for (const id of ["#cmp-a", "#cmp-b"]) {
    const select = $(id);
    const keep = select.value;
    select.replaceChildren(
      ...S.versions.map((v) =>
        el("option", { value: v.version }, `v${v.version}${v.name ? ` ${v.name}` : ""}`),
      ),
    );
    if (keep && S.versions.some((v) => String(v.version) === keep)) select.value = keep;
  }
  if (!$("#cmp-a").dataset.touched && S.versions.length > 1) {
    $("#cmp-a").value = String(S.versions[S.versions.length - 2].version);
  }
  if (!$("#cmp-b").dataset.touched && S.versions.length) $("#cmp-b").value = String(S.version);
}

// "第3网格·007": the grid's short name and the micro-grid's own three digits
function microLabel(S, code) {
  const c = String(code);
  return c.length > 15 ? `${gridLabel(S, c.slice(0, 15))}·${c.slice(15)}` : gridLabel(S, c);
}

// the grids a comparison created, changed, retired or recounted, with households before
// and after, from the change report's GeoJSON
function changedGrids(changes) {
  const byCode = new Map();
  for (const f of changes.features || []) {
    const p = f.properties || {};
    if (p.level !== "grid" || p.status === "kept") continue;
    const row = byCode.get(p.code) || { code: p.code, status: p.status, before: null, after: null };
    row[p.side === "before" ? "before" : "after"] = p.households;
    byCode.set(p.code, row);
  }
  const order = ["created", "changed", "retired", "recounted"];
  return [...byCode.values()].sort(
    (a, b) => order.indexOf(a.status) - order.indexOf(b.status) || a.code.localeCompare(b.code),
  );
}

export function renderDiff(S) {
  const box = $("#diff-result");
  box.replaceChildren();
  const d = S.diff;
  if (!d) return;
  const hh = d.moved.reduce((s, m) => s + (Number(m.households) || 0), 0);
  box.append(
    el(
      "p",
      { class: "diff-summary" },
      d.moved.length
        ? t("versions.diff", { a: d.a, b: d.b, n: d.moved.length, hh: num(hh), g: d.grids.length })
        : t("versions.diffNone", { a: d.a, b: d.b }),
    ),
  );
  const report = d.changes && d.changes.summary && d.changes.summary.grid;
  if (report) {
    box.append(el("p", { class: "diff-grids" }, t("versions.gridChanges", report)));
    const rows = changedGrids(d.changes);
    if (rows.length) {
      const table = el(
        "table",
        { class: "diff diff-grid-table" },
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            el("th", {}, t("versions.grid")),
            el("th", {}, t("versions.status")),
            el("th", {}, t("hh")),
          ),
        ),
      );
      const body = el("tbody");
      for (const g of rows.slice(0, 300)) {
        body.append(
          el(
            "tr",
            { dataset: { status: g.status, grid: g.code } },
            el("td", {}, g.code),
            el("td", {}, t(`status.${g.status}`)),
            el("td", {}, `${g.before === null ? "–" : num(g.before)} → ${g.after === null ? "–" : num(g.after)}`),
          ),
        );
      }
      table.append(body);
      box.append(table);
    }
  }
  if (d.moved.length) {
    const table = el(
      "table",
      { class: "diff" },
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          el("th", {}, t("versions.unit")),
          el("th", {}, t("hh")),
          el("th", {}, "→"),
        ),
      ),
    );
    const body = el("tbody");
    for (const m of d.moved.slice(0, 300)) {
      body.append(
        el(
          "tr",
          { dataset: { action: "zoom-unit", unit: m.unit, grid: String(m.to).slice(0, 15) } },
          el("td", {}, m.building_id ? `${m.unit} (${m.building_id})` : m.unit),
          el("td", {}, num(m.households)),
          el("td", {}, `${microLabel(S, m.from)} → ${microLabel(S, m.to)}`),
        ),
      );
    }
    table.append(body);
    box.append(table);
  }
  box.append(el("button", { dataset: { action: "clear-diff" } }, t("versions.clearDiff")));
}

// --- status line and toolbar state ----------------------------------------------------

export function renderStatus(S, sel) {
  const parts = [
    t("status.plan", { plan: S.plan, version: S.version }) + (S.name ? ` «${S.name}»` : ""),
    t("status.grids", { n: Object.keys(S.grids).length }),
    t("status.violations", { n: S.violations.length }),
  ];
  if (sel.units.length) {
    parts.push(t("status.selected", { n: sel.units.length, hh: num(sel.households) }));
  }
  $("#status-main").textContent = parts.join(" · ");
}

// a toolbar button's tooltip: why it is disabled, or what it does
function explain(button, why) {
  button.title = why || t(button.dataset.i18nTitle);
  button.classList.toggle("readonly", !!why);
}

export function renderToolbar(S, sel) {
  const noWrite = whyNoWrite(S);
  const editing = S.ready && S.editable && !S.conflict && !S.busy && !noWrite;
  $("#btn-undo").disabled = !editing || !S.undo;
  $("#btn-redo").disabled = !editing || !S.redo;
  $("#btn-complete").disabled = !editing;
  $("#btn-save").disabled = !editing;
  $("#btn-moveto").disabled = !editing || !sel.units.length;
  const lockBtn = $("#btn-lock");
  const lockWhy = sel.grids.length === 1 ? whyReadonly(S, sel.grids[0]) : null;
  lockBtn.disabled = !editing || sel.grids.length !== 1 || !!lockWhy;
  const locked = sel.grids.length === 1 && S.grids[sel.grids[0]]?.locked;
  lockBtn.textContent = t(locked ? "tool.unlock" : "tool.lock");
  for (const id of ["#btn-undo", "#btn-redo", "#btn-complete", "#btn-save", "#btn-moveto"]) {
    explain($(id), noWrite);
  }
  explain(lockBtn, noWrite || lockWhy);
  for (const b of document.querySelectorAll("button[data-mode]")) {
    b.classList.toggle("active", b.dataset.mode === S.mode);
    b.setAttribute("aria-pressed", b.dataset.mode === S.mode ? "true" : "false");
  }
  $("#lang-zh").classList.toggle("active", S.lang === "zh");
  $("#lang-en").classList.toggle("active", S.lang === "en");
  document.body.classList.toggle("busy", S.busy);
}
