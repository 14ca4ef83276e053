"""Train tiny byte-level transformer LMs on CPU under an LR sweep and write their curves.

The forecaster was developed on the Luo et al. 2025 curves only (one model family, training
loss, one peak lr). These runs give it curves it has never seen: another model, validation
loss beside training loss, and a real peak-lr sweep whose final losses differ widely, so the
early-stopping benchmark can replay real sweeps. The corpus is the CPython standard library's
own sources, so nothing is downloaded. The lr of every step comes from the project's own
``schedule_from_spec``, so what the trainer used is exactly what Curvecast is told.

    PYTHONPATH=. .venv/bin/python -m bench.train_curves --out bench/data/tinylm

All runs of one model size are trained together (``jax.vmap`` over runs, ``lax.scan`` over a
logging interval): the same init and the same batches, so runs differ only by lr and schedule,
and the tiny matmuls are batched enough to keep the CPU busy.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import math
import platform
import sys
import sysconfig
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from workers.forecast.schedule import schedule_from_spec

SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "__pycache__",
             "encodings", "pydoc_data"}  # the last two are generated tables / doc text
VAL_EVERY_FILE = 20  # every 20th file (in corpus order) is validation
SCHEDULES = ("cosine", "wsd", "constant")
# Geometric, x2.5 apart. Chosen from one probe (600 steps, cosine, lrs 1e-4..1e-1 x3.16 apart,
# both sizes): the best lr was 1e-2 for d32 and 3e-3 for d64, 1e-3 was clearly too slow for
# d32 and 1e-1 clearly too high for both; this grid holds both optima well inside.
PROBE = "one 600-step cosine probe per size at lrs 1e-4, 3e-4, ..., 1e-1"
DEFAULT_LRS = (5e-4, 1.26e-3, 3.15e-3, 7.92e-3, 1.99e-2, 5e-2)


@dataclass(frozen=True)
class ModelSize:
    name: str
    d_model: int
    n_layers: int
    n_heads: int


SIZES = {s.name: s for s in (ModelSize("d32", 32, 2, 2), ModelSize("d64", 64, 2, 4),
                              ModelSize("d96", 96, 3, 4), ModelSize("d128", 128, 2, 4))}


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000
    ctx: int = 64
    batch: int = 16
    warmup_frac: float = 0.05
    weight_decay: float = 0.1
    clip_norm: float = 1.0
    log_every: int = 10  # train loss is the mean over this many steps
    val_every: int = 100
    val_batches: int = 16
    init_seed: int = 0  # the same for every run of a size, unless seed_per_run
    data_seed: int = 1  # batch order, the same for every run, unless seed_per_run
    seed_per_run: bool = False  # run r of a size: its own init and batch order (keys folded by r)

    @property
    def warmup(self) -> int:
        return int(round(self.warmup_frac * self.steps))

    @property
    def tokens_per_step(self) -> int:
        return self.ctx * self.batch


@dataclass
class RunLog:
    """What a user's loop would have sent to a tracker for one run."""

    run_id: str
    size: ModelSize
    schedule_name: str
    spec: dict
    params: int
    train: list[tuple[int, float, float]]  # (step, mean loss of the interval, lr at step)
    val: list[tuple[int, float, float]]  # (step, val loss, lr at step)


# --- corpus -----------------------------------------------------------------------------------


def stdlib_files() -> tuple[Path, list[Path]]:
    """The stdlib's hand-written .py sources, ordered by a hash of their relative path: a
    fixed order that mixes packages, so a size cap does not keep only the early alphabet."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [p for p in sorted(root.rglob("*.py"))
             if not SKIP_DIRS & set(p.relative_to(root).parts[:-1])]
    key = lambda p: hashlib.sha256(p.relative_to(root).as_posix().encode()).hexdigest()  # noqa: E731
    return root, sorted(files, key=key)


def load_corpus(cap_bytes: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """(train bytes, val bytes, info): whole files up to ``cap_bytes``, split by file."""
    root, files = stdlib_files()
    train, val, total, kept = [], [], 0, 0
    for i, path in enumerate(files):
        if total >= cap_bytes:
            break
        data = path.read_bytes()
        (val if i % VAL_EVERY_FILE == 0 else train).append(data)
        total, kept = total + len(data), kept + 1
    sep = b"\n"
    info = {"root": str(root), "files_seen": len(files), "files_used": kept,
            "train_files": len(train), "val_files": len(val)}
    return (np.frombuffer(sep.join(train), np.uint8).copy(),
            np.frombuffer(sep.join(val), np.uint8).copy(), info)


# --- model ------------------------------------------------------------------------------------


def init_params(key, size: ModelSize, ctx: int) -> dict:
    """GPT-2 style init: N(0, 0.02), residual projections scaled by 1/sqrt(2 * layers)."""
    import jax
    import jax.numpy as jnp

    d, std = size.d_model, 0.02
    keys = iter(jax.random.split(key, 2 + 4 * size.n_layers))
    normal = lambda shape, s=std: s * jax.random.normal(next(keys), shape)  # noqa: E731
    res = std / math.sqrt(2 * size.n_layers)
    blocks = [{
        "ln1": {"g": jnp.ones(d), "b": jnp.zeros(d)},
        "qkv": normal((d, 3 * d)), "proj": normal((d, d), res),
        "ln2": {"g": jnp.ones(d), "b": jnp.zeros(d)},
        "fc": normal((d, 4 * d)), "fc_b": jnp.zeros(4 * d),
        "out": normal((4 * d, d), res), "out_b": jnp.zeros(d),
    } for _ in range(size.n_layers)]
    return {"tok": normal((256, d)), "pos": normal((ctx, d)), "blocks": blocks,
            "ln_f": {"g": jnp.ones(d), "b": jnp.zeros(d)}}


def _layer_norm(p: dict, x):
    import jax.numpy as jnp

    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / jnp.sqrt(var + 1e-5) * p["g"] + p["b"]


def _attention(blk: dict, x, n_heads: int):
    import jax
    import jax.numpy as jnp

    b, t, d = x.shape
    q, k, v = jnp.split(x @ blk["qkv"], 3, axis=-1)
    heads = lambda a: a.reshape(b, t, n_heads, d // n_heads).transpose(0, 2, 1, 3)  # noqa: E731
    q, k, v = heads(q), heads(k), heads(v)
    att = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d // n_heads)
    att = jnp.where(jnp.tril(jnp.ones((t, t), bool)), att, -1e9)
    y = jax.nn.softmax(att, axis=-1) @ v
    return y.transpose(0, 2, 1, 3).reshape(b, t, d) @ blk["proj"]


def forward(params: dict, tokens, n_heads: int):
    """Logits of a pre-LN decoder-only transformer (causal), output head tied to the input
    embedding."""
    import jax

    # One-hot matmuls, not gathers: XLA's CPU scatter-add (the gather's gradient) is slow.
    x = jax.nn.one_hot(tokens, 256) @ params["tok"] + params["pos"][: tokens.shape[1]]
    for blk in params["blocks"]:
        x = x + _attention(blk, _layer_norm(blk["ln1"], x), n_heads)
        h = jax.nn.gelu(_layer_norm(blk["ln2"], x) @ blk["fc"] + blk["fc_b"])
        x = x + h @ blk["out"] + blk["out_b"]
    return _layer_norm(params["ln_f"], x) @ params["tok"].T


def loss_fn(params: dict, window, n_heads: int):
    """Mean next-byte cross-entropy (nats) of a [batch, ctx + 1] window."""
    import jax
    import jax.numpy as jnp

    logits = forward(params, window[:, :-1].astype(jnp.int32), n_heads)
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -(logp * jax.nn.one_hot(window[:, 1:], 256)).sum(-1).mean()


def count_params(params: dict) -> int:
    import jax

    return int(sum(x.size for x in jax.tree_util.tree_leaves(params)))


# --- training ---------------------------------------------------------------------------------


def make_optimizer(cfg: TrainConfig):
    """Clip to global norm 1, then optax AdamW with its lr injected per step (the lr comes
    from our schedule); weight decay on matrices only, as usual for transformers."""
    import jax
    import optax

    mask = lambda p: jax.tree_util.tree_map(lambda x: x.ndim >= 2, p)  # noqa: E731
    adamw = optax.inject_hyperparams(optax.adamw)(
        learning_rate=0.0, b1=0.9, b2=0.95, weight_decay=cfg.weight_decay, mask=mask)
    return optax.chain(optax.clip_by_global_norm(cfg.clip_norm), adamw)


def sample_batch(data, key, batch: int, ctx: int):
    """``batch`` random windows of ``ctx + 1`` bytes (the data key fixes the batch order)."""
    import jax

    starts = jax.random.randint(key, (batch,), 0, data.shape[0] - ctx - 1)
    return jax.vmap(lambda s: jax.lax.dynamic_slice(data, (s,), (ctx + 1,)))(starts)


def make_interval_fn(cfg: TrainConfig, size: ModelSize, opt):
    """jit(vmap over runs(scan over one logging interval)): returns new states and each run's
    mean train loss over the interval."""
    import jax
    import jax.numpy as jnp

    grad_fn = jax.value_and_grad(partial(loss_fn, n_heads=size.n_heads))

    def one_run(params, opt_state, lrs, data, keys):
        def step(carry, xs):
            params, opt_state = carry
            lr, key = xs
            loss, grads = grad_fn(params, sample_batch(data, key, cfg.batch, cfg.ctx))
            adamw = opt_state[1]
            opt_state = (opt_state[0], adamw._replace(
                hyperparams={**adamw.hyperparams, "learning_rate": lr}))
            updates, opt_state = opt.update(grads, opt_state, params)
            params = jax.tree_util.tree_map(lambda p, u: p + u, params, updates)
            return (params, opt_state), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (lrs, keys))
        return params, opt_state, jnp.mean(losses)

    # Batch keys: one sequence shared by every run, or each run's own.
    keys_axis = 0 if cfg.seed_per_run else None
    return jax.jit(jax.vmap(one_run, in_axes=(0, 0, 0, None, keys_axis)))


def make_eval_fn(size: ModelSize):
    """jit(vmap over runs): mean loss over the fixed validation batches."""
    import jax

    def one_run(params, windows):
        losses = jax.lax.map(lambda w: loss_fn(params, w, size.n_heads), windows)
        return losses.mean()

    return jax.jit(jax.vmap(one_run, in_axes=(0, None)))


def fixed_val_windows(val: np.ndarray, cfg: TrainConfig) -> np.ndarray:
    """[val_batches, batch, ctx + 1] windows at evenly spaced offsets: the same every time."""
    n = cfg.val_batches * cfg.batch
    starts = np.linspace(0, val.size - cfg.ctx - 2, n).astype(int)
    windows = np.stack([val[s: s + cfg.ctx + 1] for s in starts])
    return windows.reshape(cfg.val_batches, cfg.batch, cfg.ctx + 1)


# WSD variants: (share of the steps the cooldown takes, its shape). "wsd" is tinylm's.
WSD_COOLDOWNS = {"wsd": (0.2, "linear"), "wsd_sqrt10": (0.1, "sqrt"),
                 "wsd_linear40": (0.4, "linear")}


def lr_spec(name: str, peak: float, cfg: TrainConfig) -> dict:
    """The API SCHEDULE of a sweep run, all with the same linear warmup: cosine to 0.1x peak;
    WSD with a cooldown to 0 over the last 20 % (linear), 10 % (1 - sqrt) or 40 % (linear);
    a linear decay to 0 from the warmup on; inverse square root; constant; an exponential
    decay from the warmup on to 0.01x peak; or steps (x0.1 at half the steps, again at 3/4) as
    knots."""
    base = {"peak_lr": peak, "warmup_steps": cfg.warmup, "total_steps": cfg.steps}
    if name == "exp":
        return {"type": "wsd", **base, "final_lr": float(f"{0.01 * peak:.6g}"),
                "decay_start": cfg.warmup, "decay_shape": "exp"}
    if name == "step":
        half, late = cfg.steps // 2, (3 * cfg.steps) // 4
        lrs = [float(f"{peak * f:.6g}") for f in (1.0, 0.1, 0.01)]
        return {"knots": [[0, 0.0], [cfg.warmup, lrs[0]], [half, lrs[0]], [half, lrs[1]],
                          [late, lrs[1]], [late, lrs[2]], [cfg.steps, lrs[2]]], **base}
    if name == "cosine":
        return {"type": "cosine", **base, "final_lr": float(f"{0.1 * peak:.6g}")}
    if name in WSD_COOLDOWNS:
        share, shape = WSD_COOLDOWNS[name]
        return {"type": "wsd", **base, "final_lr": 0.0,
                "decay_start": int(round((1.0 - share) * cfg.steps)), "decay_shape": shape}
    if name == "linear":
        return {"type": "linear", **base, "final_lr": 0.0}
    if name == "inverse_sqrt":
        return {"type": "inverse_sqrt", **base}
    if name == "constant":
        return {"type": "constant", **base}
    raise ValueError(f"schedule: unknown {name!r}")


def describe(spec: dict) -> str:
    """runs.csv's plain-words lr_schedule."""
    head = f"linear warmup {spec['warmup_steps']} steps to {spec['peak_lr']:g}"
    if "knots" in spec:
        drops = [(a[0], b[1]) for a, b in itertools.pairwise(spec["knots"][1:]) if a[0] == b[0]]
        return head + "".join(f", {lr:g} from step {step}" for step, lr in drops)
    if spec["type"] == "wsd" and spec["decay_shape"] == "exp":
        return f"{head}, exponential decay to {spec['final_lr']:g} at step {spec['total_steps']}"
    if spec["type"] == "cosine":
        return f"{head}, cosine decay to {spec['final_lr']:g} at step {spec['total_steps']}"
    if spec["type"] == "wsd":
        shape = {"linear": "linear", "sqrt": "1 - sqrt"}[spec["decay_shape"]]
        return (f"{head}, constant to step {spec['decay_start']}, {shape} decay to "
                f"{spec['final_lr']:g} at step {spec['total_steps']}")
    if spec["type"] == "linear":
        return f"{head}, linear decay to {spec['final_lr']:g} at step {spec['total_steps']}"
    if spec["type"] == "inverse_sqrt":
        return f"{head}, then peak x sqrt(warmup / step)"
    return f"{head}, then constant {spec['peak_lr']:g}"


def train_size(size: ModelSize, specs: list[tuple[str, dict]], cfg: TrainConfig,
               train: np.ndarray, val: np.ndarray) -> list[RunLog]:
    """Train every (schedule, spec) run of one model size together and return their logs."""
    import jax
    import jax.numpy as jnp

    n = len(specs)
    init_key, data_key = jax.random.PRNGKey(cfg.init_seed), jax.random.PRNGKey(cfg.data_seed)
    runs = jnp.arange(n)
    if cfg.seed_per_run:
        params = jax.vmap(lambda r: init_params(jax.random.fold_in(init_key, r), size,
                                                cfg.ctx))(runs)
    else:
        params0 = init_params(init_key, size, cfg.ctx)
        params = jax.tree_util.tree_map(lambda x: jnp.stack([x] * n), params0)
    opt = make_optimizer(cfg)
    opt_state = jax.vmap(opt.init)(params)
    interval, evaluate = make_interval_fn(cfg, size, opt), make_eval_fn(size)
    data, windows = jnp.asarray(train), jnp.asarray(fixed_val_windows(val, cfg))
    steps = np.arange(1, cfg.steps + 1)
    lrs = np.stack([schedule_from_spec(s).lr(steps) for _, s in specs]).astype(np.float32)
    n_params = count_params(jax.tree_util.tree_map(lambda x: x[0], params))
    logs = [RunLog(f"{size.name}_{name}_lr{s['peak_lr']:.2g}", size, name, s, n_params, [], [])
            for name, s in specs]

    def batch_keys(idx):
        at = lambda key: jax.vmap(lambda i: jax.random.fold_in(key, i))(idx)  # noqa: E731
        if cfg.seed_per_run:
            return jax.vmap(lambda r: at(jax.random.fold_in(data_key, r)))(runs)
        return at(data_key)

    for start in range(0, cfg.steps, cfg.log_every):
        idx = steps[start: start + cfg.log_every]
        keys = batch_keys(jnp.asarray(idx))
        params, opt_state, loss = interval(params, opt_state, jnp.asarray(lrs[:, idx - 1]),
                                           data, keys)
        last = int(idx[-1])
        if last % 500 == 0:
            print(f"  {size.name} step {last}/{cfg.steps}", flush=True)
        for r, log in enumerate(logs):
            log.train.append((last, float(loss[r]), float(lrs[r, last - 1])))
        if last % cfg.val_every == 0 or last == cfg.steps:
            vloss = np.asarray(evaluate(params, windows))
            for r, log in enumerate(logs):
                log.val.append((last, float(vloss[r]), float(lrs[r, last - 1])))
    return logs


# --- output -----------------------------------------------------------------------------------


def _final(points: list[tuple[int, float, float]]) -> float:
    return points[-1][1] if points else float("nan")


def _diverged_step(log: RunLog) -> int | None:
    """First logged step whose train loss is NaN or infinite (the run is kept as it ran)."""
    return next((s for s, v, _ in log.train if not math.isfinite(v)), None)


def write_curves(path: Path, logs: list[RunLog], cfg: TrainConfig) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["run_id", "step", "tokens", "loss", "split", "lr"])
        for log in logs:
            for split, points in (("train", log.train), ("val", log.val)):
                for step, loss, lr in points:
                    w.writerow([log.run_id, step, step * cfg.tokens_per_step,
                                f"{loss:.5g}", split, f"{lr:.6g}"])


def write_runs(path: Path, logs: list[RunLog], cfg: TrainConfig) -> None:
    cols = ["run_id", "total_steps", "lr_schedule", "warmup_steps", "cooldown_start_step",
            "peak_lr", "params", "tokens_per_step", "model", "schedule_name",
            "final_train_loss", "final_val_loss", "diverged_step", "lr_spec"]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for log in logs:
            s = log.spec
            w.writerow([log.run_id, s["total_steps"], describe(s), s["warmup_steps"],
                        s.get("decay_start", ""), s["peak_lr"], log.params,
                        cfg.tokens_per_step, log.size.name, log.schedule_name,
                        f"{_final(log.train):.5g}", f"{_final(log.val):.5g}",
                        _diverged_step(log) or "", json.dumps(s, sort_keys=True)])


def write_provenance(path: Path, cfg: TrainConfig, sizes: list[ModelSize], lrs: list[float],
                     info: dict, logs: list[RunLog], wall_s: float, argv: list[str]) -> None:
    import jax
    import optax

    params = {log.size.name: log.params for log in logs}
    lr_text = ", ".join(f"{x:g}" for x in lrs)
    first: dict[str, dict] = {}  # each schedule as its first run has it
    for log in logs:
        first.setdefault(log.schedule_name, log.spec)
    names = list(first)
    shapes = "; ".join(f"{n}: " + describe(spec).replace(f"{spec['peak_lr']:g}", "peak")
                       for n, spec in first.items())
    size_lines = "\n".join(
        f"  - `{s.name}`: d_model {s.d_model}, {s.n_layers} layers, {s.n_heads} heads, "
        f"{params.get(s.name, 0):,} parameters (tied byte embedding included)" for s in sizes)
    seeds = (f"run r of a size (its row in runs.csv, counted from 0 within the size) starts "
             f"from weights drawn with jax.random.fold_in(PRNGKey({cfg.init_seed}), r) and draws "
             f"its batches with fold_in(PRNGKey({cfg.data_seed}), r): every run has its own "
             f"init and batch order, as runs of a sweep with their own seeds do."
             if cfg.seed_per_run else
             f"init seed {cfg.init_seed} and data seed {cfg.data_seed} for every run, so runs "
             f"of a size start from the same weights and see the same batches; they differ "
             f"only by lr and schedule.")
    title = "tiny byte-level transformer LMs, learning-rate sweeps (generated here)"
    text = f"""# {path.parent.name}: {title}

What: {len(logs)} training runs of small decoder-only transformers on bytes of Python source,
{len(sizes)} model sizes x schedules {", ".join(names)} x peak lrs {lr_text}.
Per run: the train loss averaged over each {cfg.log_every}-step interval (logged at the
interval's last step, with the lr at that step) and the validation loss (mean over the same
{cfg.val_batches} fixed validation batches) every {cfg.val_every} steps and at the last step.
Nobody tuned anything on these curves: the forecaster and the early-stopping benchmark were
developed on other data. The lr grid was chosen from {PROBE} (not kept), only so that the
best peak lr lies inside it.

Generated on this machine by `bench/train_curves.py`:

    PYTHONPATH=. .venv/bin/python -m bench.{Path(argv[0]).stem} {" ".join(argv[1:])}

- Wall time: {wall_s / 60:.1f} min on the shared 2-core development VM (CPU only).
- Software: Python {platform.python_version()}, jax {jax.__version__}, optax {optax.__version__}.
- Seeds: {seeds} CPU float32 (a re-run on another CPU or thread count may differ in the last
  digits).
- Models: pre-LN decoder-only transformers (learned positions, GELU MLP of 4 x d_model,
  causal attention), context {cfg.ctx} bytes, vocab 256:
{size_lines}
- Training: {cfg.steps} steps of batch {cfg.batch} x {cfg.ctx} bytes ({cfg.tokens_per_step}
  tokens per step); optax AdamW (b1 0.9, b2 0.95, weight decay {cfg.weight_decay} on matrices)
  after clipping the gradient's global norm to {cfg.clip_norm}; linear warmup
  {cfg.warmup} steps. The lr of step t (1-based) is `schedule_from_spec(lr_spec).lr(t)` from
  `workers/forecast/schedule.py`, the spec stored in runs.csv's `lr_spec`. {shapes}.
- Corpus: the {info["files_used"]} first files (in order of the sha256 of their relative path)
  of the CPython {platform.python_version()} standard library's `.py` sources at
  `{info["root"]}`, skipping test folders, site-packages and the generated `encodings/` and
  `pydoc_data/`; capped at {info["cap_bytes"] / 1e6:g} MB. Every {VAL_EVERY_FILE}th file is
  validation: {info["train_bytes"]:,} train bytes in {info["train_files"]} files,
  {info["val_bytes"]:,} validation bytes in {info["val_files"]} files. Training windows are
  drawn at random offsets of the concatenated train files. The CPython sources are under the
  PSF License Agreement, which permits this use (reproduction and derivative works); no
  text of the corpus is stored here, only losses.

Layout as /work/shared/data/curves/<source>/: `curves.csv` (`run_id,step,tokens,loss,split,lr`,
split = train | val, tokens = step x tokens_per_step) and `runs.csv` (the shared columns plus
`model, schedule_name, final_train_loss, final_val_loss, diverged_step, lr_spec`;
`diverged_step` is the first step with a non-finite train loss, empty if none, and such a run
is kept as it ran).
"""
    path.write_text(text)


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=TrainConfig.steps)
    ap.add_argument("--sizes", default="d32,d64", help=f"comma-separated of {list(SIZES)}")
    ap.add_argument("--schedules", default=",".join(SCHEDULES))
    ap.add_argument("--lrs", default=",".join(f"{x:g}" for x in DEFAULT_LRS))
    ap.add_argument("--cap-mb", type=float, default=4.0, help="corpus size cap")
    ap.add_argument("--seed-per-run", action="store_true",
                    help="each run its own init and batch order (default: shared by a size)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    cfg = TrainConfig(steps=args.steps, seed_per_run=args.seed_per_run)
    sizes = [SIZES[s] for s in args.sizes.split(",")]
    lrs = [float(x) for x in args.lrs.split(",")]
    names = args.schedules.split(",")
    t0 = time.perf_counter()
    train, val, info = load_corpus(int(args.cap_mb * 1e6))
    info |= {"cap_bytes": int(args.cap_mb * 1e6), "train_bytes": train.size,
             "val_bytes": val.size}
    print(f"corpus: {train.size:,} train / {val.size:,} val bytes", flush=True)
    logs: list[RunLog] = []
    for size in sizes:
        t = time.perf_counter()
        specs = [(name, lr_spec(name, lr, cfg)) for name in names for lr in lrs]
        logs += (new := train_size(size, specs, cfg, train, val))
        print(f"{size.name}: {len(new)} runs, {time.perf_counter() - t:.0f} s", flush=True)
        for log in new:
            print(f"  {log.run_id:28s} train {_final(log.train):.4f} val {_final(log.val):.4f}",
                  flush=True)
    wall = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    write_curves(args.out / "curves.csv", logs, cfg)
    write_runs(args.out / "runs.csv", logs, cfg)
    write_provenance(args.out / "PROVENANCE.md", cfg, sizes, lrs, info, logs, wall,
                     ["train_curves.py", *argv])
    print(f"wrote {len(logs)} runs to {args.out} in {wall / 60:.1f} min")


if __name__ == "__main__":
    main()
