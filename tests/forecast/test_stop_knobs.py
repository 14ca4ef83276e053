"""bench.stop_knobs, bench.early_stopping's comparisons at equal regret: Curvecast's threshold
is a knob like the baselines' ones, chosen by the same rules (in hindsight per source, or on
the other sources)."""

from bench.stop_knobs import CURVECAST, transferred_settings, with_thresholds, zero_regret_settings


def _score(source: str, threshold: float, saved: float, best_stopped: bool) -> dict:
    return {"method": f"{CURVECAST}@{threshold:g}", "source": source, "kind": source,
            "planned": 1000, "run": round(1000 * (1 - saved)), "best_stopped": best_stopped,
            "n_runs": 4, "regret": 0.01 * best_stopped, "rel_regret": 0.01 * best_stopped}


# (threshold, steps saved, best run stopped) per source: lower thresholds save more and, past
# some point, stop a best run; where is a matter of the source.
SWEEPS = {"a": [(0.9, 0.10, False), (0.7, 0.30, False), (0.5, 0.50, True)],
          "b": [(0.9, 0.05, False), (0.7, 0.20, True), (0.5, 0.40, True)]}
SCORES = [_score(src, *cell) for src, cells in SWEEPS.items() for cell in cells]


def _ours():
    return with_thresholds({}, {}, SCORES)


def test_in_hindsight_each_source_gets_its_lowest_threshold_that_stops_no_best_run():
    table = zero_regret_settings(*_ours())
    assert "| a | curvecast | threshold=0.7 | 30.0% |" in table
    assert "| b | curvecast | threshold=0.9 | 5.0% |" in table


def test_a_threshold_set_on_the_other_sources_is_scored_on_this_one():
    table = transferred_settings(*_ours(), SCORES)
    # a: b chose 0.9 (0.7 stops one of its best runs); b: a chose 0.7, which stops b's best.
    assert "| a | curvecast | threshold=0.9 | 10.0% | 0 | 0.00% |" in table
    assert "| b | curvecast | threshold=0.7 | 20.0% | 1 | 1.00% |" in table
    assert "| a | curvecast@0.9 | default threshold | 10.0% | 0 | 0.00% |" in table
