// The chart controls shared by the run and compare pages: x axis, log axes, smoothing and
// (run page) the learning-rate overlay. `onChange(state)` runs on every change.

import { h } from "../dom.js";

export const X_AXES = { step: "Step", tokens: "Tokens" };

/** step -> tokens for a run, when its tokens per step is known (given, or tokens / steps). */
export function tokensPerStep(run) {
  if (run.tokens_per_step) return run.tokens_per_step;
  return run.tokens && run.total_steps ? run.tokens / run.total_steps : null;
}

/** The function from step to the chosen x axis for a run. */
export function xFor(state, run) {
  const factor = tokensPerStep(run);
  return state.x === "tokens" && factor ? (s) => s * factor : (s) => s;
}

export function chartControls({ tokensKnown, lr, onChange }) {
  const state = { x: "step", logX: false, logY: false, smoothing: 0, lr: true };
  const changed = () => onChange({ ...state });

  const radios = Object.entries(X_AXES).map(([value, label]) => {
    const disabled = value === "tokens" && !tokensKnown;
    return h("label", { title: disabled ? "Needs tokens_per_step (or tokens) on the run" : null },
      h("input", { type: "radio", name: "x-axis", value, checked: value === state.x, disabled,
        onchange: () => { state.x = value; changed(); } }),
      ` ${label}`);
  });
  const toggle = (name, label) => h("label", {},
    h("input", { type: "checkbox", checked: state[name], name,
      onchange: (e) => { state[name] = e.target.checked; changed(); } }),
    ` ${label}`);
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
  return { element, state };
}
