// Which runs the table shows: by status, group, tag and config expressions such as
// "optimizer=adamw model.width>512 warmup!=0 dropout" (a bare key: the config has it).

import { configValue, flatten } from "./format.js";

const EXPR = /^([^=!<>]+)(=|!=|<|>)(.*)$/;

function compare(actual, op, wanted) {
  const a = Number(actual);
  const w = Number(wanted);
  const numeric = wanted !== "" && typeof actual !== "boolean" && !Number.isNaN(a) && !Number.isNaN(w);
  if (op === "<") return numeric && a < w;
  if (op === ">") return numeric && a > w;
  const equal = numeric ? a === w : configValue(actual) === wanted;
  return op === "=" ? equal : !equal;
}

/** A predicate on a run's config from the filter text; each term must hold. */
function configPredicate(text) {
  const terms = text.trim().split(/\s+/).filter(Boolean).map((term) => {
    const m = term.match(EXPR);
    return m ? { key: m[1], op: m[2], value: m[3] } : { key: term };
  });
  return (config) => {
    const flat = flatten(config);
    return terms.every(({ key, op, value }) =>
      key in flat && (op === undefined || compare(flat[key], op, value)));
  };
}

/** filters: {status, group, tag, config}; an empty value matches every run. */
export function filterRuns(runs, filters) {
  const configOk = configPredicate(filters.config);
  return runs.filter((run) =>
    (!filters.status || run.status === filters.status)
    && (!filters.group || run.group === filters.group)
    && (!filters.tag || run.tags.includes(filters.tag))
    && configOk(run.config));
}

/** The distinct values of `pick(run)` (flattened when it returns a list), sorted. */
export function distinct(runs, pick) {
  return [...new Set(runs.flatMap(pick).filter((v) => v !== null && v !== undefined))].sort();
}
