"""Postgres itself crashes under a running server: every one of its processes is SIGKILLed, as
an OOM kill or a power cut would leave it. What was answered is there after its crash
recovery; batches sent meanwhile are refused with a 503 that says so; the client's retries
deliver every point exactly once; and neither the server nor its forecasts need a restart."""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import curvecast
import httpx
import psycopg
import pytest

from backend import migrate
from tests.client.conftest import Server
from tests.conftest import ADMIN_KEY, free_port
from tests.waiting import poll

STEPS = 3_000


def _bin(name: str) -> str:
    """A Postgres server program: on PATH, or where Debian keeps them (newest version)."""
    found = shutil.which(name) or max(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), default=None,
        key=lambda path: [int(n) for n in re.findall(r"\d+", path)])
    if found is None:
        pytest.fail(f"{name} not found: install PostgreSQL's server (Debian: postgresql)")
    return found


class PrivatePostgres:
    """A Postgres cluster of this test's own (the session's shared one is not ours to kill),
    in a fresh directory, run as `postgres` when the tests run as root (initdb refuses root).
    Its postmaster is this process's own child (no pg_ctl, no runuser), so this process reaps
    it when it is killed: an unreaped one looks alive to the next postmaster, which then
    refuses to start."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="curvecast-pg-"))
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        root_user = os.geteuid() == 0
        self._as = ({"user": "postgres", "group": "postgres", "extra_groups": []}
                    if root_user else {})
        self._proc: subprocess.Popen | None = None
        if root_user:
            shutil.chown(self.root, "postgres")
        done = subprocess.run([_bin("initdb"), "-D", str(self.root / "data"), "-A", "trust",
                               "-U", "postgres"], capture_output=True, text=True, timeout=120,
                              **self._as)
        assert done.returncode == 0, f"initdb failed: {done.stderr}"

    def start(self) -> None:
        """Start it (after a crash, its recovery replays the WAL) and wait for connections."""
        with (self.root / "log").open("ab") as log:
            self._proc = subprocess.Popen(
                [_bin("postgres"), "-D", str(self.root / "data"), "-p", str(self.port),
                 "-k", str(self.root), "-c", "listen_addresses=127.0.0.1"],
                stdout=log, stderr=subprocess.STDOUT, **self._as)
        dsn = self.url.replace("+psycopg", "")
        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg.connect(dsn, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("Postgres did not start: "
                                + (self.root / "log").read_text()[-2000:])
                time.sleep(0.1)

    def crash(self) -> None:
        """SIGKILL the postmaster and every process it started: no shutdown, no checkpoint."""
        postmaster = int((self.root / "data" / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGSTOP)  # it forks no backend from here on
        pids = [postmaster, *_children(postmaster)]  # before its children are orphaned
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert self._proc is not None
        self._proc.wait(30)  # reaps the postmaster
        self._proc = None
        while any(_alive(pid) for pid in pids):  # their shared memory goes with the last
            time.sleep(0.05)

    def remove(self) -> None:
        if self._proc is not None:
            self.crash()
        shutil.rmtree(self.root, ignore_errors=True)


def _children(ppid: int) -> list[int]:
    """The live processes whose parent is ``ppid`` (from /proc)."""
    kids = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == ppid and fields[0] != "Z":
            kids.append(int(Path(stat).parent.name))
    return kids


def _alive(pid: int) -> bool:
    """Running or stopped; a zombie has already let go of its memory."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    cluster.start()
    migrate.upgrade(cluster.url)
    yield cluster
    cluster.remove()


def test_what_was_answered_survives_a_postgres_crash_and_the_loop_never_notices(
        postgres: PrivatePostgres, tmp_path: Path) -> None:
    server = Server(postgres.url, tmp_path / "server.log")
    server.start()
    server.wait_ready()
    run = curvecast.init(project="crash", name="through-a-crash", total_steps=STEPS,
                         url=server.url, api_key=ADMIN_KEY, spool_dir=tmp_path / "spool")
    api = httpx.Client(base_url=f"{server.url}/api/v1/runs/{run.id}",
                       headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    val_steps = list(range(0, 1_000, 10))
    try:
        for step in range(STEPS):
            if step == 1_000:
                poll(lambda: run.stats.confirmed, lambda n: n >= 900, 30,
                     "the first batches were not answered")
                # A batch answered just before the crash: its forecast job runs into it.
                answered = api.post("/metrics", json={"rows": [
                    {"step": s, "values": {"val_loss": 3.1 - s / STEPS}} for s in val_steps]})
                assert answered.status_code == 200
                postgres.crash()
                refused = api.post("/metrics", json={"rows": [
                    {"step": 0, "values": {"loss": 9.0}}]})
                assert refused.status_code == 503
                assert "database unavailable" in refused.json()["error"]["message"]
            if step == 2_000:
                postgres.start()  # crash recovery replays the WAL
            run.log({"loss": 3.0 - step / STEPS}, step=step)
            time.sleep(0.001)
        stats = run.finish(timeout=60)

        assert stats.confirmed == STEPS and stats.unconfirmed == stats.dropped == 0
        steps, values = server.points(run.id, "loss")
        assert steps == list(range(STEPS))  # the refused write of step 0 stored nothing
        assert values == [3.0 - s / STEPS for s in steps]
        assert server.points(run.id, "val_loss")[0] == val_steps
        # The forecast job that met the crash waited for the database rather than leave its
        # request pending (no later val_loss batch comes to ask again).
        for key, last in (("val_loss", val_steps[-1]), ("loss", STEPS - 1)):
            poll(lambda key=key: server.get(f"/runs/{run.id}/forecast/{key}"),
                 lambda fc, last=last: fc.get("fitted_upto_step") == last, 60,
                 f"the {key} forecast never caught up with its last batch")
    finally:
        api.close()
        server.kill()
        server.api.close()
