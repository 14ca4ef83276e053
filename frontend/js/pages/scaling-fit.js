// One scaling fit: its status (and what to do when it has no law), its parameters with
// their intervals, and, when ready, a planned run's prediction. A loss law also gets the
// chart of its runs, the law at each model size and the compute-optimal frontier.

import * as api from "../api.js";
import { draw } from "../charts/chart.js";
import * as sc from "../charts/scaling.js";
import { h, replace } from "../dom.js";
import * as fmt from "../format.js";
import { plannedForm } from "./scaling-forms.js";

export const HPARAM = "hparam:";
export const isHparam = (law) => law.startsWith(HPARAM);

const ADVICE = {
  insufficient_data: "Not enough runs for this law. Finish more runs that carry params and " +
    "tokens, or widen the group and tags, then fit again.",
  degenerate: "These runs cannot pin this law down. Vary both the model size and the tokens " +
    "across runs, or try the loglinear or compute law.",
  failed: "The fit job failed; the server log says why. Create the fit again to retry.",
};

export function statusBadge(status) {
  return h("span", { class: `status status-${status}` }, status.replaceAll("_", " "));
}

function title(fit) {
  const what = isHparam(fit.law) ? `optimal ${fit.law.slice(HPARAM.length)}` : fit.law;
  return `Fit #${fit.id}: ${what} on ${fit.metric}`;
}

function statusNote(fit) {
  if (fit.status === "pending") {
    return h("p", { class: "state loading", role: "status" },
      "Fitting… this page updates by itself when the fit is done.");
  }
  if (fit.status === "ready") return h("p", { class: "muted" }, fit.reason);
  return h("div", { class: "state error", role: "alert" },
    h("h3", {}, fit.status === "insufficient_data" ? "Not enough data" : "No law fitted"),
    h("p", {}, fit.reason), h("p", {}, ADVICE[fit.status] ?? ADVICE.failed));
}

function paramsTable(fit) {
  const level = Math.round((fit.level ?? 0.9) * 100);
  return h("table", { class: "data params" },
    h("caption", {}, "Parameters"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"),
      h("th", { scope: "col", class: "num" }, "Value"),
      h("th", { scope: "col", class: "num" }, `${level}% interval`))),
    h("tbody", {}, Object.entries(fit.params).map(([name, v]) => {
      const [lo, hi] = fit.intervals[name] ?? [];
      return h("tr", {}, h("th", { scope: "row" }, name), h("td", { class: "num" }, fmt.value(v)),
        h("td", { class: "num" }, lo === undefined ? "—" : `[${fmt.value(lo)}, ${fmt.value(hi)}]`));
    })));
}

/** The law at ~LINE_POINTS token counts per model size, and the frontier over the runs' C. */
async function chartData(fit, signal) {
  const list = sc.sizes(fit.inputs);
  const ds = fit.inputs.map((p) => p.tokens);
  const tokens = sc.logGrid(Math.min(...ds) / 2, Math.max(...ds) * 2);
  const cs = fit.inputs.map((p) => sc.xOf("compute", p.params, p.tokens));
  const [lines, frontier] = await Promise.all([
    Promise.all(list.map(async ({ n, color }) => {
      const answers = await Promise.all(
        tokens.map((d) => api.predict(fit.id, { params: n, tokens: d }, signal)));
      return { n, color, tokens, mean: answers.map((a) => a.mean) };
    })),
    api.frontier(fit.id, sc.logGrid(Math.min(...cs) / 4, Math.max(...cs) * 4), signal),
  ]);
  return { list, lines, frontier: frontier.points };
}

function lossChart(fit, runs, signal) {
  const names = new Map(runs.map((r) => [r.id, r.name]));
  const plot = h("div", { class: "plot", "data-chart": "scaling" });
  const caption = h("figcaption", {}, "Loading the law and the frontier…");
  const state = { axis: "compute", data: null, planned: null };
  const axisRadios = Object.entries(sc.AXES).map(([value, label]) => h("label", {},
    h("input", { type: "radio", name: "scaling-x", value, checked: value === state.axis,
      onchange: () => { state.axis = value; redraw(); } }), ` ${label}`));

  function redraw() {
    if (!state.data) return;
    const { list, lines, frontier } = state.data;
    draw(plot, [
      ...sc.runPoints(fit.inputs, list, state.axis, names),
      ...sc.lawLines(lines, state.axis),
      ...sc.frontierLine(frontier, state.axis),
      ...sc.plannedPoint(state.planned, state.axis),
    ], { xTitle: sc.AXES[state.axis], yTitle: fit.metric, logX: true, logY: true,
      hovermode: "closest", revision: state.axis });
  }

  chartData(fit, signal).then((data) => {
    state.data = data;
    redraw();
    replace(caption, `Points: the ${fit.inputs.length} runs fitted, coloured by model size. ` +
      `Lines: the fitted law at each size. Dashed: the compute-optimal frontier.`);
  }).catch((err) => {
    if (err.name !== "AbortError") caption.textContent = `Cannot draw the law: ${err.message}`;
  });

  const figure = h("figure", { class: "chart", "aria-label": `${fit.metric} against compute` },
    h("form", { class: "chart-controls", "aria-label": "Scaling chart settings",
      onsubmit: (e) => e.preventDefault() },
    h("fieldset", {}, h("legend", {}, "X axis"), axisRadios)),
    plot, caption);
  const onPredicted = (planned) => { state.planned = planned; redraw(); };
  return { figure, onPredicted };
}

export function fitDetail(fit, runs, signal) {
  const head = [h("h2", {}, title(fit), " ", statusBadge(fit.status)), statusNote(fit)];
  if (fit.status !== "ready") return h("section", { class: "fit-detail" }, head);
  const predict = (body) => api.predict(fit.id, body, signal);
  if (isHparam(fit.law)) {
    return h("section", { class: "fit-detail" }, head, h("div", { class: "fit-body" },
      paramsTable(fit),
      h("div", { class: "panel" }, h("h3", {}, "Plan a run"),
        plannedForm({ id: `planned-${fit.id}`, title: "Predict the optimum", predict }))));
  }
  const chart = lossChart(fit, runs, signal);
  return h("section", { class: "fit-detail" }, head, chart.figure,
    h("div", { class: "fit-body" }, paramsTable(fit),
      h("div", { class: "panel" }, h("h3", {}, "Plan a run"),
        plannedForm({ id: `planned-${fit.id}`, title: "Predict a planned run", predict,
          onPredicted: chart.onPredicted }))));
}
