// The scaling chart's traces: every run a point at (compute C = 6·N·D, or tokens D; final loss)
// coloured by model size N, the fitted law as one line per size, the compute-optimal frontier
// and a planned run's prediction. Each trace carries meta.role so it can be told apart.

import * as fmt from "../format.js";
import { PALETTE } from "./traces.js";

const LINE_POINTS = 20;
export const AXES = { compute: "Compute C = 6·N·D (FLOPs)", tokens: "Tokens D" };

/** `n` log-spaced numbers from lo to hi. */
export function logGrid(lo, hi, n = LINE_POINTS) {
  const a = Math.log10(lo);
  const b = Math.log10(hi);
  return Array.from({ length: n }, (_, i) => 10 ** (a + ((b - a) * i) / (n - 1)));
}

/** The x of a run of `params` trained on `tokens`, on the chosen axis. */
export const xOf = (axis, params, tokens) => (axis === "tokens" ? tokens : 6 * params * tokens);

/** The distinct model sizes of the fit's inputs, ascending, each with its colour. */
export function sizes(inputs) {
  const ns = [...new Set(inputs.map((p) => p.params))].sort((a, b) => a - b);
  return ns.map((n, i) => ({ n, color: PALETTE[i % PALETTE.length] }));
}

const sizeName = (n) => `N = ${fmt.value(n)}`;

/** One marker trace per model size, so the legend reads as a colour key. */
export function runPoints(inputs, sizeList, axis, names) {
  return sizeList.map(({ n, color }) => {
    const pts = inputs.filter((p) => p.params === n);
    return {
      x: pts.map((p) => xOf(axis, p.params, p.tokens)), y: pts.map((p) => p.loss),
      text: pts.map((p) => `${names.get(p.run_id) ?? p.run_id}<br>D = ${fmt.value(p.tokens)}`),
      type: "scatter", mode: "markers", name: `runs, ${sizeName(n)}`, legendgroup: String(n),
      marker: { color, size: 9, line: { color: "#fff", width: 1 } },
      hovertemplate: "%{text}<br>loss %{y:.4g}<extra></extra>", meta: { role: "runs", params: n },
    };
  });
}

/** lines: [{n, color, tokens: [...], mean: [...]}] -> the law, solid, one line per size. */
export function lawLines(lines, axis) {
  return lines.map(({ n, color, tokens, mean }) => ({
    x: tokens.map((d) => xOf(axis, n, d)), y: mean, type: "scatter", mode: "lines",
    name: `law, ${sizeName(n)}`, legendgroup: String(n), line: { color, width: 2 },
    hovertemplate: `${sizeName(n)}<br>loss %{y:.4g}<extra></extra>`,
    meta: { role: "law", params: n },
  }));
}

/** The compute-optimal frontier; on the tokens axis only where the law names D*. */
export function frontierLine(points, axis) {
  const shown = axis === "tokens" ? points.filter((p) => p.tokens !== null) : points;
  if (!shown.length) return [];
  return [{
    x: shown.map((p) => (axis === "tokens" ? p.tokens : p.compute)), y: shown.map((p) => p.loss),
    text: shown.map((p) => (p.params === null ? "" : `N* = ${fmt.value(p.params)}, D* = ${fmt.value(p.tokens)}`)),
    type: "scatter", mode: "lines", name: "compute-optimal frontier",
    line: { color: "#212529", width: 2.5, dash: "dash" },
    hovertemplate: "C = %{x:.3g}<br>%{text}<br>loss %{y:.4g}<extra></extra>",
    meta: { role: "frontier" },
  }];
}

/** A planned run's predicted loss with its interval as an error bar. */
export function plannedPoint(planned, axis) {
  if (!planned) return [];
  const { params, tokens, result } = planned;
  return [{
    x: [xOf(axis, params, tokens)], y: [result.mean], type: "scatter", mode: "markers",
    name: `planned N = ${fmt.value(params)}, D = ${fmt.value(tokens)}`,
    marker: { symbol: "star", size: 14, color: "#c92a2a" },
    error_y: { type: "data", symmetric: false, array: [result.upper - result.mean],
      arrayminus: [result.mean - result.lower], color: "#c92a2a" },
    meta: { role: "planned" },
  }];
}
