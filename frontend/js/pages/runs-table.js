// The runs table: one row per run with its progress, last value, forecast and stop flag.
// Headers sort (click again to reverse); the first column selects runs to compare.

import { toNumber } from "../api.js";
import { h } from "../dom.js";
import * as fmt from "../format.js";

const STATUS_WORDS = {
  pending: "fitting…", insufficient_data: "not enough data", diverged: "diverged",
  not_loss_like: "not loss-like",
};

export const shouldStop = (run, fc) => Boolean(run.should_stop || fc?.should_stop);

function columns(metric) {
  return [
    { key: "name", label: "Name", value: (r) => r.run.name.toLowerCase(),
      cell: (r) => h("a", { href: `#/run/${encodeURIComponent(r.run.id)}` }, r.run.name) },
    { key: "group", label: "Group", value: (r) => r.run.group, cell: (r) => r.run.group ?? "—" },
    { key: "tags", label: "Tags", value: (r) => r.run.tags.join(","),
      cell: (r) => r.run.tags.map((t) => h("span", { class: "tag" }, t)) },
    { key: "status", label: "Status", value: (r) => r.run.status,
      cell: (r) => h("span", { class: `status status-${r.run.status}` }, r.run.status) },
    { key: "progress", label: "Progress", value: (r) => fmt.progress(r.run), cell: progressCell },
    { key: "last", label: `Last ${metric}`, num: true,
      value: (r) => toNumber(r.run.summary[metric]?.last_value),
      cell: (r) => fmt.value(r.run.summary[metric]?.last_value) },
    { key: "forecast", label: `Forecast ${metric}`, num: true,
      value: (r) => r.forecast?.final?.mean, cell: forecastCell },
    { key: "p", label: "P(underperform)", num: true, value: (r) => r.forecast?.p_underperform,
      cell: (r) => fmt.percent(r.forecast?.p_underperform) },
    { key: "stop", label: "Stop?", value: (r) => (shouldStop(r.run, r.forecast) ? 1 : 0),
      cell: stopFlag },
  ];
}

function progressCell({ run }) {
  const p = fmt.progress(run);
  const text = `${fmt.integer(run.last_step)} / ${fmt.integer(run.total_steps)}`;
  return h("div", { class: "progress" },
    p !== null && h("progress", { max: "1", value: p, "aria-label": `${Math.round(p * 100)}%` }),
    h("span", {}, text));
}

/** The forecast's final value and interval, marked while provisional; else its status. */
export function forecastCell({ forecast }) {
  if (!forecast) return h("span", { class: "muted" }, "—");
  if (forecast.status !== "ready") {
    return h("span", { class: "muted", title: forecast.reason }, STATUS_WORDS[forecast.status]);
  }
  const level = Math.round(forecast.final.level * 100);
  return [
    h("span", { title: `${level}% interval, at step ${fmt.integer(forecast.target_step)}` },
      fmt.interval(forecast.final)),
    forecast.provisional && h("span", { class: "muted forecast-provisional",
      title: fmt.PROVISIONAL }, " provisional"),
  ];
}

/** "Stop", with the reasons in words as its tooltip, or a muted "no". */
export function stopFlag({ run, forecast }) {
  if (!shouldStop(run, forecast)) return h("span", { class: "muted" }, "no");
  return h("span", { class: "flag-stop", title: fmt.stopReason(run.stop_reason) }, "Stop");
}

function compareRows(dir, value) {
  return (a, b) => {
    const va = value(a);
    const vb = value(b);
    if (va === vb) return 0;
    if (va === null || va === undefined || Number.isNaN(va)) return 1; // blanks last
    if (vb === null || vb === undefined || Number.isNaN(vb)) return -1;
    return (va < vb ? -1 : 1) * dir;
  };
}

/**
 * rows: [{run, forecast}]; sort: {key, dir} (dir 1 or -1, key null for newest first);
 * selected: a Set of run ids.
 */
export function runsTable({ rows, metric, sort, selected, onSort, onSelect }) {
  const cols = columns(metric);
  const col = cols.find((c) => c.key === sort.key);
  const ordered = col ? rows.slice().sort(compareRows(sort.dir, col.value)) : rows;
  const header = cols.map((c) => h("th", {
    scope: "col", class: c.num ? "num" : null,
    "aria-sort": c.key === sort.key ? (sort.dir > 0 ? "ascending" : "descending") : "none",
  }, h("button", { type: "button", class: "sort", "data-sort": c.key,
    onclick: () => onSort(c.key) }, c.label)));
  return h("table", { class: "data runs" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, h("span", { class: "visually-hidden" },
      "Compare")), header)),
    h("tbody", {}, ordered.map((row) => h("tr", {
      class: shouldStop(row.run, row.forecast) ? "stop" : null, "data-run": row.run.id,
    },
    h("td", {}, h("input", { type: "checkbox", checked: selected.has(row.run.id),
      "aria-label": `Select ${row.run.name} to compare`,
      onchange: (e) => onSelect(row.run.id, e.target.checked) })),
    cols.map((c) => h("td", { class: c.num ? "num" : null }, c.cell(row)))))),
  );
}
