// The wangge HTTP API as the editor uses it: JSON in, JSON out, errors as ApiError with
// the server's {error, detail, where} body and the HTTP status. Every request carries the
// signed-in account's key (auth.js); a 401 is handed to ``onUnauthorized`` before it is
// thrown, so that the page can go back to its sign-in form from wherever it happened.

import { authHeaders } from "./auth.js";

export class ApiError extends Error {
  constructor(status, body, ms) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
    this.ms = ms;
  }
}

// key(): the API key to send (or null); onUnauthorized(err): called on every 401.
export function makeApi(root, plan, { key = () => null, onUnauthorized = null } = {}) {
  const p = encodeURIComponent(plan || "");

  async function send(method, path, body) {
    const t0 = performance.now();
    const url = root + path;
    const headers = { ...authHeaders(url, key()) };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-cache",
      });
    } catch (exc) {
      throw new ApiError(0, { error: String(exc.message || exc) }, performance.now() - t0);
    }
    if (!res.ok) {
      const text = await res.text();
      let data;
      try {
        data = text ? JSON.parse(text) : null;
      } catch {
        data = { error: text.slice(0, 300) };
      }
      const err = new ApiError(res.status, data, performance.now() - t0);
      if (res.status === 401 && onUnauthorized) onUnauthorized(err);
      throw err;
    }
    return { res, t0 };
  }

  async function request(method, path, body) {
    const { res, t0 } = await send(method, path, body);
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = { error: text.slice(0, 300) };
    }
    return { data, ms: performance.now() - t0 };
  }

  // a file download: its bytes and the name the server gives it
  async function file(path, fallback) {
    const { res } = await send("GET", path);
    const disposition = res.headers.get("Content-Disposition") || "";
    const name = /filename="?([^";]+)"?/.exec(disposition);
    return { blob: await res.blob(), filename: name ? name[1] : fallback };
  }

  const q = (params) => {
    const parts = Object.entries(params)
      .filter(([, v]) => v !== undefined && v !== null && v !== "")
      .map(([k, v]) => `${k}=${encodeURIComponent(v)}`);
    return parts.length ? `?${parts.join("&")}` : "";
  };

  return {
    me: () => request("GET", "/me"),
    plans: () => request("GET", "/plans"),
    // street: the one street of a city the page shows (the server holds that street alone)
    state: (version, street) => request("GET", `/plans/${p}/state${q({ version, street })}`),
    versions: () => request("GET", `/plans/${p}/versions`),
    diff: (a, b) => request("GET", `/plans/${p}/versions/${a}/diff/${b}`),
    changes: (a, b) => request("GET", `/plans/${p}/versions/${a}/changes/${b}`),
    edits: (body) => request("POST", `/plans/${p}/edits`, body),
    complete: (body) => request("POST", `/plans/${p}/complete`, body),
    restore: (body) => request("POST", `/plans/${p}/restore`, body),
    names: (body) => request("POST", `/plans/${p}/names`, body),
    roster: () => request("GET", `/plans/${p}/roster`),
    setStaff: (code, body) =>
      request("PUT", `/plans/${p}/roster/${encodeURIComponent(code)}`, body),
    tileLayers: (version) => request("GET", `/tiles${q({ plan, version })}`),
    basemapStyle: (version) => request("GET", `/basemap/style.json${q({ plan, version })}`),
    tilejson: (layer, version) =>
      request("GET", `/tiles/${encodeURIComponent(layer)}.json${q({ plan, version })}`),
    exportFile: (layer, version, format) =>
      file(
        `/export/${encodeURIComponent(layer)}${q({ plan, version, format })}`,
        `${plan}-v${version}-${layer}.${format === "shp" ? "zip" : format}`,
      ),
  };
}

// A TileJSON tile template pointed at another version of the plan.
export function withVersion(template, version) {
  if (/[?&]version=\d+/.test(template)) {
    return template.replace(/([?&]version=)\d+/, `$1${version}`);
  }
  return template + (template.includes("?") ? "&" : "?") + `version=${version}`;
}
