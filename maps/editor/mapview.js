// The map: wangge's vector tiles as MapLibre layers, selection by click and by box, and
// grid labels as HTML markers (no glyph server: text is drawn by the browser's own fonts),
// decluttered: a label that would overlap one already placed is hidden until zooming in
// makes room (changed, over/under and locked grids are placed first, then by households).
// Every tile and TileJSON request carries the signed-in account's key (transformRequest);
// grids outside the account's territory are greyed and hatched.

import { withVersion } from "./api.js";
import { authHeaders } from "./auth.js";

const maplibregl = window.maplibregl;

// Layers the editor draws; units and grids are required, the rest are optional.
export const TILE_LAYERS = ["units", "grids", "communities", "buildings", "network_edges"];
export const REQUIRED_LAYERS = ["units", "grids"];

const COLOURS = {
  background: "#f2f0eb",
  under: "#f0a202",
  dedicated: "#7b8fc7", // 专属网格: outside the household bands by rule
  over: "#d64545",
  edge: "#d6ecd2",
  target: "#6dbb75",
  gridLine: "#2f3e5c",
  communityLine: "#111827",
  unitLine: "#8a94a6",
  building: "#a39e93",
  road: "#c9c4b8",
  selected: "#1f6feb",
  changed: "#ff7a00",
  diff: "#9b3fd1",
  created: "#0f9d58", // a grid the later version of a comparison made
  retired: "#6b7280", // a grid of the earlier version that is gone (dashed)
  hover: "#1f6feb",
  readonly: "#6b7280",
};

const EMPTY = { type: "FeatureCollection", features: [] };

// the unit code / grid code of a tile feature, as a string whatever the encoder made of it
const CODE = ["to-string", ["get", "code"]];
const none = () => ["literal", []];

// Locked grids: dark "/" stripes. Read-only grids (outside the account's territory): a grey
// wash with "\" stripes, so that a locked read-only grid is cross-hatched.
function hatchImage(size = 12, readonly = false) {
  const data = new Uint8Array(size * size * 4);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 4;
      if (readonly) {
        const d = (x - y + size) % size;
        data.set(d < 2 ? [90, 96, 108, 140] : [160, 164, 172, 80], i);
      } else {
        const d = (x + y) % size;
        data.set(d < 2 || d === size - 1 ? [60, 60, 80, 150] : [0, 0, 0, 0], i);
      }
    }
  }
  return { width: size, height: size, data };
}

// The MapLibre filter of the grids outside an account's territory (me: GET /me): none for
// an admin, all but those under its code prefixes for a planner, all for a viewer.
// The attribution of a layer from its TileJSON's credit (the plan's sources, "; " between
// them): OpenStreetMap's with a link to its copyright page, the user's files by name.
export function creditHtml(credit) {
  const esc = (t) =>
    t.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  return String(credit || "")
    .split("; ")
    .filter((part) => part)
    .map((part) =>
      part.includes("OpenStreetMap")
        ? '<a href="https://www.openstreetmap.org/copyright" target="_blank" rel="noopener">' +
          "© OpenStreetMap contributors</a> · ODbL"
        : esc(part),
    )
    .join(" · ");
}

export function readonlyFilter(me) {
  const all = ["all"]; // true (and ["any"] false), in either filter syntax
  if (!me) return all;
  if (me.role === "admin") return ["any"];
  const scopes = me.role === "planner" ? me.scopes || [] : [];
  if (!scopes.length) return all;
  return ["!", ["any", ...scopes.map((s) => ["==", ["slice", CODE, 0, s.length], s])]];
}

export class MapView {
  // handlers: {onUnits(features, additive, boxed), onGrid(code), onError(error)};
  // key(): the API key every request to this server carries
  constructor(container, handlers, key) {
    this.handlers = handlers;
    this.mode = "select";
    this.readonly = readonlyFilter(null);
    this.writable = () => false;
    this.templates = {};
    this.layers = [];
    this.markers = new Map();
    this.labelsOn = true;
    this.map = new maplibregl.Map({
      container,
      style: {
        version: 8,
        sources: {},
        layers: [
          { id: "background", type: "background", paint: { "background-color": COLOURS.background } },
        ],
      },
      center: [0, 0],
      zoom: 1,
      attributionControl: false,
      boxZoom: false,
      dragRotate: false,
      pitchWithRotate: false,
      touchPitch: false,
      maxPitch: 0,
      fadeDuration: 0,
      preserveDrawingBuffer: true,
      transformRequest: (url) => ({ url, headers: authHeaders(url, key()) }),
    });
    this.map.touchZoomRotate.disableRotation();
    this.map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-left");
    this.map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
    this.map.addControl(
      // the credit is the plan's sources, from each layer's TileJSON (creditHtml)
      new maplibregl.AttributionControl({ compact: false }),
      "bottom-right",
    );
    this.loaded = new Promise((resolve) => this.map.once("load", resolve));
    this._wireEvents();
  }

  // --- sources and layers ---------------------------------------------------------------

  // The basemap (GET /basemap/style.json: roads with their names, water, green, rail,
  // place names) beneath the plan: its areas and lines at the bottom, its labels kept to
  // put above the grid fills (addData adds them under the grid outlines). Its text needs
  // no glyph server: the style has no glyphs URL, so MapLibre draws it with local fonts.
  _addBasemap(style, version) {
    const map = this.map;
    // its credit is the plan's own (the same OSM extract), which the plan's layers show
    for (const [id, { attribution, ...source }] of Object.entries(style.sources)) {
      this.templates[id] = source.tiles[0];
      map.addSource(id, { ...source, tiles: [withVersion(source.tiles[0], version)] });
      this.layers.push(id);
    }
    const labels = [];
    for (const layer of style.layers) {
      if (layer.type === "background") {
        map.setPaintProperty("background", "background-color", layer.paint["background-color"]);
      } else if (layer.type === "symbol") {
        labels.push(layer);
      } else {
        map.addLayer(layer);
      }
    }
    return labels;
  }

  // tilejsons: {layer: TileJSON} of the layers the server has; limits: state.limits;
  // basemap: the basemap's style, or null when the plan has none
  addData(tilejsons, version, limits, basemap = null) {
    const map = this.map;
    map.addImage("wg-hatch", hatchImage(), { pixelRatio: 1 });
    map.addImage("wg-readonly", hatchImage(12, true), { pixelRatio: 1 });
    const labels = basemap ? this._addBasemap(basemap, version) : [];
    for (const [layer, tj] of Object.entries(tilejsons)) {
      this.templates[layer] = tj.tiles[0];
      map.addSource(layer, {
        type: "vector",
        tiles: [withVersion(tj.tiles[0], version)],
        minzoom: tj.minzoom ?? 0,
        maxzoom: tj.maxzoom ?? 16,
        bounds: tj.bounds,
        attribution: creditHtml(tj.attribution),
      });
      this.layers.push(layer);
    }
    const has = (l) => l in tilejsons;
    const add = (spec) => map.addLayer({ ...spec, "source-layer": spec.source });
    if (has("network_edges") && !basemap) {
      add({
        id: "roads-line",
        type: "line",
        source: "network_edges",
        paint: { "line-color": COLOURS.road, "line-width": 1 },
      });
    }
    add({
      id: "grids-fill",
      type: "fill",
      source: "grids",
      paint: { "fill-color": this._gridColour(limits), "fill-opacity": 0.45 },
    });
    add({
      id: "grids-readonly",
      type: "fill",
      source: "grids",
      filter: this.readonly,
      paint: { "fill-pattern": "wg-readonly" },
    });
    add({
      id: "grids-locked",
      type: "fill",
      source: "grids",
      filter: ["in", CODE, none()],
      paint: { "fill-pattern": "wg-hatch" },
    });
    if (has("buildings")) {
      add({
        id: "buildings-line",
        type: "line",
        source: "buildings",
        minzoom: 14,
        paint: { "line-color": COLOURS.building, "line-width": 0.6 },
      });
    }
    add({
      id: "units-fill",
      type: "fill",
      source: "units",
      paint: { "fill-color": "#000000", "fill-opacity": 0 },
    });
    add({
      id: "units-line",
      type: "line",
      source: "units",
      minzoom: 14.5,
      paint: { "line-color": COLOURS.unitLine, "line-width": 0.5, "line-opacity": 0.7 },
    });
    add({
      id: "units-diff",
      type: "fill",
      source: "units",
      filter: ["in", CODE, none()],
      paint: { "fill-color": COLOURS.diff, "fill-opacity": 0.55 },
    });
    add({
      id: "units-selected",
      type: "fill",
      source: "units",
      filter: ["in", CODE, none()],
      paint: { "fill-color": COLOURS.selected, "fill-opacity": 0.55 },
    });
    add({
      id: "units-selected-line",
      type: "line",
      source: "units",
      filter: ["in", CODE, none()],
      paint: { "line-color": COLOURS.selected, "line-width": 2 },
    });
    for (const layer of labels) map.addLayer(layer); // names above the fills, under outlines
    add({
      id: "grids-line",
      type: "line",
      source: "grids",
      paint: {
        "line-color": COLOURS.gridLine,
        "line-width": ["interpolate", ["linear"], ["zoom"], 12, 1, 16, 2.5],
      },
    });
    add({
      id: "grids-changed",
      type: "line",
      source: "grids",
      filter: ["in", CODE, none()],
      paint: { "line-color": COLOURS.changed, "line-width": 4 },
    });
    add({
      id: "grids-hover",
      type: "line",
      source: "grids",
      filter: ["in", CODE, none()],
      paint: { "line-color": COLOURS.hover, "line-width": 4, "line-dasharray": [2, 1] },
    });
    // a comparison's grids (the change report as GeoJSON): the earlier outline of each
    // changed or retired grid dashed, the later outline of each created or changed one solid
    map.addSource("changes", { type: "geojson", data: EMPTY });
    map.addLayer({
      id: "changes-before",
      type: "line",
      source: "changes",
      filter: [
        "all",
        ["==", ["get", "side"], "before"],
        ["in", ["get", "status"], ["literal", ["changed", "retired"]]],
      ],
      paint: { "line-color": COLOURS.retired, "line-width": 2.5, "line-dasharray": [2, 2] },
    });
    map.addLayer({
      id: "changes-after",
      type: "line",
      source: "changes",
      filter: [
        "all",
        ["==", ["get", "side"], "after"],
        ["in", ["get", "status"], ["literal", ["created", "changed"]]],
      ],
      paint: {
        "line-color": ["match", ["get", "status"], "created", COLOURS.created, COLOURS.diff],
        "line-width": 3.5,
      },
    });
    if (has("communities")) {
      add({
        id: "communities-line",
        type: "line",
        source: "communities",
        paint: {
          "line-color": COLOURS.communityLine,
          "line-width": ["interpolate", ["linear"], ["zoom"], 12, 2, 16, 4],
          "line-opacity": 0.8,
        },
      });
    }
  }

  _gridColour(limits) {
    const lim = (limits && limits.grid) || { lo: 300, hi: 500, target: 400 };
    const hh = ["to-number", ["get", "households"], 0];
    const target = Math.min(Math.max(lim.target ?? (lim.lo + lim.hi) / 2, lim.lo + 1), lim.hi - 1);
    return [
      "case",
      ["==", ["get", "grid_type"], "dedicated"],
      COLOURS.dedicated,
      ["<", hh, lim.lo],
      COLOURS.under,
      [">", hh, lim.hi],
      COLOURS.over,
      ["interpolate", ["linear"], hh, lim.lo, COLOURS.edge, target, COLOURS.target, lim.hi, COLOURS.edge],
    ];
  }

  // point every source at another version of the plan; resolves once the map is idle
  setVersion(version) {
    for (const layer of this.layers) {
      this.map.getSource(layer).setTiles([withVersion(this.templates[layer], version)]);
    }
    return this.idle();
  }

  // resolves when the map has drawn what it loads: on its "idle" event, or when a poll
  // finds every tile loaded (headless chromium can go a long time without a frame, and
  // the editor then waited on "idle" for a version it had long drawn)
  idle() {
    return new Promise((resolve) => {
      let done = false;
      const finish = () => {
        if (!done) {
          done = true;
          resolve();
        }
      };
      this.map.once("idle", finish);
      this.map.triggerRepaint();
      const poll = () => {
        if (done) return;
        if (this.map.loaded() && this.map.areTilesLoaded()) finish();
        else setTimeout(poll, 250);
      };
      setTimeout(poll, 250);
    });
  }

  _codes(layer, codes) {
    if (this.map.getLayer(layer)) this.map.setFilter(layer, ["in", CODE, ["literal", [...codes]]]);
  }

  setSelection(codes) {
    this._codes("units-selected", codes);
    this._codes("units-selected-line", codes);
  }

  setChanged(codes) {
    this._codes("grids-changed", codes);
  }

  setLocks(codes) {
    this._codes("grids-locked", codes);
  }

  setDiff(codes) {
    this._codes("units-diff", codes);
  }

  // changes: the change report's GeoJSON (null clears it)
  setChanges(changes) {
    const source = this.map.getSource("changes");
    if (source) source.setData(changes || EMPTY);
  }

  setHover(code) {
    this._codes("grids-hover", code ? [code] : []);
  }

  // me: the signed-in account; writable(code): whether it may change that grid
  setAccess(me, writable) {
    this.readonly = readonlyFilter(me);
    this.writable = writable;
    if (this.map.getLayer("grids-readonly")) this.map.setFilter("grids-readonly", this.readonly);
  }

  fit(bbox, maxZoom = 17) {
    if (!bbox || bbox.length !== 4) return;
    const [x0, y0, x1, y1] = bbox;
    this.map.fitBounds(
      [
        [x0, y0],
        [x1, y1],
      ],
      { padding: 60, maxZoom, duration: 300 },
    );
  }

  // --- labels ---------------------------------------------------------------------------

  // grids: {code: {name, households, locked, centre, status}}; hhWord: "户"/"hh"
  setLabels(grids, hhWord) {
    for (const [code, marker] of this.markers) {
      if (!(code in grids)) {
        marker.remove();
        this.markers.delete(code);
      }
    }
    for (const [code, g] of Object.entries(grids)) {
      if (!g.centre) continue;
      let marker = this.markers.get(code);
      if (!marker) {
        const el = document.createElement("div");
        el.className = "wg-label";
        el.dataset.code = code;
        el.appendChild(lockIcon(true));
        for (const part of ["name", "hh"]) {
          const span = document.createElement("span");
          span.className = part;
          el.appendChild(span);
        }
        marker = new maplibregl.Marker({ element: el, anchor: "center" });
        marker.setLngLat(g.centre).addTo(this.map);
        this.markers.set(code, marker);
      } else {
        marker.setLngLat(g.centre);
      }
      const el = marker.getElement();
      el.querySelector(".name").textContent = shortName(g.name, code);
      el.querySelector(".hh").textContent = `${Math.round(g.households)} ${hhWord}`;
      el.classList.toggle("over", g.status === "over");
      el.classList.toggle("under", g.status === "under");
      el.classList.toggle("changed", !!g.changed);
      el.classList.toggle("locked", !!g.locked);
      el.classList.toggle("readonly", !!g.readonly);
    }
    this._labelVisibility();
    this._declutter();
  }

  toggleLabels(on) {
    this.labelsOn = on;
    this._labelVisibility();
    this._declutter();
  }

  _labelVisibility() {
    const show = this.labelsOn && this.map.getZoom() >= 13.5;
    this.map.getContainer().classList.toggle("wg-labels-hidden", !show);
  }

  // Hide every label that would overlap one placed before it, in order of importance; the
  // hidden ones carry the class wg-label-hidden (and reappear when zooming in frees room).
  _declutter() {
    const entries = [];
    for (const [code, marker] of this.markers) {
      const el = marker.getElement();
      el.classList.remove("wg-label-hidden");
      const w = el.offsetWidth;
      const h = el.offsetHeight;
      if (!w || !h) continue; // not displayed (labels off, or zoomed out)
      const p = this.map.project(marker.getLngLat());
      const [hw, hh] = [w / 2 + 2, h / 2 + 2]; // 2 px of air around each label
      entries.push({ el, code, box: [p.x - hw, p.y - hh, p.x + hw, p.y + hh] });
    }
    const rank = (e) => {
      const c = e.el.classList;
      const off = c.contains("over") || c.contains("under");
      return (c.contains("changed") ? 8 : 0) + (off ? 4 : 0) + (c.contains("locked") ? 2 : 0);
    };
    const hh = (e) => Number.parseFloat(e.el.querySelector(".hh").textContent) || 0;
    entries.sort((a, b) => rank(b) - rank(a) || hh(b) - hh(a) || (a.code < b.code ? -1 : 1));
    // placed boxes by 64-pixel cell, so that each label is checked against its neighbours only
    const cells = new Map();
    const CELL = 64;
    const keys = ([x0, y0, x1, y1]) => {
      const out = [];
      for (let i = Math.floor(x0 / CELL); i <= Math.floor(x1 / CELL); i++)
        for (let j = Math.floor(y0 / CELL); j <= Math.floor(y1 / CELL); j++)
          out.push(`${i},${j}`);
      return out;
    };
    const hits = (a, b) => a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
    let hidden = 0;
    for (const e of entries) {
      const near = keys(e.box);
      if (near.some((k) => (cells.get(k) || []).some((b) => hits(b, e.box)))) {
        e.el.classList.add("wg-label-hidden");
        hidden += 1;
        continue;
      }
      for (const k of near) {
        if (!cells.has(k)) cells.set(k, []);
        cells.get(k).push(e.box);
      }
    }
    this.labelsHidden = hidden;
  }

  // --- interaction ----------------------------------------------------------------------

  setMode(mode) {
    this.mode = mode;
    const canvas = this.map.getCanvas();
    canvas.style.cursor = mode === "select" ? "" : "crosshair";
    if (mode === "box") this.map.dragPan.disable();
    else this.map.dragPan.enable();
    if (mode !== "moveto") this.setHover(null);
  }

  _unitsAt(geometry) {
    if (!this.map.getLayer("units-fill")) return [];
    const seen = new Map();
    for (const f of this.map.queryRenderedFeatures(geometry, { layers: ["units-fill"] })) {
      const code = String(f.properties.code);
      if (!seen.has(code)) seen.set(code, f.properties);
    }
    return [...seen.values()];
  }

  _gridAt(point) {
    if (!this.map.getLayer("grids-fill")) return null;
    const hit = this.map.queryRenderedFeatures(point, { layers: ["grids-fill"] })[0];
    return hit ? String(hit.properties.code) : null;
  }

  _wireEvents() {
    const map = this.map;
    map.on("zoom", () => this._labelVisibility());
    map.on("moveend", () => this._declutter());
    // a tile or TileJSON request that failed (error.status 401: the key no longer works)
    map.on("error", (e) => this.handlers.onError(e.error || e));
    map.on("click", (e) => {
      if (this._boxed) {
        this._boxed = false;
        return;
      }
      const ev = e.originalEvent;
      if (this.mode === "moveto") {
        const code = this._gridAt(e.point);
        if (code) this.handlers.onGrid(code);
        return;
      }
      const additive = ev.ctrlKey || ev.metaKey || ev.shiftKey;
      this.handlers.onUnits(this._unitsAt(e.point), additive, false);
    });
    map.on("mousemove", (e) => {
      if (this.mode === "moveto") {
        const code = this._gridAt(e.point);
        const open = code && this.writable(code);
        this.setHover(open ? code : null);
        map.getCanvas().style.cursor = code && !open ? "not-allowed" : "crosshair";
      } else if (this.mode === "select") {
        const hit = this._unitsAt(e.point).find((f) => this.writable(unitGrid(f)));
        map.getCanvas().style.cursor = hit ? "pointer" : "";
      }
    });

    // box selection: in box mode, or shift-drag in select mode (boxZoom is off)
    const container = map.getCanvasContainer();
    container.addEventListener(
      "mousedown",
      (e) => {
        if (e.button !== 0 || !(this.mode === "box" || (this.mode === "select" && e.shiftKey))) {
          return;
        }
        const panWasOn = map.dragPan.isEnabled();
        map.dragPan.disable();
        const rect = container.getBoundingClientRect();
        const start = [e.clientX - rect.left, e.clientY - rect.top];
        const box = document.createElement("div");
        box.className = "wg-box";
        container.appendChild(box);
        const move = (ev) => {
          const p = [ev.clientX - rect.left, ev.clientY - rect.top];
          Object.assign(box.style, {
            left: `${Math.min(p[0], start[0])}px`,
            top: `${Math.min(p[1], start[1])}px`,
            width: `${Math.abs(p[0] - start[0])}px`,
            height: `${Math.abs(p[1] - start[1])}px`,
          });
        };
        const up = (ev) => {
          document.removeEventListener("mousemove", move);
          document.removeEventListener("mouseup", up);
          box.remove();
          if (panWasOn && this.mode !== "box") map.dragPan.enable();
          const p = [ev.clientX - rect.left, ev.clientY - rect.top];
          if (Math.abs(p[0] - start[0]) < 4 && Math.abs(p[1] - start[1]) < 4) return; // a click
          this._boxed = true; // swallow the click that may follow
          setTimeout(() => (this._boxed = false), 0);
          const bbox = [
            [Math.min(p[0], start[0]), Math.min(p[1], start[1])],
            [Math.max(p[0], start[0]), Math.max(p[1], start[1])],
          ];
          const additive = ev.shiftKey || ev.ctrlKey || ev.metaKey;
          this.handlers.onUnits(this._unitsAt(bbox), additive, true);
        };
        document.addEventListener("mousemove", move);
        document.addEventListener("mouseup", up);
        e.preventDefault();
      },
      true,
    );
  }
}

// A padlock drawn as SVG (no emoji font needed): closed when locked, open otherwise.
export function lockIcon(locked) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("class", locked ? "icon lock closed" : "icon lock open");
  svg.setAttribute("aria-hidden", "true");
  const body = document.createElementNS(ns, "rect");
  for (const [k, v] of Object.entries({ x: 3, y: 7, width: 10, height: 8, rx: 1.5 })) {
    body.setAttribute(k, v);
  }
  const shackle = document.createElementNS(ns, "path");
  shackle.setAttribute("d", locked ? "M5 7V5a3 3 0 0 1 6 0v2" : "M5 7V5a3 3 0 0 1 6 0");
  svg.append(body, shackle);
  return svg;
}

// The grid code of a unit's tile feature (its micro-grid code's first 15 digits).
export function unitGrid(f) {
  if (f.grid_code !== undefined) return String(f.grid_code);
  return f.parent_code === undefined ? "" : String(f.parent_code).slice(0, 15);
}

// "社区001第3网格" → "第3网格": the community is shown by its outline
export function shortName(name, code) {
  if (!name) return code ? `…${code.slice(-3)}` : "";
  const i = name.lastIndexOf("第");
  return i > 0 ? name.slice(i) : name;
}
