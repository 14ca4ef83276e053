// The stop policy: when a run is told to stop (P(final worse than the reference) at least
// the threshold, past min_progress), for the whole project or one group; the saved
// policies and the form that sets one.

import * as api from "../api.js";
import { h } from "../dom.js";
import { errorSlot, submitting } from "../form-errors.js";
import * as fmt from "../format.js";

const REFERENCES = { best_finished: "best finished run", kth_best: "k-th best finished run",
  target: "a target value" };

function referenceText(ref) {
  if (ref.kind === "kth_best") return `${ref.k}-th best finished run`;
  if (ref.kind === "target") return `target ${fmt.value(ref.target)}`;
  return REFERENCES.best_finished;
}

export function policiesTable(policies) {
  if (!policies.length) {
    return h("p", { class: "state" }, "No stop policy: runs are never told to stop. ",
      "Set one with the form.");
  }
  return h("table", { class: "data policies", "aria-label": "Stop policies" },
    h("thead", {}, h("tr", {}, ["Applies to", "Metric", "Mode", "Reference", "Threshold",
      "Min progress", "Updated"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, policies.map((p) => h("tr", {},
      h("td", {}, p.group ? `group ${p.group}` : "whole project"),
      h("td", {}, p.metric), h("td", {}, p.mode), h("td", {}, referenceText(p.reference)),
      h("td", { class: "num" }, fmt.percent(p.threshold)),
      h("td", { class: "num" }, fmt.percent(p.min_progress)),
      h("td", {}, fmt.date(p.updated_at))))));
}

function referenceBody(kind, value) {
  if (kind === "kth_best") return { kth_best: Math.round(Number(value)) };
  if (kind === "target") return { target: Number(value) };
  return "best_finished";
}

/** The form, filled from the project-wide policy when there is one. */
export function policyForm(project, { metrics, groups, current }, onSaved) {
  const now = current ?? { metric: metrics[0] ?? "loss", mode: "min",
    reference: { kind: "best_finished" }, threshold: 0.9, min_progress: 0.1 };
  const opt = (value, label, selected) => h("option", { value, selected: value === selected }, label);
  const refValue = h("input", { name: "reference_value", type: "number", step: "any",
    value: String(now.reference.k ?? now.reference.target ?? "") });
  const refName = h("span", {});
  const refValueLabel = h("label", {}, refName, refValue, errorSlot("reference"));
  const refKind = h("select", { name: "reference_kind", onchange: showValue },
    Object.entries(REFERENCES).map(([k, label]) => opt(k, label, now.reference.kind)));
  function showValue() {
    refValueLabel.hidden = refKind.value === "best_finished";
    refValue.required = !refValueLabel.hidden;
    refName.textContent = refKind.value === "target" ? "Target" : "k";
  }
  showValue();
  const share = (name, label, value) => h("label", {}, label,
    h("input", { name, type: "number", min: "0", max: "1", step: "0.01", required: true,
      value: String(value) }), errorSlot(name));

  const form = h("form", { class: "form-grid", "aria-labelledby": "policy-title",
    onsubmit: (e) => {
      e.preventDefault();
      const data = new FormData(form);
      const body = { metric: data.get("metric"), mode: data.get("mode"),
        reference: referenceBody(data.get("reference_kind"), data.get("reference_value")),
        threshold: Number(data.get("threshold")), min_progress: Number(data.get("min_progress")),
        group: data.get("group") || null };
      submitting(form, async () => onSaved(await api.putStopPolicy(project, body)));
    } },
  h("h3", { id: "policy-title", class: "full" }, "Set the policy"),
  h("label", {}, "Metric", metrics.length
    ? h("select", { name: "metric" }, metrics.map((m) => opt(m, m, now.metric)))
    : h("input", { name: "metric", required: true, value: now.metric })),
  h("label", {}, "Better is", h("select", { name: "mode" },
    opt("min", "lower (min)", now.mode), opt("max", "higher (max)", now.mode))),
  h("label", {}, "Compare with", refKind),
  refValueLabel,
  share("threshold", "Stop at P(worse) ≥", now.threshold),
  share("min_progress", "Not before progress", now.min_progress),
  h("label", {}, "Applies to", h("select", { name: "group" },
    opt("", "whole project", ""), groups.map((g) => opt(g, `group ${g}`, null)))),
  h("button", { type: "submit" }, "Save policy"),
  errorSlot());
  return form;
}
