// A project's runs: filters, the sortable table, and selection into the comparison.
// Polls so new runs, steps and forecasts appear without a reload.

import * as api from "../api.js";
import { h, replace } from "../dom.js";
import { distinct, filterRuns } from "../runs-filter.js";
import { empty } from "../states.js";
import { projectHeader } from "./project-tabs.js";
import { runsTable } from "./runs-table.js";

const PREFERRED_METRICS = ["loss", "val_loss"];

function metricsOf(runs) {
  const keys = distinct(runs, (r) => Object.keys(r.summary));
  return [...PREFERRED_METRICS.filter((k) => keys.includes(k)),
    ...keys.filter((k) => !PREFERRED_METRICS.includes(k))];
}

/** Keep a select's options in step with `values`, leaving the user's choice alone. */
function setOptions(select, values, allLabel) {
  const wanted = [allLabel, ...values].join("\n");
  if (select.dataset.options === wanted) return;
  const keep = select.value;
  select.dataset.options = wanted;
  select.replaceChildren(
    ...(allLabel === null ? [] : [h("option", { value: "" }, allLabel)]),
    ...values.map((v) => h("option", { value: v }, v)));
  select.value = values.includes(keep) ? keep : select.options[0]?.value ?? "";
}

export async function render(view, { arg: project }, { signal, poll }) {
  document.title = `${project} · Curvecast`;
  let runs = (await api.runs(project, signal)).runs;
  const forecasts = new Map(); // run id -> {at: last step fitted for, body}
  const selected = new Set();
  const filters = { status: "", group: "", tag: "", config: "" };
  let sort = { key: null, dir: 1 };
  let drawn = null;

  const select = (name, label) => h("label", {}, label, h("select", { name,
    onchange: (e) => { filters[name] = e.target.value; draw(); } }));
  const metricSelect = h("select", { name: "metric", onchange: () => refreshForecasts() });
  const statusLabel = select("status", "Status");
  const groupLabel = select("group", "Group");
  const tagLabel = select("tag", "Tag");
  const configInput = h("input", { type: "search", name: "config",
    placeholder: "optimizer=adamw model.width>512", "aria-describedby": "config-help",
    oninput: (e) => { filters.config = e.target.value; draw(); } });
  const compare = () => {
    location.hash = `#/compare?ids=${[...selected].map(encodeURIComponent).join(",")}`;
  };
  const compareButton = h("button", { type: "button", disabled: true, onclick: compare },
    "Compare selected");
  const count = h("p", { class: "count", role: "status" });
  const tableSlot = h("div", { class: "table-wrap" });
  const toolbar = h("form", { class: "toolbar", "aria-label": "Filter runs",
    onsubmit: (e) => e.preventDefault() },
    h("label", {}, "Metric", metricSelect), statusLabel, groupLabel, tagLabel,
    h("label", { class: "grow" }, "Config", configInput,
      h("span", { id: "config-help", class: "hint" },
        "key=value, key>n, key<n, key!=value; space = and")),
    compareButton);
  const page = h("div", {}, toolbar, count, tableSlot);

  function draw() {
    if (!runs.length) {
      replace(view, projectHeader(project, "runs"),
        empty("No runs yet", "Log one from your training script:", project));
      return;
    }
    if (!view.contains(page)) {
      replace(view, projectHeader(project, "runs"), page);
    }
    setOptions(metricSelect, metricsOf(runs), null);
    setOptions(statusLabel.querySelector("select"), distinct(runs, (r) => r.status), "any");
    setOptions(groupLabel.querySelector("select"), distinct(runs, (r) => r.group), "any");
    setOptions(tagLabel.querySelector("select"), distinct(runs, (r) => r.tags), "any");
    const shown = filterRuns(runs, filters);
    const metric = metricSelect.value;
    count.textContent = `Showing ${shown.length} of ${runs.length} runs`;
    compareButton.disabled = selected.size < 2;
    compareButton.textContent = `Compare selected (${selected.size})`;
    const rows = shown.map((run) => ({ run, forecast: forecasts.get(`${run.id}/${metric}`)?.body }));
    const signature = JSON.stringify([rows, metric, sort, [...selected]]);
    if (signature === drawn) return; // unchanged: keep the table (and the focus in it)
    drawn = signature;
    replace(tableSlot, shown.length ? runsTable({
      rows, metric, sort, selected,
      onSort: (key) => { sort = { key, dir: sort.key === key ? -sort.dir : 1 }; draw(); },
      onSelect: (id, on) => { if (on) selected.add(id); else selected.delete(id); draw(); },
    }) : h("p", { class: "state" }, "No runs match these filters. ",
      h("button", { type: "button", class: "link-button", onclick: clearFilters }, "Clear filters")));
  }

  function clearFilters() {
    Object.keys(filters).forEach((k) => { filters[k] = ""; });
    toolbar.querySelectorAll("select:not([name=metric]), input").forEach((el) => { el.value = ""; });
    draw();
  }

  /** Fetch the forecasts that may have changed: new points, or not settled yet. */
  async function refreshForecasts() {
    draw();
    const metric = metricSelect.value;
    const due = runs.filter((run) => {
      const seen = run.summary[metric];
      const had = forecasts.get(`${run.id}/${metric}`);
      return seen && (!had || had.at !== seen.last_step || had.body.status === "pending"
        || had.body.stale || had.body.provisional);
    });
    await Promise.all(due.map(async (run) => {
      const body = await api.forecast(run.id, metric, signal);
      forecasts.set(`${run.id}/${metric}`, { at: run.summary[metric].last_step, body });
    }));
    if (due.length) draw();
  }

  await refreshForecasts();
  poll(async () => {
    runs = (await api.runs(project, signal)).runs;
    const known = new Set(runs.map((r) => r.id));
    [...selected].filter((id) => !known.has(id)).forEach((id) => selected.delete(id));
    await refreshForecasts();
  });
}
