"""Postgres binary COPY for fixed-width numeric rows, encoded and decoded with numpy.

A 10,000-row batch goes in as one buffer instead of 10,000 Python calls: this is most of
what makes ingest fast. Only NOT NULL int8/float8 columns are supported, which is all the
points table needs.
"""

import numpy as np

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8  # signature, flags, header extension
TRAILER = b"\xff\xff"
_KIND = {"int8": ">i8", "float8": ">f8"}


def _dtype(types: list[str]) -> np.dtype:
    fields = [("nfields", ">i2")]
    for i, t in enumerate(types):
        fields += [(f"len{i}", ">i4"), (f"c{i}", _KIND[t])]
    return np.dtype(fields)


def encode(types: list[str], *columns: np.ndarray) -> bytes:
    """The whole COPY ... FROM STDIN (FORMAT BINARY) payload for these columns."""
    rows = np.empty(len(columns[0]), dtype=_dtype(types))
    rows["nfields"] = len(types)
    for i, col in enumerate(columns):
        rows[f"len{i}"] = 8
        rows[f"c{i}"] = col
    return SIGNATURE + rows.tobytes() + TRAILER


def decode(types: list[str], payload: bytes) -> list[np.ndarray]:
    """Columns (native byte order) from a COPY ... TO STDOUT (FORMAT BINARY) payload."""
    body = payload[len(SIGNATURE):len(payload) - len(TRAILER)]
    rows = np.frombuffer(body, dtype=_dtype(types))
    return [rows[f"c{i}"].astype(_KIND[t][1:]) for i, t in enumerate(types)]
