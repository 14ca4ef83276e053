// Plotly traces and shapes for one run's metric: observed (raw, and smoothed on top), the
// forecast's mean and band, the learning rate (logged solid, planned dashed) and the
// observed/predicted boundary. Each trace carries meta.role so it can be told apart.

import { ema } from "./smoothing.js";
import { planned } from "./schedule.js";

export const PALETTE = ["#2f6fdf", "#d9480f", "#2b8a3e", "#9c36b5", "#c2255c", "#1098ad",
  "#e67700", "#5c7cfa"];
const LR_COLOR = "#868e96";

function rgba(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

const finiteOrGap = (v) => (v === null || !Number.isFinite(v) ? null : v);

/** Raw points, faded when a smoothed line is drawn over them (raw never disappears). */
export function observed(series, { x, color, name, smoothing, group }) {
  const xs = series.step.map(x);
  const raw = {
    x: xs, y: series.value.map(finiteOrGap), type: "scatter", mode: "lines",
    name: smoothing > 0 ? `${name} (raw)` : name, legendgroup: group,
    line: { color, width: 1.5 }, opacity: smoothing > 0 ? 0.3 : 1,
    meta: { role: "observed" },
  };
  if (!(smoothing > 0)) return [raw];
  return [raw, {
    x: xs, y: ema(series.value, smoothing), type: "scatter", mode: "lines",
    name: `${name} (EMA ${smoothing})`, legendgroup: group, line: { color, width: 2 },
    meta: { role: "smoothed" },
  }];
}

/**
 * The forecast's mean (dashed) and its interval (a shaded band), when one is ready.
 * `inLegend: false` leaves them out of the legend (the run's own entry toggles its group).
 */
export function forecast(fc, { x, color, name, group, inLegend = true }) {
  if (fc?.status !== "ready" || !fc.curve) return [];
  const { step, mean, lower, upper } = fc.curve;
  const ok = step.map((_, i) => lower[i] !== null && upper[i] !== null);
  const bandX = step.filter((_, i) => ok[i]).map(x);
  const level = Math.round((fc.final?.level ?? 0.9) * 100);
  return [
    {
      x: [...bandX, ...bandX.slice().reverse()],
      y: [...upper.filter((_, i) => ok[i]), ...lower.filter((_, i) => ok[i]).reverse()],
      type: "scatter", mode: "lines", fill: "toself", fillcolor: rgba(color, 0.18),
      line: { width: 0 }, hoverinfo: "skip", name: `${name} forecast ${level}%`,
      legendgroup: group, showlegend: inLegend, meta: { role: "forecast-band" },
    },
    {
      x: step.map(x), y: mean, type: "scatter", mode: "lines",
      line: { color, width: 2, dash: "dash" }, name: `${name} forecast`, legendgroup: group,
      showlegend: inLegend,
      meta: { role: "forecast-mean" },
    },
    ...finalValue(fc, { x, color, name, group }),
  ];
}

/**
 * The value forecast for the target step itself, as a point with its interval, where it
 * stands off the curve's end: runs of a sweep that saw the same batches share that step's
 * noise, which finished runs have shown (the forecast's `prior` says so).
 */
function finalValue(fc, { x, color, name, group }) {
  const { mean, lower, upper } = fc.final ?? {};
  const end = fc.curve.mean.at(-1);
  if (mean === null || mean === undefined || end === null || Math.abs(mean - end) <= 1e-9 * end) {
    return [];
  }
  return [{
    x: [x(fc.target_step)], y: [mean], type: "scatter", mode: "markers",
    marker: { color, size: 8, symbol: "diamond" },
    error_y: { type: "data", symmetric: false, array: [upper - mean], arrayminus: [mean - lower],
               color, thickness: 1.5, width: 6 },
    name: `${name} logged at step ${fc.target_step}`, legendgroup: group, showlegend: false,
    meta: { role: "forecast-final" },
  }];
}

/**
 * The logged lr (solid) and the rest of the schedule (dashed), on the right axis: the plan,
 * or without one the lr this chart's forecast assumed ahead (read off the logged lr).
 */
export function learningRate(lrSeries, run, { x, fc }) {
  const traces = [];
  let from = 0;
  if (lrSeries?.step.length) {
    traces.push({
      x: lrSeries.step.map(x), y: lrSeries.value.map(finiteOrGap), yaxis: "y2",
      type: "scatter", mode: "lines", name: "lr (logged)",
      line: { color: LR_COLOR, width: 1.5 }, meta: { role: "lr-logged" },
    });
    from = lrSeries.step.at(-1);
  }
  if (run.lr_schedule) {
    const plan = planned(run.lr_schedule, run.total_steps, from);
    if (plan.step.length) {
      traces.push({
        x: plan.step.map(x), y: plan.lr, yaxis: "y2", type: "scatter", mode: "lines",
        name: "lr (planned)", line: { color: LR_COLOR, width: 1.5, dash: "dash" },
        meta: { role: "lr-planned" },
      });
    }
  } else if (fc?.status === "ready" && fc.curve?.lr) {
    traces.push({
      x: fc.curve.step.map(x), y: fc.curve.lr.map(finiteOrGap), yaxis: "y2", type: "scatter",
      mode: "lines", name: "lr (assumed by the forecast)",
      line: { color: LR_COLOR, width: 1.5, dash: "dash" }, meta: { role: "lr-assumed" },
    });
  }
  return traces;
}

/**
 * A vertical line where the forecast's data ends and its prediction begins. Plotly places
 * shapes in data units but annotations on a log axis in log10 units, hence `logX`.
 */
export function boundary(fc, { x, logX, color = "#495057", label = true }) {
  const ahead = fc?.status === "ready" && fc.fitted_upto_step < fc.target_step;
  if (!ahead) return { shapes: [], annotations: [] };
  const at = x(fc.fitted_upto_step);
  return {
    shapes: [{
      type: "line", xref: "x", yref: "paper", x0: at, x1: at, y0: 0, y1: 1,
      line: { color, width: 1, dash: "dot" }, name: "forecast-boundary",
    }],
    annotations: label ? [{
      x: logX ? Math.log10(Math.max(at, 1)) : at, y: 1, xref: "x", yref: "paper",
      yanchor: "bottom", xanchor: "left", text: "forecast →", showarrow: false,
      font: { size: 11, color },
    }] : [],
  };
}
