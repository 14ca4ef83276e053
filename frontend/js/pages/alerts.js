// A project's alerts: the runs told to stop and why, every alert with its delivery state,
// the rules that send them and the stop policy that decides. The first two update live.

import * as api from "../api.js";
import { h, replace } from "../dom.js";
import * as fmt from "../format.js";
import { distinct } from "../runs-filter.js";
import { EVENTS, ruleForm, rulesTable } from "./alert-rules.js";
import { projectHeader } from "./project-tabs.js";
import { policiesTable, policyForm } from "./stop-policy.js";

const runLink = (id, name) => h("a", { href: `#/run/${encodeURIComponent(id)}` }, name ?? id);

function decisionsTable(runs, hasPolicy) {
  const stopped = runs.filter((r) => r.should_stop);
  if (!stopped.length) {
    return h("p", { class: "state" }, hasPolicy
      ? "No run is told to stop: every forecast is close enough to the reference."
      : "No run is told to stop, and none will be until a stop policy is set below.");
  }
  return h("table", { class: "data decisions", "aria-label": "Runs told to stop" },
    h("thead", {}, h("tr", {}, ["Run", "Status", "Metric", "Forecast", "Reference",
      "P(worse)", "Threshold", "Progress"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, stopped.map((run) => {
      const why = run.stop_reason ?? {};
      return h("tr", { class: "stop", "data-run": run.id },
        h("th", { scope: "row" }, runLink(run.id, run.name)),
        h("td", {}, h("span", { class: `status status-${run.status}` }, run.status)),
        h("td", {}, why.metric ?? "—"),
        h("td", { class: "num" }, fmt.interval(why.forecast)),
        h("td", {}, why.reference_label ?? fmt.value(why.reference)),
        h("td", { class: "num" }, fmt.percent(why.p_underperform)),
        h("td", { class: "num" }, fmt.percent(why.threshold)),
        h("td", { class: "num" }, fmt.percent(why.progress)));
    })));
}

function alertLog(alerts, names, hasRules) {
  if (!alerts.length) {
    return h("p", { class: "state" }, hasRules
      ? "No alerts yet. One fires when a run enters a state a rule asks for."
      : "No alerts yet, and none will fire until a rule is added below.");
  }
  return h("table", { class: "data alerts", "aria-label": "Alert log" },
    h("thead", {}, h("tr", {}, ["Event", "Run", "Fired", "Delivery", "Attempts", "Last error"]
      .map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, alerts.map((a) => h("tr", { "data-alert": a.id },
      h("td", {}, EVENTS[a.event] ?? a.event),
      h("td", {}, runLink(a.run_id, names.get(a.run_id) ?? a.payload.run_name)),
      h("td", {}, fmt.date(a.fired_at)),
      h("td", {}, h("span", { class: `status status-${a.state}` }, a.state)),
      h("td", { class: "num" }, fmt.integer(a.attempts)),
      a.last_error ? h("td", { class: "error-text" }, a.last_error)
        : h("td", { class: "muted" }, "—")))));
}

export async function render(view, { arg: project }, { signal, poll }) {
  document.title = `Alerts · ${project} · Curvecast`;
  const load = () => Promise.all([api.runs(project, signal), api.alerts(project, signal)]);
  let [{ runs }, { alerts }] = await load();
  let [{ rules }, { policies }] = await Promise.all(
    [api.alertRules(project, signal), api.stopPolicies(project, signal)]);
  const decisionsSlot = h("div", { class: "table-wrap" });
  const logSlot = h("div", { class: "table-wrap" });
  const rulesSlot = h("div", { class: "table-wrap" });
  const policiesSlot = h("div", { class: "table-wrap" });
  let shown = null;

  function drawLive() {
    const signature = JSON.stringify([runs, alerts, rules.length, policies.length]);
    if (signature === shown) return; // unchanged: keep the tables (and the focus in them)
    shown = signature;
    replace(decisionsSlot, decisionsTable(runs, policies.length > 0));
    replace(logSlot, alertLog(alerts, new Map(runs.map((r) => [r.id, r.name])), rules.length > 0));
  }
  async function refreshRules() {
    ({ rules } = await api.alertRules(project, signal));
    replace(rulesSlot, rulesTable(project, rules, refreshRules));
    drawLive();
  }
  function savedPolicy(policy) {
    policies = [...policies.filter((p) => p.group !== policy.group), policy];
    replace(policiesSlot, policiesTable(policies));
    drawLive();
  }

  const metrics = distinct(runs, (r) => Object.keys(r.summary));
  replace(view, projectHeader(project, "alerts"),
    h("section", { class: "block" }, h("h2", {}, "Stop decisions"), decisionsSlot),
    h("section", { class: "block" }, h("h2", {}, "Alert log"), logSlot),
    h("div", { class: "columns" },
      h("section", { class: "panel" }, h("h2", {}, "Alert rules"), rulesSlot,
        ruleForm(project, refreshRules)),
      h("section", { class: "panel" }, h("h2", {}, "Stop policy"), policiesSlot,
        policyForm(project, { metrics, groups: distinct(runs, (r) => r.group),
          current: policies.find((p) => p.group === null) }, savedPolicy))));
  replace(rulesSlot, rulesTable(project, rules, refreshRules));
  replace(policiesSlot, policiesTable(policies));
  drawLive();

  poll(async () => {
    [{ runs }, { alerts }] = await load();
    drawLive();
  });
}
