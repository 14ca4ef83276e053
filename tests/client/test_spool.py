"""The spool file format on its own: order, merging, torn writes, segments, acknowledgement."""

from __future__ import annotations

import json
from pathlib import Path

from curvecast._spool import ROWS, STATUS, SpoolReader, SpoolWriter


def rows_line(first: int, n: int) -> bytes:
    rows = [{"step": s, "values": {"x": float(s)}, "time": 0.0} for s in range(first, first + n)]
    return b"R\t%d\t%s\n" % (n, json.dumps(rows).encode())


def steps(body: bytes) -> list[int]:
    return [row["step"] for row in json.loads(body)["rows"]]


def test_row_lines_merge_up_to_max_rows_and_stop_at_another_operation(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path)
    end = writer.append(rows_line(0, 3) + rows_line(3, 3) + rows_line(6, 3) + b'S\t{"s":1}\n')
    reader = SpoolReader(tmp_path)

    ops = []
    while (op := reader.next_op(end, max_rows=7)) is not None:
        ops.append(op)
        reader.ack(op)

    assert [(op.kind, op.rows) for op in ops] == [(ROWS, 6), (ROWS, 3), (STATUS, 0)]
    assert steps(ops[0].body) + steps(ops[1].body) == list(range(9))
    assert ops[2].body == b'{"s":1}'


def test_a_torn_last_line_is_ignored_and_the_ack_survives_a_restart(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path)
    writer.append(rows_line(0, 2) + rows_line(2, 2))
    writer.append(rows_line(4, 2)[:-9])  # the process died mid-write
    reader = SpoolReader(tmp_path)
    reader.ack(reader.next_op(max_rows=2))

    again = SpoolReader(tmp_path)  # e.g. `curvecast sync`, later

    assert again.pending_rows() == 2
    op = again.next_op()
    assert steps(op.body) == [2, 3]
    again.ack(op)
    assert again.next_op() is None


def test_segments_roll_and_confirmed_ones_are_deleted(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, segment_bytes=200)
    for first in range(0, 20, 2):
        end = writer.append(rows_line(first, 2))
    reader = SpoolReader(tmp_path)
    assert len(list(tmp_path.glob("*.log"))) > 3

    seen = []
    while (op := reader.next_op(end, max_rows=100)) is not None:
        seen += steps(op.body)
        reader.ack(op)

    assert seen == list(range(20))
    assert len(list(tmp_path.glob("*.log"))) <= 2
