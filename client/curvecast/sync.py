"""`curvecast sync`: deliver what runs left in the spool (killed, or finished while offline).

Replays each session from its acknowledged position, in order, with the same requests the live
client would have sent; the server's idempotent writes make a replay of a partly delivered
batch harmless. Sessions still locked by a live process are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from curvecast import _spool
from curvecast._transport import Backoff, Transport
from curvecast.errors import ServerError, ServerUnavailable


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for the arguments after `sync`; returns the exit status (0: all delivered)."""
    args = _parser().parse_args(argv)
    if not args.api_key:
        print(
            "curvecast sync: no API key: pass --api-key or set CURVECAST_API_KEY", file=sys.stderr
        )
        return 2
    sessions = _spool.sessions(Path(args.dir).expanduser())
    if not sessions:
        print(f"curvecast sync: nothing to sync in {args.dir}", file=sys.stderr)
    ok = True
    for path in sessions:
        ok &= _sync_session(path, args)
    return 0 if ok else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="curvecast sync", description="Deliver spooled metrics to the Curvecast server."
    )
    parser.add_argument("--dir", default=str(_spool.default_dir()), help="spool directory")
    parser.add_argument("--url", help="server URL (default: the one each run was logging to)")
    parser.add_argument("--api-key", default=os.environ.get("CURVECAST_API_KEY"))
    parser.add_argument(
        "--retries", type=int, default=5, help="tries per request before giving up on a run"
    )
    return parser


def _sync_session(path: Path, args: argparse.Namespace) -> bool:
    try:
        meta = json.loads((path / "meta.json").read_text())
        lock_fd = _spool.lock(path)
    except FileNotFoundError:  # its own process delivered it and removed it since the listing
        return True
    except BlockingIOError:
        print(f"run {meta['run_id']}: skipped, a live process is still logging it",
              file=sys.stderr)
        return True
    label = f"run {meta['run_id']}"
    transport = Transport(args.url or meta["url"], args.api_key)
    try:
        return _replay(path, meta["run_id"], transport, args.retries, label)
    except ValueError as exc:  # a damaged spool file: say so, keep it, go on with the others
        print(f"\n{label}: {exc}; left in {path}", file=sys.stderr)
        return False
    finally:
        transport.close()
        _spool.unlock(lock_fd)


def _replay(path: Path, run_id: str, transport: Transport, retries: int, label: str) -> bool:
    reader = _spool.SpoolReader(path)
    total, sent, refused = reader.pending_rows(), 0, 0
    _progress(label, sent, total)
    while (op := reader.next_op()) is not None:
        try:
            _deliver(transport, run_id, op, retries)
        except ServerUnavailable as exc:
            print(
                f"\n{label}: gave up after {retries} tries ({exc}); run sync again", file=sys.stderr
            )
            return False
        except ServerError as exc:
            if exc.auth:
                print(f"\n{label}: {exc}; kept for a sync with another key", file=sys.stderr)
                return False
            refused += op.rows
            print(f"\n{label}: server refused a request: {exc}", file=sys.stderr)
        reader.ack(op)
        sent += op.rows
        _progress(label, sent, total)
    print(f"\n{label}: {sent - refused} rows delivered, {refused} refused", file=sys.stderr)
    _spool.remove(path)
    return refused == 0


def _deliver(transport: Transport, run_id: str, op: _spool.Op, retries: int) -> None:
    backoff = Backoff()
    for attempt in range(1, retries + 1):
        try:
            transport.deliver(run_id, op)
            return
        except ServerUnavailable as exc:
            if attempt == retries:
                raise
            time.sleep(backoff.next_delay(exc.retry_after))


def _progress(label: str, done: int, total: int, width: int = 30) -> None:
    filled = width * done // total if total else width
    share = 100 * done // total if total else 100
    bar = "#" * filled + "-" * (width - filled)
    print(f"\r{label} [{bar}] {share:3d}% {done}/{total} rows", end="", file=sys.stderr, flush=True)
