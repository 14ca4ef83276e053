"""Forecast memos shared through Redis (workers.shared_memo): what one process made, another
takes instead of making it again; a Redis that does not answer only costs the sharing."""

import logging
import socket
import threading
import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from workers.forecast import memo, trajectory
from workers.forecast.memo import Codec, Memo
from workers.shared_memo import RedisStore

CODEC = Codec("test", lambda v: np.asarray(v, "<f8").tobytes(),
              lambda b: np.frombuffer(b, "<f8").copy())


@pytest.fixture
def shared(redis_url: str) -> Iterator[RedisStore]:
    store = RedisStore(redis_url)
    memo.share_through(store)
    yield store
    memo.share_through(None)


def _key() -> bytes:
    return uuid.uuid4().bytes


def test_what_one_process_made_another_takes_from_redis(shared):
    # Two memos stand for two pool processes: each its own entries, one store between them.
    a, b = Memo(8, CODEC), Memo(8, CODEC)
    made = []
    key, other = _key(), _key()
    first = a.get(key, lambda: made.append(1) or np.array([1.5, 2.5]))
    again = b.get(key, lambda: made.append(2) or np.array([0.0]))
    assert made == [1] and np.array_equal(again, first) and b.misses == 0
    assert b.absent([key, other]) == [other]
    # Without a codec a memo keeps its entries to itself.
    c, d = Memo(8), Memo(8)
    c.get(key, lambda: 1.0)
    assert d.absent([key]) == [key]


def test_an_unreachable_redis_costs_the_sharing_only(caplog):
    memo.share_through(RedisStore("redis://127.0.0.1:1/0"))
    try:
        with caplog.at_level(logging.WARNING, logger="curvecast.worker"):
            value = Memo(8, CODEC).get(_key(), lambda: np.array([3.0]))
            Memo(8, CODEC).get(_key(), lambda: np.array([4.0]))
    finally:
        memo.share_through(None)
    assert value.tolist() == [3.0]
    assert sum("unreachable" in r.message for r in caplog.records) == 1  # once, not per call


def test_a_replay_travels_as_bytes_unchanged():
    draws = np.random.default_rng(0).lognormal(size=200)
    back = trajectory._decode(trajectory._encode((draws, 2.345)))
    assert np.array_equal(back[0], draws) and back[1] == 2.345
    assert trajectory._decode(trajectory._encode(None)) is None


def test_a_redis_that_does_not_answer_is_left_alone_for_a_while():
    # A listener that accepts connections and never answers: each call to it would wait out
    # the store's timeout, and a forecast makes dozens.
    silent = socket.create_server(("127.0.0.1", 0))
    silent.settimeout(0.1)
    accepted = []

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(silent.accept()[0])
            except TimeoutError:
                continue

    stop = threading.Event()
    thread = threading.Thread(target=accept)
    thread.start()
    try:
        store = RedisStore(f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        assert store.get_many([b"a"]) == [None]  # waited out once
        tries = len(accepted)
        assert tries >= 1
        assert store.get_many([b"a", b"b"]) == [None, None]
        store.put(b"a", b"1")
        assert len(accepted) == tries  # not asked again
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        silent.close()
