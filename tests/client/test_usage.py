"""Bad use raises at the caller's line, before anything is queued; no server needed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import curvecast
import pytest


@pytest.fixture
def run(tmp_path: Path) -> Iterator[curvecast.Run]:
    """A run whose server is unreachable: logging still works, into the spool."""
    run = curvecast.init(project="p", url="http://127.0.0.1:1", api_key="k", spool_dir=tmp_path)
    yield run
    run.finish(timeout=0.1)


class _Tensor:
    def item(self) -> float:
        return 1.0


@pytest.mark.parametrize(
    ("values", "error", "message"),
    [
        ({"loss": "3.2"}, TypeError, "'loss': str '3.2' is not a number"),
        ({"loss": None}, TypeError, "is not a number"),
        ({"loss": True}, TypeError, "bool True is not a number"),
        ({"loss": _Tensor()}, TypeError, "log .item()"),
        ({"": 1.0}, ValueError, "1 to 256 printable characters"),
        ({"a\nb": 1.0}, ValueError, "printable"),
        ({"x" * 257: 1.0}, ValueError, "1 to 256"),
        ({3: 1.0}, TypeError, "metric names must be str"),
        ({}, ValueError, "values is empty"),
        ([("loss", 1.0)], TypeError, "values must be a dict"),
    ],
)
def test_bad_values_raise(run: curvecast.Run, values, error, message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        run.log(values, step=0)

    assert run.stats.logged == 0


@pytest.mark.parametrize(
    ("step", "error", "message"),
    [
        (-1, ValueError, "from 0 to 2\\*\\*62"),
        (1.5, TypeError, "step must be an int"),
        (True, TypeError, "not bool"),
        ("3", TypeError, "step must be an int"),
    ],
)
def test_bad_steps_raise(run: curvecast.Run, step, error, message: str) -> None:
    with pytest.raises(error, match=message):
        run.log({"loss": 1.0}, step=step)


def test_a_step_must_move_forward_for_each_key(run: curvecast.Run) -> None:
    run.log({"loss": 1.0, "lr": 0.1}, step=5)
    run.log({"val_loss": 1.0}, step=3)  # another key has its own order

    with pytest.raises(ValueError, match="step 5 for 'loss' is not after its last step 5"):
        run.log({"loss": 0.9}, step=5)
    with pytest.raises(ValueError, match="step 4 for 'lr'"):
        run.log({"val_loss": 0.5, "lr": 0.1}, step=4)
    run.log({"val_loss": 0.5}, step=4)  # the refused row changed nothing

    assert run.stats.logged == 3


def test_numpy_scalars_are_numbers(run: curvecast.Run) -> None:
    np = pytest.importorskip("numpy")

    run.log({"a": np.float32(0.5), "b": np.int64(2), "c": np.float64("nan")}, step=np.int64(1))

    assert run.stats.logged == 1


def test_unknown_status_and_logging_after_finish_raise(run: curvecast.Run) -> None:
    with pytest.raises(ValueError, match="status must be one of finished, failed, killed"):
        run.finish("done")
    run.finish(timeout=0.1)

    with pytest.raises(RuntimeError, match="is finished"):
        run.log({"loss": 1.0}, step=0)


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"project": "no spaces"}, ValueError, "project must be"),
        ({"project": "p", "id": "a/b"}, ValueError, "id must be"),
        ({"project": "p", "tags": "a"}, TypeError, "tags must be a list"),
        ({"project": "p", "config": {"x": float("nan")}}, TypeError, "config must hold only JSON"),
        ({"project": "p", "config": {"x": object()}}, TypeError, "config must hold only JSON"),
        ({"project": "p", "params": -1}, ValueError, "params must be a positive number"),
        ({"project": "p", "total_steps": 0.5}, ValueError, "total_steps must be a positive int"),
    ],
)
def test_bad_run_fields_raise_at_init(tmp_path: Path, fields, error, message: str) -> None:
    with pytest.raises(error, match=message):
        curvecast.init(**fields, url="http://127.0.0.1:1", api_key="k", spool_dir=tmp_path)

    assert list(tmp_path.iterdir()) == []


def test_a_missing_api_key_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CURVECAST_API_KEY", raising=False)

    with pytest.raises(ValueError, match="no API key"):
        curvecast.init(project="p", spool_dir=tmp_path)
