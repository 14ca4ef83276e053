"""Which of a run's metrics are losses to forecast, and which one is its learning rate, as
users name them: trainers and trackers differ (HF Trainer logs `loss`, `eval_loss` and
`learning_rate`; its W&B callback `train/loss`, `eval/loss`, `train/learning_rate`; Lightning
`train_loss_step` and its LearningRateMonitor `lr-AdamW`), and nobody should have to rename a
metric to get a forecast.
"""

import re
from collections.abc import Iterable

# A loss, possibly of a split, possibly under a prefix: `loss`, `val_loss`, `eval/loss`; with
# Lightning's `_step` / `_epoch` suffix (`self.log(..., on_step=True, on_epoch=True)`).
LOSS_KEY = re.compile(
    r"(?:^|/)(?:(?:train|val|valid|validation|eval|test)_)?loss(?:_step|_epoch)?$")
LR_NAMES = ("lr", "learning_rate")
# Under a prefix (`train/learning_rate`, `optim/lr`), or Lightning's `lr-<optimizer>`.
PREFIXED_LR = re.compile(r"(?:^|/)(?:lr|learning_rate)$|^lr-")


def is_loss_key(key: str) -> bool:
    return LOSS_KEY.search(key) is not None


def lr_key(keys: Iterable[str]) -> str | None:
    """The metric read as the run's learning rate: `lr`, else `learning_rate`, else the first
    (in sorted order, so the choice is stable) named like one under a prefix."""
    keys = set(keys)
    for name in LR_NAMES:
        if name in keys:
            return name
    return min((k for k in keys if PREFIXED_LR.search(k)), default=None)
