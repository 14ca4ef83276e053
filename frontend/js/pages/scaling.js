// A project's scaling laws: a form for a new fit, the fits so far (loss laws, then
// hyperparameter laws), and the chosen one (#/p/NAME/scaling?fit=ID) in detail.
// A pending fit is polled until it is done.

import * as api from "../api.js";
import { h, replace } from "../dom.js";
import * as fmt from "../format.js";
import { projectHeader } from "./project-tabs.js";
import { fitDetail, isHparam, HPARAM, statusBadge } from "./scaling-fit.js";
import { fitForm } from "./scaling-forms.js";

const selectorText = ({ group, tags }) =>
  [group && `group ${group}`, tags.length && `tags ${tags.join(", ")}`].filter(Boolean).join("; ")
  || "all runs";

function fitsTable(fits, { caption, lawLabel, base, chosen }) {
  return h("table", { class: "data fits" },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, ["Fit", lawLabel, "Metric", "Runs selected", "Status", "Points",
      "Created"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, fits.map((fit) => h("tr", { "aria-current": fit.id === chosen ? "true" : null },
      h("td", {}, h("a", { href: `${base}?fit=${fit.id}` }, `#${fit.id}`)),
      h("td", {}, isHparam(fit.law) ? fit.law.slice(HPARAM.length) : fit.law),
      h("td", {}, fit.metric),
      h("td", {}, selectorText(fit.runs)),
      h("td", {}, statusBadge(fit.status)),
      h("td", { class: "num" }, fmt.integer(fit.n_runs)),
      h("td", {}, fmt.date(fit.created_at))))));
}

function noFits() {
  return h("section", { class: "state empty" }, h("h2", {}, "No scaling fits yet"),
    h("p", {}, "Fit a law to this project's finished runs with the form above: each run that ",
      "carries params (N) and tokens (D) is one point, at its final value of the metric."));
}

export async function render(view, { arg: project, query }, { signal, poll }) {
  document.title = `Scaling · ${project} · Curvecast`;
  const [{ runs }, { fits }] = await Promise.all(
    [api.runs(project, signal), api.scalingFits(project, signal)]);
  const base = `#/p/${encodeURIComponent(project)}/scaling`;
  const lossFits = fits.filter((f) => !isHparam(f.law));
  const hparamFits = fits.filter((f) => isHparam(f.law));
  const chosen = Number(query.get("fit")) || (lossFits[0] ?? hparamFits[0])?.id;
  const detail = h("div", {});
  const opts = { base, chosen };

  replace(view, projectHeader(project, "scaling"),
    fitForm(project, runs, (created) => { location.hash = `${base}?fit=${created.id}`; }),
    fits.length ? null : noFits(),
    lossFits.length && h("div", { class: "table-wrap" }, fitsTable(lossFits,
      { caption: "Scaling fits", lawLabel: "Law", ...opts })),
    hparamFits.length && h("div", { class: "table-wrap" }, fitsTable(hparamFits,
      { caption: "Hyperparameter laws: the optimal value of a config key at (N, D)",
        lawLabel: "Hyperparameter", ...opts })),
    detail);
  if (!chosen) return;

  const fit = await api.scalingFit(chosen, signal);
  replace(detail, fitDetail(fit, runs, signal));
  if (fit.status === "pending") {
    poll(async () => {
      const now = await api.scalingFit(chosen, signal);
      if (now.status === "pending") return true;
      await render(view, { arg: project, query }, { signal, poll });
      return false;
    });
  }
}
