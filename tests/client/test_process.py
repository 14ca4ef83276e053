"""Whole training processes: how they end decides the run's status, and a SIGKILL loses only
what was not yet spooled, which `python -m curvecast sync` then delivers."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import curvecast
import pytest
from curvecast import _spool, sync

from tests.client.conftest import Server
from tests.conftest import ADMIN_KEY

TRAINER = Path(__file__).with_name("trainer.py")


def start_trainer(mode: str, project: str, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, TRAINER, mode, project],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_id = proc.stdout.readline().strip()
    assert run_id, proc.communicate()[1]
    return proc, run_id


@pytest.mark.parametrize(
    ("mode", "code", "status"), [("crash", 1, "failed"), ("exit", 0, "finished")]
)
def test_an_exiting_process_delivers_its_rows_and_marks_the_run(
    server: Server, project: str, client_env: dict[str, str], mode: str, code: int, status: str
) -> None:
    proc, run_id = start_trainer(mode, project, client_env)

    assert proc.wait(30) == code
    assert server.get(f"/runs/{run_id}")["status"] == status
    assert server.points(run_id, "loss")[0] == list(range(100))


@pytest.mark.parametrize(
    ("mode", "code", "output"),
    [("sigterm", -signal.SIGTERM, "ready\n"), ("sigterm-chained", 3, "ready\nown handler ran\n")],
)
def test_sigterm_flushes_marks_killed_and_then_does_what_it_did_before(
    server: Server, project: str, client_env: dict[str, str], mode: str, code: int, output: str
) -> None:
    proc, run_id = start_trainer(mode, project, client_env)
    assert proc.stdout.readline() == "ready\n"

    proc.send_signal(signal.SIGTERM)

    try:
        assert proc.wait(30) == code
    except subprocess.TimeoutExpired:  # seen once (session 14) under a full parallel run
        proc.kill()
        pytest.fail("the trainer outlived SIGTERM by 30 s (its finish is bounded to ~11 s); "
                    f"its stderr ends: {proc.communicate()[1][-3000:]}")
    assert "ready\n" + proc.stdout.read() == output
    assert server.get(f"/runs/{run_id}")["status"] == "killed"
    assert server.points(run_id, "loss")[0] == list(range(100))


def test_sigkill_loses_only_rows_not_yet_spooled_and_sync_delivers_the_rest(
    server: Server, project: str, client_env: dict[str, str], spool_dir: Path
) -> None:
    offline = {**client_env, "CURVECAST_URL": "http://127.0.0.1:1"}  # nothing is sent live
    proc, run_id = start_trainer("stream", project, offline)
    assert proc.stdout.readline() == "ready\n"
    progress: list[int] = []
    threading.Thread(target=lambda: progress.extend(map(int, proc.stdout)), daemon=True).start()
    time.sleep(1.0)
    logged_before = progress[-1]  # rows whose log() had returned before this moment
    time.sleep(0.2 + 0.5)  # flush_interval, plus room for a busy machine's scheduler

    proc.kill()
    proc.wait(10)
    logged_at_kill = progress[-1] + 1000

    assert sync.main(["--dir", str(spool_dir), "--url", server.url, "--api-key", ADMIN_KEY]) == 0
    steps, values = server.points(run_id, "loss")
    assert logged_before <= len(steps) <= logged_at_kill
    assert steps == list(range(len(steps)))  # a prefix: nothing lost before a later row
    assert values == [1.0 / (s + 1) for s in steps]
    assert server.get(f"/runs/{run_id}")["status"] == "running"  # nobody said otherwise
    assert list(spool_dir.iterdir()) == []


def test_sync_skips_a_live_run_and_delivers_it_once_finish_gave_up(
    server: Server, start_run, spool_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = start_run(url="http://127.0.0.1:1")
    resync = ["--dir", str(spool_dir), "--url", server.url, "--api-key", ADMIN_KEY]
    for step in range(2500):
        run.log({"loss": float(step)}, step=step)
    time.sleep(0.3)

    assert sync.main(resync) == 0
    assert "skipped, a live process is still logging it" in capsys.readouterr().err
    stats = run.finish(timeout=0.5)
    assert stats.unconfirmed == 2500

    assert sync.main(resync) == 0
    assert "2500/2500 rows" in capsys.readouterr().err
    assert server.points(run.id, "loss")[0] == list(range(2500))
    assert server.get(f"/runs/{run.id}")["status"] == "finished"


def test_sync_goes_on_past_a_spool_its_own_run_removed_after_the_listing(
    server: Server, start_run, spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that finishes while `sync` works deletes its delivered spool: the folder `sync`
    listed a moment before is gone when its turn comes, and the others still get delivered."""
    gone, kept = start_run(url="http://127.0.0.1:1"), start_run(url="http://127.0.0.1:1")
    for run in (gone, kept):
        run.log({"loss": 1.0}, step=0)
        run.finish(timeout=0.3)
    listed = _spool.sessions(spool_dir)
    shutil.rmtree(next(p for p in listed
                        if json.loads((p / "meta.json").read_text())["run_id"] == gone.id))
    monkeypatch.setattr(_spool, "sessions", lambda _: listed)  # the listing from before

    assert sync.main(["--dir", str(spool_dir), "--url", server.url, "--api-key", ADMIN_KEY]) == 0
    assert server.points(kept.id, "loss")[0] == [0]


def test_python_m_curvecast_sync_reports_an_unreachable_server(spool_dir: Path) -> None:
    run = curvecast.init(project="p", url="http://127.0.0.1:1", api_key="k", spool_dir=spool_dir)
    run.log({"loss": 1.0}, step=0)
    run.finish(timeout=0.3)

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "curvecast",
            "sync",
            "--dir",
            spool_dir,
            "--retries",
            "2",
            "--api-key",
            "k",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert done.returncode == 1
    assert "gave up after 2 tries" in done.stderr
    assert len(list(spool_dir.iterdir())) == 1  # kept for the next sync


def test_sync_with_a_refused_key_keeps_the_spool_for_the_right_one(
    server: Server, start_run, spool_dir: Path
) -> None:
    run = start_run(url="http://127.0.0.1:1")
    run.log({"loss": 1.0}, step=0)
    run.finish(timeout=0.3)

    assert sync.main(["--dir", str(spool_dir), "--url", server.url, "--api-key", "wrong"]) == 1
    assert sync.main(["--dir", str(spool_dir), "--url", server.url, "--api-key", ADMIN_KEY]) == 0
    assert server.points(run.id, "loss")[0] == [0]
