"""The API's one door into the pure science: rebuild a stored fit and evaluate it.

Predictions and frontiers are asked for at arbitrary points, so they cannot be stored ahead of
time like a run's forecast. Evaluating a fitted law is cheap (no fitting happens here), and
doing it in the request keeps `predict` synchronous. The import-linter contract lets only this
module reach `workers.forecast`, and only its scaling modules.
"""

from backend.models import ScalingFitRow
from backend.scaling.schemas import HPARAM_PREFIX, FrontierPoint, PredictIn, PredictOut
from workers.forecast.scaling import ScalingFit, frontier
from workers.forecast.scaling_hparams import HparamLaw


def is_hparam(law: str) -> bool:
    return law.startswith(HPARAM_PREFIX)


def predict(row: ScalingFitRow, body: PredictIn) -> PredictOut:
    """A ready fit's prediction: the metric for a loss law, the optimum for a hparam law."""
    if is_hparam(row.law):
        law = HparamLaw.from_dict(row.result)
        mean, lower, upper = law.predict(body.params, body.tokens)
        return PredictOut(quantity=row.law.removeprefix(HPARAM_PREFIX), mean=mean,
                          lower=lower, upper=upper, level=law.level)
    fit = ScalingFit.from_dict(row.result)
    mean, lower, upper = fit.predict(body.params, body.tokens,
                                     unique_tokens=body.unique_tokens, flops=body.flops)
    return PredictOut(quantity=row.metric, mean=mean, lower=lower, upper=upper, level=fit.level)


def compute_frontier(row: ScalingFitRow, computes: list[float]) -> list[FrontierPoint]:
    """The compute-optimal (N, D) and loss at each budget, with their intervals."""
    points = frontier(ScalingFit.from_dict(row.result), computes)
    return [FrontierPoint.model_validate(p) for p in points]
