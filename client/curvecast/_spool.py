r"""The write-ahead spool: every operation of a run is appended here before it is sent.

Writing ahead (rather than only while the server is away) is what bounds the loss on SIGKILL:
once a row is in the file, the OS keeps it even if the process dies, and `curvecast sync`
delivers it later. One directory per process session::

    <spool_dir>/<run>.<session>/
        meta.json        {"run_id", "url"}: where `sync` sends it
        lock             locked while the owning process lives; `sync` skips locked sessions
        ack              "<segment> <offset>": everything before it was confirmed by the server
        00000000.log ... append-only segments; fully confirmed ones are deleted

One operation per line, so a line torn by a crash loses only itself::

    C\t{run body}\n               create the run (POST /runs, idempotent by its id)
    R\t<n>\t[{row}, ...]\n        n metric rows (POST /runs/{id}/metrics)
    S\t{"status": "..."}\n        final status (PATCH /runs/{id})
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

Cursor = tuple[int, int]  # (segment number, byte offset); tuples order like positions
CREATE, ROWS, STATUS = b"C", b"R", b"S"
_CHUNK = 1 << 20
# Byte-exact files: Windows opens os.open files in text mode (\n -> \r\n) unless told.
_BINARY = getattr(os, "O_BINARY", 0)


@dataclass(frozen=True)
class Op:
    """One request's worth of spooled operations, and where the spool stands once it is sent."""

    kind: bytes
    body: bytes
    rows: int
    end: Cursor


def default_dir() -> Path:
    return Path(os.environ.get("CURVECAST_SPOOL_DIR") or Path.home() / ".curvecast" / "spool")


def new_session(spool_dir: Path, run_id: str, url: str) -> Path:
    """A fresh directory for one process's spool of `run_id`, and where `sync` should send it."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", run_id)[:64]
    path = spool_dir / f"{safe}.{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    (path / "meta.json").write_text(json.dumps({"run_id": run_id, "url": url}))
    return path


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> None:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # the file's first byte
        except OSError as exc:  # held elsewhere: EACCES or EDEADLOCK, not flock's EWOULDBLOCK
            if exc.errno not in (errno.EACCES, errno.EDEADLOCK):
                raise
            raise BlockingIOError(errno.EWOULDBLOCK, "locked by a live process") from exc

else:
    import fcntl

    def _try_lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def lock(path: Path) -> int:
    """Hold the session's lock; raises BlockingIOError if a live process holds it.

    An OS lock on an open file (flock, or a byte-range lock on Windows) rather than a
    lock file's existence: the OS drops it when its process dies, however it dies, so a
    killed run's spool is never left looking alive to `sync`."""
    fd = os.open(path / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _try_lock(fd)
    except OSError:
        os.close(fd)
        raise
    return fd


def unlock(fd: int) -> None:
    os.close(fd)  # closing the descriptor releases the lock


def sessions(spool_dir: Path) -> list[Path]:
    """Session directories, oldest first, so `sync` replays runs in the order they were made."""
    if not spool_dir.is_dir():
        return []
    found = [p for p in spool_dir.iterdir() if (p / "meta.json").is_file()]
    return sorted(found, key=lambda p: (p / "meta.json").stat().st_mtime)


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _segment(path: Path, number: int) -> Path:
    return path / f"{number:08d}.log"


class SpoolWriter:
    """Appends whole lines with one write each; rolls to a new segment past `segment_bytes`."""

    def __init__(self, path: Path, segment_bytes: int = 8 << 20) -> None:
        self._path = path
        self._segment_bytes = segment_bytes
        self._number = 0
        self._size = 0
        self._fd = self._open(0)

    def _open(self, number: int) -> int:
        return os.open(_segment(self._path, number),
                       os.O_WRONLY | os.O_CREAT | os.O_APPEND | _BINARY, 0o644)

    def append(self, data: bytes) -> Cursor:
        """Write `data` (whole lines) and return the end of the spool after it."""
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self._size += len(data)
        if self._size >= self._segment_bytes:
            # The next segment exists only once this one is complete: readers rely on that.
            os.close(self._fd)
            self._number += 1
            self._size = 0
            self._fd = self._open(self._number)
        return (self._number, self._size)

    def close(self) -> None:
        os.close(self._fd)


class SpoolReader:
    """Reads operations from the acknowledged position on; `ack` moves that position."""

    def __init__(self, path: Path) -> None:
        self._path = path
        try:
            seg, off = (path / "ack").read_text().split()
            self.cursor: Cursor = (int(seg), int(off))
        except FileNotFoundError:
            self.cursor = (0, 0)

    def next_op(self, end: Cursor | None = None, max_rows: int = 5000) -> Op | None:
        """The next request's worth of operations before `end` (None: to the end of the files).

        Consecutive row lines are merged up to `max_rows` rows (a longer single line goes
        whole). A last line without its newline is a write torn by a crash: ignored.
        """
        seg, off = self.cursor
        while not (lines := self._lines(seg, off, end)):
            if not _segment(self._path, seg + 1).exists():
                return None
            seg, off = seg + 1, 0  # the next segment exists, so this one is complete
        self.cursor = (seg, off)
        lines = _one_request(lines, max_rows)
        stop = (seg, off + sum(map(len, lines)))
        if lines[0][:1] != ROWS:
            return Op(lines[0][:1], lines[0][2:-1], 0, stop)
        parts = [line[:-1].split(b"\t", 2) for line in lines]
        body = b'{"rows":[' + b",".join(array[1:-1] for _, _, array in parts) + b"]}"
        return Op(ROWS, body, sum(int(count) for _, count, _ in parts), stop)

    def _lines(self, seg: int, off: int, end: Cursor | None) -> list[bytes]:
        """Complete lines from (seg, off), up to `end` when it lies in this segment."""
        limit = end[1] if end is not None and seg == end[0] else None
        try:
            fd = os.open(_segment(self._path, seg), os.O_RDONLY | _BINARY)
        except FileNotFoundError:
            return []
        try:
            chunk = _CHUNK
            while True:
                size = chunk if limit is None else min(chunk, limit - off)
                data = os.pread(fd, size, off) if size > 0 else b""
                cut = data.rfind(b"\n") + 1
                if cut or len(data) < size or size < chunk:
                    break
                chunk *= 2  # a single line longer than the chunk: read more
        finally:
            os.close(fd)
        return data[:cut].splitlines(keepends=True)

    def ack(self, op: Op) -> None:
        """Record `op` as confirmed (atomically) and delete segments wholly before it."""
        self.cursor = op.end
        tmp = self._path / "ack.tmp"
        tmp.write_text(f"{op.end[0]} {op.end[1]}")
        os.replace(tmp, self._path / "ack")
        for number in range(op.end[0] - 1, -1, -1):
            seg = _segment(self._path, number)
            if not seg.exists():
                break
            seg.unlink()

    def pending_rows(self) -> int:
        """Rows not yet confirmed: the total of the row counts from the cursor on."""
        total, (seg, off) = 0, self.cursor
        while (path := _segment(self._path, seg)).exists():
            with path.open("rb") as f:
                f.seek(off)
                for line in f:
                    if line[:1] == ROWS and line.endswith(b"\n"):
                        total += int(line.split(b"\t", 2)[1])
            seg, off = seg + 1, 0
        return total


def _one_request(lines: list[bytes], max_rows: int) -> list[bytes]:
    """The leading lines that make one request: one non-row op, or row lines up to max_rows."""
    taken: list[bytes] = []
    rows = 0
    for line in lines:
        kind = line[:1]
        if kind not in (CREATE, ROWS, STATUS) or line[1:2] != b"\t":
            raise ValueError(f"corrupt spool line: {line[:40]!r}")
        if kind != ROWS:
            return taken or [line]
        count = int(line.split(b"\t", 2)[1])
        if taken and rows + count > max_rows:
            break
        taken.append(line)
        rows += count
    return taken
