// The planned learning-rate schedule of API.md (SCHEDULE), evaluated in the browser so the
// chart can draw the part of the plan not yet logged. Mirrors workers/forecast/schedule.py.

function decay(p, shape, peak, final) {
  p = Math.min(1, Math.max(0, p));
  if (shape === "exp") return peak * (Math.max(final, 1e-12) / peak) ** p;
  const frac = shape === "sqrt" ? 1 - Math.sqrt(p)
    : shape === "cosine" ? 0.5 * (1 + Math.cos(Math.PI * p))
    : 1 - p;
  return final + (peak - final) * frac;
}

function knotsFunction(knots) {
  return (s) => {
    let j = 0;
    while (j + 1 < knots.length && knots[j + 1][0] <= s) j++;
    const [x0, y0] = knots[j];
    const [x1, y1] = knots[Math.min(j + 1, knots.length - 1)];
    const frac = x1 > x0 ? Math.min(1, Math.max(0, (s - x0) / (x1 - x0))) : 0;
    return y0 + frac * (y1 - y0);
  };
}

function namedFunction(spec, total) {
  const { type, peak_lr: peak, warmup_steps: warmup = 0, final_lr: final = 0 } = spec;
  const warm = (s) => (warmup > 0 ? peak * Math.min(1, s / warmup) : peak);
  const start = type === "wsd" ? spec.decay_start ?? 0.8 * total : warmup;
  const shape = type === "wsd" ? spec.decay_shape ?? "linear" : type;
  return (s) => {
    if (type === "constant") return warm(s);
    if (type === "inverse_sqrt") {
      return s <= warmup ? warm(s) : peak * Math.sqrt(Math.max(warmup, 1) / Math.max(s, 1));
    }
    return s <= start ? warm(s) : decay((s - start) / Math.max(total - start, 1), shape, peak, final);
  };
}

/** The schedule's horizon: its own total_steps, else the run's, else the last knot. */
function horizon(spec, runTotalSteps) {
  return spec.total_steps ?? runTotalSteps ?? (spec.knots ? spec.knots.at(-1)[0] : null);
}

/**
 * The planned lr from step `from` to the schedule's horizon, as {step, lr}: knots exactly
 * (a repeated step stays a jump); a named shape at about `n` points plus its corners, so
 * the end of warmup and the start of the decay stay sharp.
 */
export function planned(spec, runTotalSteps, from = 0, n = 300) {
  const total = horizon(spec, runTotalSteps);
  if (!total || from >= total) return { step: [], lr: [] };
  if (spec.knots) {
    const fn = knotsFunction(spec.knots);
    const later = spec.knots.filter(([s]) => s > from && s <= total);
    const step = [from, ...later.map(([s]) => s)];
    const lr = [fn(from), ...later.map(([, v]) => v)];
    if (step.at(-1) < total) {
      step.push(total);
      lr.push(fn(total));
    }
    return { step, lr };
  }
  const fn = namedFunction(spec, total);
  const corners = [spec.warmup_steps ?? 0, spec.decay_start ?? 0].filter((s) => s > from && s < total);
  const steps = new Set([from, total, ...corners]);
  for (let i = 1; i < n; i++) steps.add(Math.round(from + ((total - from) * i) / n));
  const step = [...steps].sort((a, b) => a - b);
  return { step, lr: step.map(fn) };
}
