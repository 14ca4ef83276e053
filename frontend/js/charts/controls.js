// The chart controls shared by the run and compare pages: x axis, log axes, smoothing and
// (run page) the learning-rate overlay. `onChange(state)` runs on every change. Wall time
// is enabled once the page knows its series carry times (`setTimeKnown`).

import { h } from "../dom.js";

export const X_AXES = { step: "Step", tokens: "Tokens", time: "Wall time" };
const NO_TIME = "Needs wall-clock times on the logged points (none of this series has any)";

/** step -> tokens for a run, when its tokens per step is known (given, or tokens / steps). */
export function tokensPerStep(run) {
  if (run.tokens_per_step) return run.tokens_per_step;
  return run.tokens && run.total_steps ? run.tokens / run.total_steps : null;
}

/**
 * The function from step to the chosen x axis for a run; on wall time, `clk` (walltime.js
 * clock of the run's series) maps steps to dates, and without one nothing is placed.
 */
export function xFor(state, run, clk = null) {
  if (state.x === "time") return clk ? clk.toX : () => null;
  const factor = tokensPerStep(run);
  return state.x === "tokens" && factor ? (s) => s * factor : (s) => s;
}

export function chartControls({ tokensKnown, lr, onChange }) {
  const state = { x: "step", logX: false, logY: false, smoothing: 0, lr: true };
  const changed = () => onChange({ ...state });

  const inputs = {};
  const labels = {};
  const radios = Object.entries(X_AXES).map(([value, label]) => {
    const disabled = (value === "tokens" && !tokensKnown) || value === "time";
    const title = value === "tokens" && !tokensKnown
      ? "Needs tokens_per_step (or tokens) on the run" : value === "time" ? NO_TIME : null;
    inputs[value] = h("input", { type: "radio", name: "x-axis", value,
      checked: value === state.x, disabled,
      onchange: () => { state.x = value; syncLogX(); changed(); } });
    labels[value] = h("label", { title }, inputs[value], ` ${label}`);
    return labels[value];
  });
  const toggle = (name, label) => {
    inputs[name] = h("input", { type: "checkbox", checked: state[name], name,
      onchange: (e) => { state[name] = e.target.checked; changed(); } });
    labels[name] = h("label", {}, inputs[name], ` ${label}`);
    return labels[name];
  };
  // A date axis has no log scale: Log x is off (and says why) while x is wall time.
  function syncLogX() {
    if (!inputs.logX) return;
    const onTime = state.x === "time";
    inputs.logX.disabled = onTime;
    labels.logX.title = onTime ? "A wall-time axis has no log scale" : "";
  }

  /** Enable (or disable, with a tooltip) the wall-time option; off it falls back to steps. */
  function setTimeKnown(known) {
    inputs.time.disabled = !known;
    labels.time.title = known ? "" : NO_TIME;
    if (!known && state.x === "time") {
      state.x = "step";
      inputs.step.checked = true;
      syncLogX();
      changed();
    }
  }
  const readout = h("output", { for: "smoothing", class: "readout" }, "off");
  const slider = h("input", {
    type: "range", id: "smoothing", name: "smoothing", min: "0", max: "0.99", step: "0.01",
    value: "0", "aria-describedby": "smoothing-help",
    oninput: (e) => {
      state.smoothing = Number(e.target.value);
      readout.textContent = state.smoothing > 0 ? state.smoothing.toFixed(2) : "off";
      changed();
    },
  });

  const element = h("form", { class: "chart-controls", "aria-label": "Chart settings",
    onsubmit: (e) => e.preventDefault() },
    h("fieldset", {}, h("legend", {}, "X axis"), radios),
    h("fieldset", {}, h("legend", {}, "Axes"), toggle("logX", "Log x"), toggle("logY", "Log y"),
      lr && toggle("lr", "Learning rate")),
    h("fieldset", { class: "smoothing" }, h("legend", {}, "Smoothing"),
      h("label", { for: "smoothing", class: "visually-hidden" }, "EMA weight"),
      slider, readout,
      h("span", { id: "smoothing-help", class: "hint" }, "raw curve stays, faded")),
  );
  return { element, state, setTimeKnown };
}
