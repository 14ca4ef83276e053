// The scaling page's forms: a new fit over some of the project's runs, and a planned run
// (N, D) to predict at, for a loss law or a hyperparameter law.

import * as api from "../api.js";
import { h } from "../dom.js";
import { errorSlot, submitting } from "../form-errors.js";
import * as fmt from "../format.js";
import { distinct } from "../runs-filter.js";

const LAWS = {
  chinchilla: "chinchilla: L = E + A/N^α + B/D^β",
  compute: "compute: L(C), C = 6·N·D",
  data_constrained: "data_constrained: repeated data (unique_tokens, epochs)",
  overtraining: "overtraining: tokens per parameter beyond optimal",
  loglinear: "loglinear: the baseline",
};
const PREFERRED = ["val_loss", "loss"];

/** Runs that can be points of a fit: they carry params and tokens (or tokens per step). */
const usable = (runs) => runs.filter((r) => r.params && (r.tokens || r.tokens_per_step));

function usableHint(runs) {
  const n = usable(runs).length;
  if (n) return h("p", { class: "hint" }, `${n} of ${runs.length} runs carry params and tokens.`);
  return h("p", { class: "hint warn" }, "No run carries params and tokens yet: create runs with ",
    h("code", {}, "params"), " (N) and ", h("code", {}, "tokens"), " (D, or ",
    h("code", {}, "tokens_per_step"), "), then finish them.");
}

const options = (values, selected) =>
  values.map(([value, label]) => h("option", { value, selected: value === selected }, label));

export function fitForm(project, runs, onCreated) {
  const keys = distinct(runs, (r) => Object.keys(r.summary));
  const metrics = [...PREFERRED.filter((k) => keys.includes(k)),
    ...keys.filter((k) => !PREFERRED.includes(k))];
  const groups = distinct(runs, (r) => r.group);
  const form = h("form", { class: "panel form-grid", "aria-labelledby": "new-fit-title",
    onsubmit: (e) => {
      e.preventDefault();
      const data = new FormData(form);
      const tags = String(data.get("tags")).split(/[\s,]+/).filter(Boolean);
      const body = { metric: data.get("metric"), law: data.get("law"),
        runs: { group: data.get("group") || null, tags } };
      submitting(form, async () => onCreated(await api.createScalingFit(project, body)));
    } },
  h("h2", { id: "new-fit-title" }, "New fit"),
  h("label", {}, "Metric", metrics.length
    ? h("select", { name: "metric" }, options(metrics.map((m) => [m, m])))
    : h("input", { name: "metric", required: true, value: "val_loss" })),
  h("label", {}, "Law", h("select", { name: "law" }, options(Object.entries(LAWS)))),
  h("label", {}, "Group", h("select", { name: "group" },
    options([["", "all runs"], ...groups.map((g) => [g, g])]))),
  h("label", {}, "Tags", h("input", { name: "tags", placeholder: "ladder v2",
    "aria-describedby": "fit-tags-help" }),
  h("span", { id: "fit-tags-help", class: "hint" }, "runs must carry every tag")),
  h("button", { type: "submit" }, "Fit law"),
  errorSlot(),
  usableHint(runs));
  return form;
}

/**
 * A planned (N, D) and what the law says there: `predict({params, tokens})` answers
 * {quantity, mean, lower, upper, level}; `onPredicted` sees the answer (e.g. to chart it).
 */
export function plannedForm({ id, title, predict, onPredicted = () => {} }) {
  const result = h("output", { class: "prediction", for: `${id}-n ${id}-d` });
  const field = (suffix, name, label, placeholder) => h("label", {}, label,
    h("input", { id: `${id}-${suffix}`, name, type: "number", min: "0", step: "any",
      required: true, placeholder }));
  const form = h("form", { class: "form-grid planned", "aria-label": title,
    onsubmit: (e) => {
      e.preventDefault();
      const params = Number(form.elements.params.value);
      const tokens = Number(form.elements.tokens.value);
      submitting(form, async () => {
        const answer = await predict({ params, tokens });
        const level = Math.round(answer.level * 100);
        result.textContent = `${answer.quantity} at N = ${fmt.value(params)}, D = ` +
          `${fmt.value(tokens)}: ${fmt.value(answer.mean)} (${level}% interval ` +
          `${fmt.value(answer.lower)} – ${fmt.value(answer.upper)})`;
        result.dataset.mean = answer.mean;
        result.dataset.lower = answer.lower;
        result.dataset.upper = answer.upper;
        onPredicted({ params, tokens, result: answer });
      });
    } },
  field("n", "params", "Planned N (parameters)", "1e9"),
  field("d", "tokens", "Planned D (tokens)", "2e10"),
  h("button", { type: "submit" }, "Predict"),
  errorSlot(),
  result);
  return form;
}
