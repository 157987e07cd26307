// The wangge HTTP API as the editor uses it: JSON in, JSON out, errors as ApiError with
// the server's {error, detail, where} body and the HTTP status.

export class ApiError extends Error {
  constructor(status, body, ms) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
    this.ms = ms;
  }
}

export function makeApi(root, plan) {
  const p = encodeURIComponent(plan || "");

  async function request(method, path, body) {
    const t0 = performance.now();
    let res;
    try {
      res = await fetch(root + path, {
        method,
        headers: body === undefined ? {} : { "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-cache",
      });
    } catch (exc) {
      throw new ApiError(0, { error: String(exc.message || exc) }, performance.now() - t0);
    }
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = { error: text.slice(0, 300) };
    }
    const ms = performance.now() - t0;
    if (!res.ok) throw new ApiError(res.status, data, ms);
    return { data, ms };
  }

  const q = (params) => {
    const parts = Object.entries(params)
      .filter(([, v]) => v !== undefined && v !== null && v !== "")
      .map(([k, v]) => `${k}=${encodeURIComponent(v)}`);
    return parts.length ? `?${parts.join("&")}` : "";
  };

  return {
    plans: () => request("GET", "/plans"),
    state: (version) => request("GET", `/plans/${p}/state${q({ version })}`),
    versions: () => request("GET", `/plans/${p}/versions`),
    diff: (a, b) => request("GET", `/plans/${p}/versions/${a}/diff/${b}`),
    edits: (body) => request("POST", `/plans/${p}/edits`, body),
    complete: (body) => request("POST", `/plans/${p}/complete`, body),
    restore: (body) => request("POST", `/plans/${p}/restore`, body),
    tileLayers: (version) => request("GET", `/tiles${q({ plan, version })}`),
    tilejson: (layer, version) =>
      request("GET", `/tiles/${encodeURIComponent(layer)}.json${q({ plan, version })}`),
    exportUrl: (layer, version, format) =>
      `${root}/export/${encodeURIComponent(layer)}${q({ plan, version, format })}`,
  };
}

// A TileJSON tile template pointed at another version of the plan.
export function withVersion(template, version) {
  if (/[?&]version=\d+/.test(template)) {
    return template.replace(/([?&]version=)\d+/, `$1${version}`);
  }
  return template + (template.includes("?") ? "&" : "?") + `version=${version}`;
}
