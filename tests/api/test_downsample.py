"""Series reads: downsampled server-side with every spike kept, from points or from blocks."""

import numpy as np

from backend.db import session_scope
from backend.metrics.downsample import minmax_downsample
from backend.metrics.reads import _block_level, find_series
from tests.api.test_ingest import post, series


def _log(client, run_id, steps, values, key="loss"):
    for i in range(0, len(steps), 10_000):
        rows = [{"step": int(s), "values": {key: float(v)}}
                for s, v in zip(steps[i:i + 10_000], values[i:i + 10_000], strict=True)]
        assert post(client, run_id, rows).status_code == 200


def test_downsampling_keeps_a_one_step_spike_and_the_ends():
    steps = np.arange(100_000)
    values = np.linspace(3, 2, 100_000)
    values[31_337] = 50.0
    values[77_001] = -5.0
    s, v = minmax_downsample(steps, values, 500)
    assert len(s) <= 500
    assert 31_337 in s and 77_001 in s and s[0] == 0 and s[-1] == 99_999
    assert v.max() == 50.0 and v.min() == -5.0


def test_downsampling_keeps_a_nan():
    values = np.ones(10_000)
    values[4_242] = np.nan
    s, v = minmax_downsample(np.arange(10_000), values, 100)
    assert len(s) <= 100 and 4_242 in s and np.isnan(v).sum() == 1


def test_a_short_series_comes_back_whole(client, make_run):
    run = make_run()
    _log(client, run["id"], np.arange(0, 500, 5), np.arange(100.0))
    got = series(client, run["id"], "loss", max_points=2000)
    assert got["step"] == list(range(0, 500, 5)) and got["value"] == list(np.arange(100.0))


def test_a_long_series_read_through_blocks_keeps_spikes(client, make_run, settings):
    """300k points: the read merges 1,172 blocks of 256 steps instead of scanning points."""
    run = make_run()
    n = 300_000
    rng = np.random.default_rng(0)
    values = 3 + 0.01 * rng.standard_normal(n)
    spikes = [12_345, 150_001, 299_998]
    values[spikes] = [40.0, -7.0, 99.0]
    _log(client, run["id"], np.arange(n), values)
    with session_scope(settings.database_url) as s:
        assert _block_level(find_series(s, run["id"], "loss"), 2000) == 1
    got = series(client, run["id"], "loss", max_points=2000)
    assert got["count"] == n and len(got["step"]) <= 2000
    assert set(spikes) <= set(got["step"])
    assert got["step"][0] == 0 and got["step"][-1] == n - 1
    assert got["step"] == sorted(got["step"])
