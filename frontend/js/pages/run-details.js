// The parts of the run page around the charts: its header facts, the forecast caption
// under each chart, and the config / schedule tables.

import { h } from "../dom.js";
import * as fmt from "../format.js";
import { shouldStop } from "./runs-table.js";

export function runHeader(run, forecasts) {
  const stop = shouldStop(run, null) || [...forecasts.values()].some((fc) => fc?.should_stop);
  const p = fmt.progress(run);
  const fact = (label, value) => value !== null && value !== undefined && value !== ""
    && [h("dt", {}, label), h("dd", {}, value)];
  return h("header", { class: "run-header" },
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
      h("a", { href: "#/projects" }, "Projects"), " / ",
      h("a", { href: `#/p/${encodeURIComponent(run.project)}` }, run.project), " / ", run.name),
    h("h1", {}, run.name, " ", h("span", { class: `status status-${run.status}` }, run.status)),
    stop && h("p", { class: "banner-stop", role: "alert" }, h("strong", {}, "Should stop: "),
      fmt.stopReason(run.stop_reason)),
    h("dl", { class: "facts" },
      fact("Progress", `${fmt.integer(run.last_step)} / ${fmt.integer(run.total_steps)} steps`
        + (p === null ? "" : ` (${fmt.percent(p)})`)),
      fact("Group", run.group),
      fact("Tags", run.tags.length ? run.tags.map((t) => h("span", { class: "tag" }, t)) : null),
      fact("Parameters", run.params && fmt.value(run.params)),
      fact("Tokens / step", run.tokens_per_step && fmt.integer(run.tokens_per_step)),
      fact("Created", fmt.date(run.created_at)),
      fact("Last seen", fmt.date(run.last_seen)),
    ),
  );
}

/** When the run reaches `step` at its current pace, from a walltime.js clock (or null). */
function eta(clk, step) {
  const t = clk?.pace ? clk.at(step) : null;
  if (t === null || step <= clk.lastStep) return null;
  return h("span", { class: "eta" }, h("br"),
    h("strong", {}, `ETA ${fmt.dateTime(t * 1000)}`),
    ` at the current pace: ${fmt.duration(t - clk.lastTime)} after the last logged point`,
    ` (${fmt.value(clk.pace)} steps/s over the last 20% of points)`);
}

/**
 * What the forecast says, or why there is none; with `clk` (the series' wall-time clock),
 * also when the run reaches the forecast's target step at its current pace.
 */
export function forecastCaption(key, fc, summary, clk = null) {
  const nonfinite = summary?.nonfinite
    ? h("span", { class: "warn" }, `${fmt.integer(summary.nonfinite)} non-finite values (gaps). `)
    : null;
  if (!fc || fc.status !== "ready") {
    const why = !fc ? "" : fc.status === "pending" ? "fitting…" : fc.reason || fc.status;
    return [nonfinite, fc ? `No forecast: ${why}` : ""];
  }
  const level = Math.round(fc.final.level * 100);
  return [
    nonfinite,
    h("strong", {}, `Forecast at step ${fmt.integer(fc.target_step)}: ${fmt.value(fc.final.mean)}`),
    ` (${level}% interval ${fmt.value(fc.final.lower)} to ${fmt.value(fc.final.upper)})`,
    fc.p_underperform !== null && ` · P(underperform) ${fmt.percent(fc.p_underperform)}`,
    h("br"),
    `Model ${fc.model}, fitted on steps up to ${fmt.integer(fc.fitted_upto_step)}`,
    ` on ${fmt.date(fc.fitted_at)}`,
    fc.stale && h("span", { class: "muted" }, " (newer points arrived; refitting)"),
    fc.provisional && h("span", { class: "muted forecast-provisional" }, ` (${fmt.PROVISIONAL})`),
    fc.reason && h("span", { class: "muted forecast-reason" }, `. Why: ${fc.reason}`),
    fc.prior && h("span", { class: "muted" }, `. Prior: ${fc.prior}`),
    fc.fitted_upto_step < fc.target_step && eta(clk, fc.target_step),
  ];
}

function keyValueTable(caption, obj, show = (k, v) => fmt.configValue(v)) {
  const rows = Object.entries(fmt.flatten(obj)).filter(([, v]) => v !== null);
  return h("table", { class: "data kv" }, h("caption", {}, caption),
    h("tbody", {}, rows.length ? rows.map(([k, v]) => h("tr", {},
      h("th", { scope: "row" }, k), h("td", {}, show(k, v))))
      : h("tr", {}, h("td", { class: "muted" }, "none"))));
}

// A schedule sent as the lr a run logged has a knot per logged step: hundreds of them, which
// the chart's lr line already draws. A few are shown as they are; more as their span, folded.
const KNOTS_SHOWN = 8;

function knots(list) {
  if (!Array.isArray(list) || list.length <= KNOTS_SHOWN) return fmt.configValue(list);
  const lrs = list.map(([, lr]) => lr);
  return [
    `${fmt.integer(list.length)} knots, steps ${fmt.integer(list[0][0])} to `
      + `${fmt.integer(list[list.length - 1][0])}, lr ${fmt.value(Math.min(...lrs))} to `
      + `${fmt.value(Math.max(...lrs))}`,
    h("details", { class: "knots" }, h("summary", {}, "every knot"),
      h("code", {}, fmt.configValue(list))),
  ];
}

export function runSettings(run) {
  return h("section", { class: "settings", "aria-label": "Run settings" },
    keyValueTable("Config", run.config),
    keyValueTable("Learning-rate schedule", run.lr_schedule ?? {},
      (k, v) => (k === "knots" ? knots(v) : fmt.configValue(v))),
  );
}
