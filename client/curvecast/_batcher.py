"""The two background threads between `Run.log` and the server.

The writer drains the in-memory queue in bursts (when `flush_rows` rows wait, or every
`flush_interval` seconds) and appends them to the spool: that is the durability point. The
sender reads the spool from its confirmed position, sends, and acknowledges; while the server is
away it retries with backoff, and the spool (not memory) holds the backlog. Two threads, so a
slow or hung server never delays the write-ahead.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from curvecast._spool import CREATE, ROWS, STATUS, Cursor, Op, SpoolReader, SpoolWriter
from curvecast._transport import Backoff, Transport
from curvecast.errors import ServerError, ServerUnavailable

log = logging.getLogger("curvecast")

Row = tuple[int, dict, float]  # (step, values, unix time)


@dataclass(frozen=True)
class Finish:
    """The last message in the queue: after every row logged before it."""

    status: str


class Batcher:
    """Owns the queue's consumer side, the spool, and what the server has answered."""

    def __init__(
        self,
        run_id: str,
        session: Path,
        transport: Transport,
        *,
        flush_interval: float,
        flush_rows: int,
        heartbeat_interval: float,
        batch_rows: int = 5000,
    ) -> None:
        self.run_id = run_id
        self.queue: deque[Row | Finish] = deque()  # appended by Run.log, no lock: see run.py
        self.wake = threading.Event()  # set by Run.log once per flush_rows rows
        self.should_stop = False
        self.confirmed = 0  # rows the server acknowledged (new or duplicate)
        self.rejected = 0  # rows in requests the server refused with a 4xx
        self.ended = threading.Event()  # the sender stopped: all delivered, or it gave up
        self.delivered = False  # the Finish message, so everything before it, was answered
        self._writer = SpoolWriter(session)
        self._reader = SpoolReader(session)
        self._transport = transport
        self._flush_interval = flush_interval
        self._flush_rows = flush_rows
        self._batch_rows = batch_rows
        self._heartbeat_interval = heartbeat_interval
        self._created = False
        self._beating = True  # until the server says it has no heartbeat for us
        self._end: Cursor = self._reader.cursor  # what the writer has appended so far
        self._written = threading.Condition()
        self._stop = threading.Event()
        self._warned: set[int] = set()
        self._threads = [
            threading.Thread(target=self._guard(self._write_loop), name="curvecast-writer"),
            threading.Thread(
                target=self._guard(self._send_loop, self.ended), name="curvecast-sender"
            ),
        ]
        for thread in self._threads:
            thread.daemon = True

    def create(self, body: bytes) -> bool:
        """Spool the run's creation, then try it once, before the threads start: a refusal
        raises ServerError here (at `init`); False means the server is away, and the sender
        will create the run when it answers."""
        self._end = self._writer.append(b"C\t" + body + b"\n")
        op = self._reader.next_op(self._end)
        assert op is not None  # the line just written
        try:
            answer = self._transport.deliver(self.run_id, op)
        except ServerUnavailable:
            return False
        except ServerError:
            self._writer.close()
            self._transport.close()
            raise
        self._reader.ack(op)
        self._answered(op, answer)
        return True

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float) -> bool:
        """Stop retrying; True if both threads ended (so the spool is no longer touched)."""
        self._stop.set()
        self.wake.set()
        with self._written:
            self._written.notify()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def _guard(
        self, loop: Callable[[], None], ended: threading.Event | None = None
    ) -> Callable[[], None]:
        """A crashed thread must not leave `finish` waiting for a delivery that cannot come."""

        def run() -> None:
            try:
                loop()
            except Exception:
                log.exception("curvecast: %s thread crashed", threading.current_thread().name)
                self._stop.set()
            finally:
                if ended is not None:
                    ended.set()

        return run

    # -- writer ---------------------------------------------------------------------------
    def _write_loop(self) -> None:
        pop = self.queue.popleft
        finished = False
        while not finished and not self._stop.is_set():
            self.wake.wait(self._flush_interval)
            self.wake.clear()  # clear before draining, so no row is left behind unseen
            items = [pop() for _ in range(len(self.queue))]
            if not items:
                continue
            data, finished = self._encode(items)
            end = self._writer.append(data)
            with self._written:
                self._end = end
                self._written.notify()
        self._writer.close()

    def _encode(self, items: list[Row | Finish]) -> tuple[bytes, bool]:
        lines: list[bytes] = []
        rows: list[Row] = []
        for item in items:
            if type(item) is tuple:
                rows.append(item)
                if len(rows) == self._flush_rows:
                    lines.append(_rows_line(rows))
                    rows = []
            else:
                if rows:
                    lines.append(_rows_line(rows))
                lines.append(b"S\t" + json.dumps({"status": item.status}).encode() + b"\n")
                return b"".join(lines), True
        if rows:
            lines.append(_rows_line(rows))
        return b"".join(lines), False

    # -- sender ---------------------------------------------------------------------------
    def _send_loop(self) -> None:
        backoff = Backoff()
        last_contact = time.monotonic()
        while not self._stop.is_set():
            with self._written:
                end = self._end
            op = self._reader.next_op(end, self._batch_rows)
            if op is None:
                beating = self._created and self._beating
                idle = time.monotonic() - last_contact
                if beating and idle >= self._heartbeat_interval:
                    self._heartbeat()
                    last_contact = time.monotonic()
                    continue
                with self._written:
                    if self._end == end and not self._stop.is_set():
                        self._written.wait(self._heartbeat_interval - idle if beating else None)
                continue
            try:
                answer = self._transport.deliver(self.run_id, op)
            except ServerUnavailable as exc:
                delay = backoff.next_delay(exc.retry_after)
                log.debug("curvecast: %s; retrying in %.2fs", exc, delay)
                self._stop.wait(delay)
                continue
            except ServerError as exc:
                if exc.auth:
                    log.warning("curvecast: %s; rows stay in the spool for `curvecast sync`", exc)
                    return
                self._refused(op, exc)
            else:
                self._answered(op, answer)
            self._reader.ack(op)
            backoff.reset()
            last_contact = time.monotonic()
            if op.kind == STATUS:
                self.delivered = True
                return

    def _answered(self, op: Op, answer: dict) -> None:
        if op.kind == CREATE:
            self._created = True
        self.confirmed += op.rows
        if "should_stop" in answer:
            self.should_stop = bool(answer["should_stop"])

    def _refused(self, op: Op, exc: ServerError) -> None:
        self.rejected += op.rows
        if exc.status_code not in self._warned:  # once per status: the count tells the rest
            self._warned.add(exc.status_code)
            what = {CREATE: "run creation", ROWS: f"{op.rows} rows"}.get(op.kind, "status")
            log.warning("curvecast: run %s: server refused %s: %s", self.run_id, what, exc)

    def _heartbeat(self) -> None:
        try:
            self.should_stop = bool(self._transport.heartbeat(self.run_id)["should_stop"])
        except ServerUnavailable:
            pass  # the next rows will find out, and back off
        except (ServerError, KeyError) as exc:
            log.debug("curvecast: heartbeat refused (%s); no more heartbeats", exc)
            self._beating = False


def _rows_line(rows: list[Row]) -> bytes:
    body = json.dumps(
        [{"step": s, "values": v, "time": t} for s, v, t in rows],
        separators=(",", ":"),
        allow_nan=False,  # log() already turned NaN/inf into the API's strings
    )
    return b"R\t%d\t%s\n" % (len(rows), body.encode())
