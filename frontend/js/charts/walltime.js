// Wall-clock time on the x axis. A series' logged (step, time) pairs give the time of the
// steps it has; steps beyond them (the forecast, the planned lr) are placed by the run's
// recent pace: seconds per step fitted over the last ~20% of the timed points. That same
// extrapolation is the forecast's ETA.

const TAIL = 0.2;

const pad = (n, width = 2) => String(n).padStart(width, "0");

/**
 * Unix seconds as a Plotly date string in the browser's local time
 * ("2023-11-14 23:13:20.500"): Plotly ignores time zones, so local strings read as the
 * user's wall clock, and strings stay strings in the figure's data.
 */
export function dateX(t) {
  const d = new Date(t * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `
    + `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
    + `.${pad(d.getMilliseconds(), 3)}`;
}

/** Least-squares seconds per step over [step, time] pairs (null without a positive slope). */
function secondsPerStep(pairs) {
  if (pairs.length < 2) return null;
  const ms = pairs.reduce((a, [s]) => a + s, 0) / pairs.length;
  const mt = pairs.reduce((a, [, t]) => a + t, 0) / pairs.length;
  let num = 0;
  let den = 0;
  for (const [s, t] of pairs) {
    num += (s - ms) * (t - mt);
    den += (s - ms) ** 2;
  }
  const slope = den > 0 ? num / den : null;
  return slope > 0 ? slope : null;
}

/**
 * step -> time for one series, or null when none of its points has a time.
 * Returns { at(step) -> unix seconds | null, toX(step) -> date string | null,
 *           pace (steps per second, or null), lastStep, lastTime }.
 */
export function clock(series) {
  const bySteps = new Map();
  (series?.step ?? []).forEach((s, i) => {
    const t = series.time?.[i];
    if (typeof t === "number" && Number.isFinite(t)) bySteps.set(s, t);
  });
  if (!bySteps.size) return null;
  const pairs = [...bySteps].sort((a, b) => a[0] - b[0]);
  const n = pairs.length;
  const spp = secondsPerStep(pairs.slice(n - Math.max(2, Math.ceil(n * TAIL))));
  const [firstStep, firstTime] = pairs[0];
  const [lastStep, lastTime] = pairs[n - 1];

  function at(s) {
    if (bySteps.has(s)) return bySteps.get(s);
    if (s > lastStep) return spp === null ? null : lastTime + (s - lastStep) * spp;
    if (s < firstStep) return spp === null ? null : firstTime - (firstStep - s) * spp;
    let lo = 0;
    let hi = n - 1; // pairs[lo][0] < s < pairs[hi][0]
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (pairs[mid][0] < s) lo = mid;
      else hi = mid;
    }
    const [s0, t0] = pairs[lo];
    const [s1, t1] = pairs[hi];
    return t0 + ((s - s0) / (s1 - s0)) * (t1 - t0);
  }
  return {
    at,
    toX: (s) => {
      const t = at(s);
      return t === null ? null : dateX(t);
    },
    pace: spp === null ? null : 1 / spp,
    lastStep,
    lastTime,
  };
}

/** Whether a series has any wall-clock time to plot. */
export function hasTimes(series) {
  return Boolean(series?.time?.some((t) => typeof t === "number" && Number.isFinite(t)));
}
