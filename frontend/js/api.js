// The public JSON API (API.md). The key travels only in the sign-in body; afterwards the
// server's HttpOnly cookie authenticates every call, so nothing here ever stores it.

class ApiError extends Error {
  constructor(status, message, field = null) {
    super(message);
    this.status = status; // 0: the server could not be reached
    this.field = field;
  }
}

async function request(path, { method = "GET", body, signal } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      signal,
      credentials: "same-origin",
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, `cannot reach the Curvecast server at ${location.origin}`);
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = data?.error ?? {};
    throw new ApiError(response.status, error.message ?? response.statusText, error.field);
  }
  return data;
}

const q = encodeURIComponent;

export const signIn = (key) => request("/api/v1/session", { method: "POST", body: { key } });
export const signOut = () => request("/api/v1/session", { method: "DELETE" });
export const projects = (signal) => request("/api/v1/projects", { signal });
export const runs = (project, signal) => request(`/api/v1/runs?project=${q(project)}`, { signal });
export const run = (id, signal) => request(`/api/v1/runs/${q(id)}`, { signal });
export const metricKeys = (id, signal) => request(`/api/v1/runs/${q(id)}/metrics`, { signal });
export const forecast = (id, key, signal) =>
  request(`/api/v1/runs/${q(id)}/forecast/${q(key)}`, { signal });

export const scalingFits = (project, signal) =>
  request(`/api/v1/projects/${q(project)}/scaling-fits`, { signal });
export const createScalingFit = (project, body) =>
  request(`/api/v1/projects/${q(project)}/scaling-fits`, { method: "POST", body });
export const scalingFit = (id, signal) => request(`/api/v1/scaling-fits/${q(id)}`, { signal });
export const predict = (id, body, signal) =>
  request(`/api/v1/scaling-fits/${q(id)}/predict`, { method: "POST", body, signal });
export const frontier = (id, computes, signal) => request(
  `/api/v1/scaling-fits/${q(id)}/frontier?${computes.map((c) => `compute=${c}`).join("&")}`,
  { signal });

export const alerts = (project, signal) =>
  request(`/api/v1/projects/${q(project)}/alerts`, { signal });
export const alertRules = (project, signal) =>
  request(`/api/v1/projects/${q(project)}/alert-rules`, { signal });
export const createAlertRule = (project, body) =>
  request(`/api/v1/projects/${q(project)}/alert-rules`, { method: "POST", body });
export const deleteAlertRule = (project, id) =>
  request(`/api/v1/projects/${q(project)}/alert-rules/${q(id)}`, { method: "DELETE" });
export const stopPolicies = (project, signal) =>
  request(`/api/v1/projects/${q(project)}/stop-policy`, { signal });
export const putStopPolicy = (project, body) =>
  request(`/api/v1/projects/${q(project)}/stop-policy`, { method: "PUT", body });

/** A series downsampled to at most `maxPoints`; "NaN"/"Infinity" strings become numbers. */
export async function series(id, key, maxPoints, signal) {
  const budget = Math.min(100000, Math.max(10, Math.round(maxPoints)));
  const body = await request(
    `/api/v1/runs/${q(id)}/metrics/${q(key)}?max_points=${budget}`, { signal });
  return { ...body, value: body.value.map(toNumber) };
}

/** API numbers may arrive as "NaN", "Infinity" or "-Infinity" (JSON has no such literals). */
export function toNumber(v) {
  return typeof v === "string" ? Number(v) : v;
}
