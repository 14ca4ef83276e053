"""The embedded server's fitting process (workers.offload): the fits (forecasts, scaling
laws) run there and give what they give in the calling process, a killed child is replaced,
and the child ends with its parent."""

import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.forecast.test_scaling import synthetic_points
from tests.forecast.test_scaling_hparams import _lr_points
from workers import offload
from workers.forecast.scaling import fit_scaling
from workers.forecast.scaling_hparams import fit_hparam_law
from workers.forecast.schedule import schedule_from_logged, schedule_from_spec
from workers.forecast.trajectory import ReferenceRun, forecast_trajectory

ROOT = Path(__file__).resolve().parents[2]
WSD = {"type": "wsd", "peak_lr": 1e-3, "warmup_steps": 100, "total_steps": 4000,
       "decay_start": 3000}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def child() -> Iterator[None]:
    offload.in_child_process()
    yield
    offload.in_this_process()


def _curve(seed: int, upto: int, spec: dict = WSD) -> tuple[np.ndarray, np.ndarray]:
    sched = schedule_from_spec(spec)
    steps = np.arange(120, upto, 20, dtype=float)
    area = np.cumsum(sched.lr(np.arange(upto)))[steps.astype(int)] / 1e-3
    loss = 2.5 + 3.0 * (1 + area / 50) ** -0.5 - 40 * (1e-3 - sched.lr(steps))
    return steps, loss * np.exp(np.random.default_rng(seed).normal(0, 0.005, len(steps)))


def test_every_kind_of_schedule_is_rebuilt_from_its_pickle():
    grid = np.linspace(0, 5000, 101)
    knots = schedule_from_spec({"knots": [[0, 0.0], [100, 1e-3], [4000, 1e-4]]})
    logged = schedule_from_logged(np.array([0.0, 50, 100, 200]),
                                  np.array([1e-4, 5e-4, 1e-3, 1e-3]),
                                  schedule_from_spec(WSD), 4000)
    for sched in (schedule_from_spec(WSD), knots, logged):
        again = pickle.loads(pickle.dumps(sched))
        assert (again.total_steps, again.description) == (sched.total_steps, sched.description)
        np.testing.assert_array_equal(again.lr(grid), sched.lr(grid))


def test_a_forecast_made_in_the_child_is_the_one_made_here(child):
    assert offload.call(os.getpid) != os.getpid()
    refs = [ReferenceRun(*_curve(i, 4001), 4000, schedule_from_spec(WSD), f"r{i}")
            for i in range(3)]
    steps, values = _curve(9, 2000)
    kwargs = {"total_steps": 4000, "schedule": schedule_from_spec(WSD), "references": refs}
    there = offload.call(forecast_trajectory, steps, values, **kwargs)
    here = forecast_trajectory(steps, values, **kwargs)
    assert there.status == here.status == "ready"
    assert there.prior and there.prior == here.prior
    assert (there.final_mean, there.final_lower, there.final_upper) == (
        here.final_mean, here.final_lower, here.final_upper)


def test_the_scaling_fits_cross_to_the_child_and_back(child):
    fit = offload.call(fit_scaling, synthetic_points(), "chinchilla", n_boot=20, seed=0)
    assert fit.to_dict() == fit_scaling(synthetic_points(), "chinchilla", n_boot=20,
                                        seed=0).to_dict()
    law = offload.call(fit_hparam_law, _lr_points(noise=0.05), level=0.9)
    assert law.status == "ready"
    assert law.to_dict() == fit_hparam_law(_lr_points(noise=0.05), level=0.9).to_dict()


def test_a_killed_child_is_replaced_and_the_fit_made_again(child):
    first = offload.call(os.getpid)
    os.kill(first, signal.SIGKILL)
    while _alive(first):
        time.sleep(0.05)
    second = offload.call(os.getpid)  # would raise BrokenProcessPool without the replacement
    assert second not in (first, os.getpid())
    assert offload.call(os.getpid) == second


def test_a_child_killed_in_the_middle_of_a_fit_makes_it_again_in_its_successor(child):
    pids = []
    with ThreadPoolExecutor(1) as caller:
        result = caller.submit(offload.call, _slow_pid, 3.0)
        deadline = time.monotonic() + 30
        while not pids and time.monotonic() < deadline:
            pids = [int(p.name) for p in Path("/proc").iterdir()
                    if p.name.isdigit() and _child_of(int(p.name), os.getpid())
                    and b"spawn_main" in (p / "cmdline").read_bytes()]
            time.sleep(0.05)
        time.sleep(1.0)  # well into its 3 s "fit"
        os.kill(pids[0], signal.SIGKILL)
        assert result.result(timeout=60) not in (pids[0], os.getpid())


def _slow_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def _child_of(pid: int, parent: int) -> bool:
    try:
        return f"PPid:\t{parent}\n" in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def test_the_child_ends_when_its_server_is_killed():
    script = ("from workers import offload; import os, sys, time\n"
              "offload.in_child_process()\n"
              "print(offload.call(os.getpid), flush=True)\n"
              "time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        pid = int(parent.stdout.readline())
        assert _alive(pid)
        parent.kill()  # SIGKILL: no atexit, no executor shutdown
        parent.wait(10)
        deadline = time.monotonic() + 20
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid), "the fitting process outlived its server"
    finally:
        parent.kill()
        parent.wait()
