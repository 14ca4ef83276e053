// One run: a chart per metric with its forecast (mean and band to total_steps, the fit's
// boundary), the learning rate on a second axis, and the run's config. Updates live.
// On wall time, the forecast sits at its estimated clock time (the run's recent pace).

import * as api from "../api.js";
import { boundary, forecast, learningRate, observed, PALETTE } from "../charts/traces.js";
import { draw, pointBudget } from "../charts/chart.js";
import { chartControls, tokensPerStep, X_AXES, xFor } from "../charts/controls.js";
import { clock, hasTimes } from "../charts/walltime.js";
import { h, replace } from "../dom.js";
import { forecastCaption, runHeader, runSettings } from "./run-details.js";

const FIRST = ["loss", "val_loss"];

/**
 * Metrics that get a chart: loss first; the lr (`lrKey`, however the run named it) only when
 * nothing else, since it overlays the rest.
 */
function chartKeys(keys, lrKey) {
  const rest = keys.filter((k) => !FIRST.includes(k) && (k !== lrKey || keys.length === 1));
  return [...FIRST.filter((k) => keys.includes(k)), ...rest];
}

export async function render(view, { arg: id }, { signal, poll }) {
  let run = await api.run(id, signal);
  document.title = `${run.name} · Curvecast`;
  const data = { keys: [], series: new Map(), forecasts: new Map(), lr: null };
  const figures = new Map(); // key -> {figure, plot, caption}
  const headerSlot = h("div");
  const chartsSlot = h("section", { class: "charts", "aria-label": "Metrics" });
  const settingsSlot = h("div");
  const controls = chartControls({ tokensKnown: Boolean(tokensPerStep(run)), lr: true,
    onChange: drawAll });

  replace(view, headerSlot, controls.element, chartsSlot, settingsSlot);

  function figureFor(key) {
    if (!figures.has(key)) {
      const plot = h("div", { class: "plot", "data-metric": key });
      const caption = h("figcaption", {});
      const figure = h("figure", { class: "chart", "aria-label": `${key} over training` },
        h("h2", {}, key), plot, caption);
      figures.set(key, { figure, plot, caption });
    }
    return figures.get(key);
  }

  function drawAll(state = controls.state) {
    const onTime = state.x === "time";
    const logX = state.logX && !onTime;
    const lrClock = clock(data.lr);
    for (const key of data.keys) {
      const { plot, caption } = figureFor(key);
      const fc = data.forecasts.get(key);
      const clk = clock(data.series.get(key));
      const x = xFor(state, run, clk);
      const lrX = xFor(state, run, lrClock ?? clk);
      const lr = state.lr && key !== run.lr_key ? learningRate(data.lr, run, { x: lrX, fc }) : [];
      const traces = [
        ...observed(data.series.get(key), { x, color: PALETTE[0], name: key, smoothing: state.smoothing }),
        ...forecast(fc, { x, color: PALETTE[0], name: key }),
        ...lr,
      ];
      const edge = boundary(fc, { x, logX });
      draw(plot, traces, {
        xTitle: X_AXES[state.x], yTitle: key, logX, logY: state.logY, dateX: onTime,
        y2Title: lr.length ? "learning rate" : null, ...edge,
        revision: [key, state.x, state.logX, state.logY].join("|"),
      });
      const eta = onTime || run.status === "running" ? clk : null;
      replace(caption, forecastCaption(key, fc, run.summary[key], eta));
    }
  }

  async function load() {
    const keys = chartKeys(await api.metricKeys(id, signal), run.lr_key);
    replace(headerSlot, runHeader(run, data.forecasts));
    replace(settingsSlot, runSettings(run));
    if (!keys.length) {
      replace(chartsSlot, h("p", { class: "state empty" }, "No metrics logged yet. Points sent ",
        "with run.log({\"loss\": loss}, step=step) appear here within seconds."));
      return;
    }
    if (chartsSlot.dataset.keys !== keys.join("\n")) {
      chartsSlot.dataset.keys = keys.join("\n");
      replace(chartsSlot, keys.map((k) => figureFor(k).figure));
    }
    const budget = pointBudget(figureFor(keys[0]).plot);
    const [series, forecasts, lr] = await Promise.all([
      Promise.all(keys.map((k) => api.series(id, k, budget, signal))),
      Promise.all(keys.map((k) => api.forecast(id, k, signal))),
      run.lr_key ? api.series(id, run.lr_key, budget, signal) : null,
    ]);
    data.keys = keys;
    keys.forEach((k, i) => {
      data.series.set(k, series[i]);
      data.forecasts.set(k, forecasts[i]);
    });
    data.lr = lr;
    controls.setTimeKnown(keys.every((k) => hasTimes(data.series.get(k))));
    replace(headerSlot, runHeader(run, data.forecasts));
    drawAll();
  }

  const settling = () => run.status === "running"
    || [...data.forecasts.values()].some((fc) => fc.status === "pending" || fc.stale
      || fc.provisional);

  await load();
  if (settling()) {
    poll(async () => {
      run = await api.run(id, signal);
      await load();
      return settling();
    });
  }
}
