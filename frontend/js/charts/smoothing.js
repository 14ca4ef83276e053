// Exponential moving average with TensorBoard's debiasing, so early points are not pulled
// toward zero. Non-finite values are skipped (they stay gaps), not smoothed in.

export function ema(values, weight) {
  let last = 0;
  let n = 0;
  return values.map((v) => {
    if (v === null || !Number.isFinite(v)) return null;
    last = last * weight + (1 - weight) * v;
    n += 1;
    return last / (1 - weight ** n);
  });
}
