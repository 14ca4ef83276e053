// Runs side by side: one metric overlaid, each run with its forecast band, and the settings
// in which they differ. Updates live while any of them is running.

import * as api from "../api.js";
import { draw, pointBudget } from "../charts/chart.js";
import { chartControls, tokensPerStep, X_AXES, xFor } from "../charts/controls.js";
import { boundary, forecast, observed, PALETTE } from "../charts/traces.js";
import { clock, hasTimes } from "../charts/walltime.js";
import { h, replace } from "../dom.js";
import * as fmt from "../format.js";
import { distinct } from "../runs-filter.js";
import { forecastCell, stopFlag } from "./runs-table.js";

const FIRST = ["loss", "val_loss"];

/** The values that are not the same in every run: [[key, [value per run]], ...]. */
function differences(runs) {
  const flat = runs.map((r) => fmt.flatten(r.config));
  const keys = distinct(flat, (f) => Object.keys(f));
  return keys
    .map((k) => [k, flat.map((f) => (k in f ? fmt.configValue(f[k]) : "—"))])
    .filter(([, values]) => new Set(values).size > 1);
}

function swatch(i) {
  return h("span", { class: "swatch", style: `background:${PALETTE[i % PALETTE.length]}` });
}

function summaryTable(runs, metric, forecasts) {
  return h("table", { class: "data compare-summary" },
    h("caption", {}, `${metric} by run`),
    h("thead", {}, h("tr", {}, ["Run", "Status", "Progress", `Last ${metric}`,
      `Forecast ${metric}`, "P(underperform)", "Stop?"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, runs.map((run, i) => {
      const fc = forecasts[i];
      return h("tr", {},
        h("th", { scope: "row" }, swatch(i),
          h("a", { href: `#/run/${encodeURIComponent(run.id)}` }, run.name)),
        h("td", {}, h("span", { class: `status status-${run.status}` }, run.status)),
        h("td", {}, `${fmt.integer(run.last_step)} / ${fmt.integer(run.total_steps)}`),
        h("td", { class: "num" }, fmt.value(run.summary[metric]?.last_value)),
        h("td", { class: "num" }, forecastCell({ forecast: fc })),
        h("td", { class: "num" }, fmt.percent(fc?.p_underperform)),
        h("td", {}, stopFlag({ run, forecast: fc })));
    })));
}

function diffTable(runs) {
  const rows = differences(runs);
  const same = distinct(runs.map((r) => fmt.flatten(r.config)), (f) => Object.keys(f)).length - rows.length;
  return h("table", { class: "data config-diff" },
    h("caption", {}, rows.length ? "Config values that differ"
      : "The configs are identical", same ? ` (${same} keys are the same in all runs)` : ""),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Key"),
      runs.map((run, i) => h("th", { scope: "col" }, swatch(i), run.name)))),
    h("tbody", {}, rows.map(([key, values]) => h("tr", {},
      h("th", { scope: "row" }, key), values.map((v) => h("td", {}, v))))));
}

export async function render(view, { query }, { signal, poll }) {
  const ids = (query.get("ids") ?? "").split(",").filter(Boolean);
  if (ids.length < 2) {
    replace(view, h("section", { class: "state empty" }, h("h1", {}, "Compare runs"),
      h("p", {}, "Pick two or more runs in a project's table, then press “Compare selected”."),
      h("p", {}, h("a", { href: "#/projects" }, "Go to projects"))));
    return;
  }
  let runs = await Promise.all(ids.map((id) => api.run(id, signal)));
  document.title = `Compare ${runs.length} runs · Curvecast`;
  const keys = distinct(runs, (r) => Object.keys(r.summary));
  const ordered = [...FIRST.filter((k) => keys.includes(k)), ...keys.filter((k) => !FIRST.includes(k))];
  const metricSelect = h("select", { name: "metric", onchange: () => load() },
    ordered.map((k) => h("option", { value: k }, k)));
  const controls = chartControls({ tokensKnown: runs.every((r) => tokensPerStep(r)), lr: false,
    onChange: drawChart });
  const plot = h("div", { class: "plot", "aria-label": "Runs overlaid" });
  const summarySlot = h("div");
  const diffSlot = h("div");
  let series = [];
  let forecasts = [];

  replace(view,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/projects" }, "Projects"),
      " / ", h("a", { href: `#/p/${encodeURIComponent(runs[0].project)}` }, runs[0].project), " / compare"),
    h("h1", {}, `Compare ${runs.length} runs`),
    h("div", { class: "toolbar" }, h("label", {}, "Metric", metricSelect)),
    controls.element,
    h("figure", { class: "chart wide" }, plot),
    summarySlot, diffSlot);

  function drawChart(state = controls.state) {
    const metric = metricSelect.value;
    const traces = [];
    const edges = { shapes: [], annotations: [] };
    const onTime = state.x === "time";
    const logX = state.logX && !onTime;
    runs.forEach((run, i) => {
      const x = xFor(state, run, clock(series[i]));
      const color = PALETTE[i % PALETTE.length];
      const opts = { x, color, name: run.name, group: run.id, smoothing: state.smoothing,
        inLegend: false };
      if (series[i]) traces.push(...observed(series[i], opts));
      traces.push(...forecast(forecasts[i], opts));
      const edge = boundary(forecasts[i], { x, logX, color, label: false });
      edges.shapes.push(...edge.shapes);
    });
    draw(plot, traces, {
      xTitle: X_AXES[state.x], yTitle: metric, logX, logY: state.logY, dateX: onTime, ...edges,
      revision: [metric, state.x, state.logX, state.logY].join("|"),
    });
  }

  async function load() {
    const metric = metricSelect.value;
    const budget = pointBudget(plot);
    const has = (run) => run.summary[metric];
    [series, forecasts] = await Promise.all([
      Promise.all(runs.map((r) => (has(r) ? api.series(r.id, metric, budget, signal) : null))),
      Promise.all(runs.map((r) => (has(r) ? api.forecast(r.id, metric, signal) : null))),
    ]);
    replace(summarySlot, summaryTable(runs, metric, forecasts));
    replace(diffSlot, diffTable(runs));
    controls.setTimeKnown(series.every((s) => !s || hasTimes(s)) && series.some(hasTimes));
    drawChart();
  }

  await load();
  poll(async () => {
    if (!runs.some((r) => r.status === "running") && !forecasts.some((fc) => fc?.provisional)) {
      return false;
    }
    runs = await Promise.all(ids.map((id) => api.run(id, signal)));
    await load();
    return true;
  });
}
