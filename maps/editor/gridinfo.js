// "名称与人员 / Name and staff": the name and the staff roster of the inspected grid (the one
// grid of the selection, else the grid last clicked in the grid list). A grid the account
// may change gets a name field with a save button (POST /names, a new version through the
// editor's usual write path) and an editable staff list (PUT /roster/{code}); any other grid
// shows both read-only (staff only where GET /roster returned them). Names and phones stay
// in the DOM and in this module: never the console, the address or localStorage.

import { ApiError } from "./api.js";
import { t } from "./i18n.js";
import { serverText } from "./messages.js";
import { el } from "./panel.js";

const $ = (sel) => document.querySelector(sel);

// roles by code length: 15-digit grids and 18-digit micro-grids
const ROLES = {
  15: ["grid_head", "full_time", "part_time", "instructor"],
  18: ["microgrid_head"],
};

// hooks: {S, api(), writable(code), whyReadonly(code), rename(code, name)}
export function makeGridInfo(hooks) {
  let roster = null; // GET /roster rows of the account's territory, or null (not loaded)
  let rosterFor = null; // the plan version whose roster is held
  let rosterMsg = null; // {kind, text} under the staff list
  let drawnKey = "";
  let drawnCode = null;
  let loading = false;

  async function loadRoster() {
    const { S } = hooks;
    const api = hooks.api();
    if (!api || loading) return;
    loading = true;
    try {
      const { data } = await api.roster();
      roster = data.rows || [];
    } catch (err) {
      roster = [];
      if (err instanceof ApiError && err.status === 401) return;
    } finally {
      rosterFor = S.version;
      loading = false;
      drawnKey = "";
      render();
    }
  }

  function staffOf(code) {
    return (roster || []).filter((r) => r.code === code);
  }

  function roleSelect(code, value, disabled) {
    const roles = ROLES[code.length] || ROLES[15];
    const select = el("select", { class: "gi-role", "aria-label": t("info.role"), disabled });
    for (const r of roles) {
      select.append(el("option", { value: r, selected: r === value }, t(`role.${r}`)));
    }
    return select;
  }

  function staffRow(code, person, editable) {
    if (!editable) {
      return el(
        "li",
        { class: "gi-person" },
        el("span", { class: "gi-role" }, t(`role.${person.role}`)),
        " ",
        el("span", { class: "gi-person-name" }, person.name),
        " ",
        el("span", { class: "gi-phone" }, person.phone || ""),
      );
    }
    const row = el(
      "li",
      { class: "gi-person" },
      roleSelect(code, person.role, false),
      el("input", {
        class: "gi-person-name",
        value: person.name || "",
        maxlength: "60",
        autocomplete: "off",
        "aria-label": t("info.person"),
        placeholder: t("info.person"),
      }),
      el("input", {
        class: "gi-phone",
        type: "tel",
        value: person.phone || "",
        maxlength: "20",
        autocomplete: "off",
        "aria-label": t("info.phone"),
        placeholder: t("info.phone"),
      }),
      el("button", { type: "button", class: "gi-remove", title: t("info.remove") }, "✕"),
    );
    row.querySelector(".gi-remove").addEventListener("click", () => row.remove());
    return row;
  }

  async function saveStaff(code) {
    const staff = [...document.querySelectorAll("#gi-staff li.gi-person")].map((li) => ({
      role: li.querySelector(".gi-role").value,
      name: li.querySelector(".gi-person-name").value.trim(),
      phone: li.querySelector(".gi-phone").value.trim(),
    }));
    const button = $("#gi-staff-save");
    button.disabled = true;
    try {
      const { data } = await hooks.api().setStaff(code, { staff });
      rosterMsg = { kind: "ok", text: t("info.staffSaved", { n: (data || staff).length }) };
      roster = (roster || []).filter((r) => r.code !== code);
      for (const p of data || staff) roster.push({ code, ...p });
    } catch (err) {
      const status = err instanceof ApiError ? err.status : 0;
      const detail = err.body?.detail;
      const extra = typeof detail === "string" ? ` ${detail}` : "";
      const message = serverText(err.message) + extra;
      rosterMsg = { kind: "error", text: t("err.http", { status, message }) };
    }
    drawnKey = "";
    render();
  }

  function build(code) {
    const { S } = hooks;
    const box = $("#gi-body");
    const g = S.grids[code];
    // a redraw of the same grid (its roster arrived, another language) keeps a typed name
    const typed = $("#gi-name");
    const keep = typed && box.dataset.code === code && box.dataset.name === (g?.name || "");
    const value = keep ? typed.value : g?.name || "";
    box.dataset.code = code;
    box.dataset.name = g?.name || "";
    box.replaceChildren();
    const why = hooks.whyReadonly(code);
    const editable = !why;
    box.append(el("p", { class: "gi-code muted small" }, code));
    if (why) box.append(el("p", { class: "muted small gi-ro" }, t("info.readonly")));
    // the name
    const name = el("input", {
      id: "gi-name",
      value,
      maxlength: "60",
      autocomplete: "off",
      disabled: !editable,
      "aria-label": t("info.name"),
    });
    const nameRow = el("div", { class: "gi-row" }, el("label", { for: "gi-name" }, t("info.name")), name);
    if (editable) {
      const save = el("button", { id: "gi-name-save", type: "button", class: "primary" }, t("info.saveName"));
      save.addEventListener("click", () => {
        const value = name.value.trim();
        if (value && value !== g?.name) hooks.rename(code, value);
      });
      nameRow.append(save);
    }
    box.append(nameRow);
    // the staff
    box.append(el("h3", {}, t("info.staff")));
    if (roster === null) {
      box.append(el("p", { class: "muted small" }, t("info.loading")));
      return;
    }
    const people = staffOf(code);
    if (!editable && !people.length) {
      box.append(el("p", { class: "muted small", id: "gi-no-staff" }, t("info.noStaff")));
      return;
    }
    const list = el("ul", { id: "gi-staff" });
    for (const p of people) list.append(staffRow(code, p, editable));
    box.append(list);
    if (editable) {
      const roles = ROLES[code.length] || ROLES[15];
      const add = el("button", { id: "gi-staff-add", type: "button" }, t("info.add"));
      add.addEventListener("click", () =>
        list.append(staffRow(code, { role: roles[0], name: "", phone: "" }, true)),
      );
      const save = el("button", { id: "gi-staff-save", type: "button", class: "primary" }, t("info.saveStaff"));
      save.addEventListener("click", () => saveStaff(code));
      box.append(el("div", { class: "row-actions" }, add, save));
    }
    if (rosterMsg) box.append(el("p", { id: "gi-staff-msg", class: rosterMsg.kind, role: "alert" }, rosterMsg.text));
  }

  // code: the inspected grid, or null
  function render(code = hooks.current()) {
    const { S } = hooks;
    const section = $("#gridinfo");
    if (!code || !S.grids[code]) {
      section.hidden = true;
      drawnKey = "";
      drawnCode = null;
      return;
    }
    section.hidden = false;
    if (roster === null || rosterFor !== S.version) {
      if (!loading && hooks.api()) loadRoster();
    }
    const key = [code, S.version, S.grids[code].name, S.lang, hooks.whyReadonly(code) || ""].join("|");
    if (key !== drawnKey) {
      if (drawnCode !== code) rosterMsg = null;
      drawnKey = key;
      drawnCode = code;
      build(code);
    }
    const off = S.busy || !S.editable || S.conflict;
    const save = $("#gi-name-save");
    if (save) save.disabled = off;
  }

  return { render };
}
