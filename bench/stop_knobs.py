"""Each early-stopping method at the setting of its knob chosen per source in hindsight, and
at the one chosen on the other sources (bench.early_stopping's comparisons at equal regret).
Curvecast's knob is its threshold; the baselines' ones are their Optuna settings. Scores are
bench.early_stopping.score's dicts, one per sweep; no replaying here."""

from __future__ import annotations

from backend.alerts.schemas import StopPolicyIn

CURVECAST = "curvecast"
DEFAULT_THRESHOLD = StopPolicyIn.model_fields["threshold"].default  # the policy's default


def threshold_of(method: str) -> float | None:
    """The threshold of a Curvecast replay's method name ("curvecast@0.9"), else None."""
    name, _, t = method.partition("@")
    return float(t) if name == CURVECAST else None


Knobs = dict[tuple[str, str, float], list[dict]]  # (source, method, setting): per-sweep scores
Grids = dict[str, tuple[str, tuple[float, ...]]]  # method: (its knob's name, settings)


def with_thresholds(knobs: Knobs, grids: Grids, scores: list[dict]) -> tuple[Knobs, Grids]:
    """``knobs`` and ``grids`` (the baselines') with Curvecast's replays in ``scores`` added,
    its threshold as its knob, over the thresholds replayed."""
    knobs = dict(knobs)
    ours = [(s, t) for s in scores if (t := threshold_of(s["method"])) is not None]
    for s, t in ours:
        knobs.setdefault((s["source"], CURVECAST, t), []).append(s)
    if ours:
        grids = {CURVECAST: ("threshold", tuple(sorted({t for _, t in ours})))} | grids
    return knobs, grids


def saved(rows: list[dict]) -> float:
    """The share of the planned steps that ``rows``' sweeps did not run."""
    return 1.0 - sum(r["run"] for r in rows) / sum(r["planned"] for r in rows)


def zero_regret_settings(knobs: Knobs, grids: Grids) -> str:
    """Per source, each method at the knob setting that saves the most steps while stopping
    no sweep's best run (chosen in hindsight, which flatters every method)."""
    lines = ["| source | method | setting | steps saved |", "| --- | --- | --- | ---: |"]
    for source in sorted({key[0] for key in knobs}):
        for name, (knob, settings) in grids.items():
            fair = [(k, saved(knobs[source, name, k])) for k in settings
                    if not any(r["best_stopped"] for r in knobs[source, name, k])]
            best = max(fair, key=lambda f: f[1], default=None)
            setting = (f"{knob}={best[0]:g}" if best
                       else "none of " + ",".join(f"{k:g}" for k in settings))
            saved_cell = f"{100 * best[1]:.1f}%" if best else "-"
            lines.append(f"| {source} | {name} | {setting} | {saved_cell} |")
    return "\n".join(lines)


def transferred_settings(knobs: Knobs, grids: Grids, scores: list[dict]) -> str:
    """Per source, each method at the knob setting chosen on the *other* sources (fewest
    sweeps' best runs stopped there, then most steps saved), as a user sets a knob from
    experience, beside Curvecast's default threshold, which no source chose: "at equal
    regret" without letting any method see the answers."""
    lines = ["| source | method | setting (chosen on the other sources) | steps saved | "
             "best run stopped | max regret % |", "| --- | --- | --- | ---: | ---: | ---: |"]
    sources = sorted({key[0] for key in knobs})

    def row(source: str, method: str, setting: str, rows: list[dict]) -> str:
        return (f"| {source} | {method} | {setting} | {100 * saved(rows):.1f}% | "
                f"{sum(r['best_stopped'] for r in rows)} | "
                f"{100 * max(r['rel_regret'] for r in rows):.2f}% |")

    default = f"{CURVECAST}@{DEFAULT_THRESHOLD:g}"
    for source in sources:
        ours = [s for s in scores if s["source"] == source and s["method"] == default]
        if ours:
            lines.append(row(source, default, "default threshold", ours))
        for name, (knob, settings) in grids.items():
            elsewhere = {k: [r for other in sources if other != source
                             for r in knobs[other, name, k]] for k in settings}
            k = min(settings, key=lambda k: (sum(r["best_stopped"] for r in elsewhere[k]),
                                             -saved(elsewhere[k])))
            lines.append(row(source, name, f"{knob}={k:g}", knobs[source, name, k]))
    return "\n".join(lines)
