// How numbers, dates and progress read on the dashboard.

import { toNumber } from "./api.js";

export function value(v) {
  v = toNumber(v);
  if (v === null || v === undefined) return "—";
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "∞" : "−∞";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  return v.toPrecision(4).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
}

export function integer(n) {
  return n === null || n === undefined ? "—" : Math.round(n).toLocaleString("en-US");
}

export function percent(p) {
  return p === null || p === undefined ? "—" : `${Math.round(p * 100)}%`;
}

export function date(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleString("en-GB", {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
}

/** A moment to the second (ETA): "14 Nov 2023, 23:13:20". */
export function dateTime(ms) {
  return new Date(ms).toLocaleString("en-GB", {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    second: "2-digit",
  });
}

/** A span of seconds, to two units: "45 s", "10 min 5 s", "2 h 5 min", "3 d 4 h". */
export function duration(seconds) {
  let s = Math.max(0, Math.round(seconds));
  const parts = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]]) {
    const n = Math.floor(s / size);
    s -= n * size;
    if (n || parts.length) parts.push(`${n} ${unit}`);
  }
  return parts.length ? parts.slice(0, 2).filter((p) => !p.startsWith("0 ")).join(" ") : "0 s";
}

/** "[lower, upper]" of a band. */
function band(b) {
  return `[${value(b.lower)}, ${value(b.upper)}]`;
}

/** Why a forecast is marked provisional (the API's `provisional`). */
export const PROVISIONAL = "provisional: this step's replays of the finished runs are still "
  + "being made; the final forecast follows";

export function interval(final) {
  if (!final) return "—";
  return `${value(final.mean)} ${band(final)}`;
}

/**
 * Why a run was told to stop, in words, from its stored `stop_reason` (null: no reasons
 * stored). The paired probability is there when the reference is a finished run of the
 * same schedule shape, compared with as it looked at this run's progress.
 */
export function stopReason(why) {
  if (!why) return "its forecast says it will likely end worse than the reference.";
  const pForecast = why.p_forecast ?? why.p_underperform;
  const paired = why.p_paired === null || why.p_paired === undefined ? ""
    : `; against that run as it was forecast at the same progress, ${percent(why.p_paired)}`;
  return `its ${why.metric} forecast ${interval(why.forecast)}${judgedOn(why)} ends worse than `
    + `${why.reference_label ?? value(why.reference)} with probability ${percent(pForecast)}`
    + `${paired} (threshold ${percent(why.threshold)}, at ${percent(why.progress)} of its steps).`;
}

/** What a stop compared, where it differs from the forecast shown (else ""). */
function judgedOn(why) {
  const on = why.decided_on;
  if (!on) return "";
  // With finished runs as priors a stop is judged on two ways, with them and on the run's
  // curve alone, pooled, whose band is wider: shown when it differs from the forecast's own.
  if (on.of !== "level" && band(on) !== band(why.forecast)) {
    return ` (judged with the priors and on its curve alone, pooled: ${band(on)})`;
  }
  // Otherwise on the curve's level, the band without the points' scatter, shown when its mean
  // differs: the batch noise a sweep's runs share moves the value to be logged.
  if (on.mean !== undefined && value(on.mean) !== value(why.forecast.mean)) {
    return ` (judged on the curve's level, without the batch noise at that step: ${interval(on)})`;
  }
  return "";
}

/** The run's progress in [0, 1], or null when it has no planned length. */
export function progress(run) {
  if (!run.total_steps) return null;
  return Math.min(1, (run.last_step ?? 0) / run.total_steps);
}

/** A config flattened to dotted keys: {model: {width: 512}} -> {"model.width": 512}. */
export function flatten(obj, prefix = "", out = {}) {
  for (const [k, v] of Object.entries(obj ?? {})) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v)) flatten(v, key, out);
    else out[key] = v;
  }
  return out;
}

export function configValue(v) {
  return typeof v === "string" ? v : JSON.stringify(v);
}
