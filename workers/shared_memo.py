"""The forecast memos shared through Redis by a Celery worker's pool processes and machines.

Each pool process keeps its own memos (workers.forecast.memo); a job that lands on another
process than the run's previous jobs would make again the finished runs' replays that one
already made (0.2-1.4 s a 5 % step on the bench's real run, and a provisional forecast whose
fits were made elsewhere could not lean on them). Replays are small (a few kB) and keyed by a
digest of their data, so sharing them needs no invalidation: entries expire after a day.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import redis

log = logging.getLogger("curvecast.worker")

PREFIX = b"curvecast:memo:"
TTL_S = 24 * 3600
TIMEOUT_S = 0.5  # a slow or lost Redis costs one call this much...
RETRY_AFTER_S = 30.0  # ... and then is left alone this long: a forecast makes dozens of calls


class RedisStore:
    """workers.forecast.memo.Store on Redis. It never fails a job: an error is a miss (get)
    or nothing kept (put), logged once until Redis answers again, and for RETRY_AFTER_S the
    store is not asked at all."""

    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=TIMEOUT_S,
                                           socket_connect_timeout=TIMEOUT_S)
        self._failing = False
        self._quiet_until = 0.0

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        if time.monotonic() < self._quiet_until:
            return [None] * len(keys)
        try:
            found = self._redis.mget([PREFIX + k for k in keys])
        except redis.RedisError as exc:
            self._failed(exc)
            return [None] * len(keys)
        self._failing = False
        return list(found)

    def put(self, key: bytes, value: bytes) -> None:
        if time.monotonic() < self._quiet_until:
            return
        try:
            self._redis.set(PREFIX + key, value, ex=TTL_S)
        except redis.RedisError as exc:
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        if not self._failing:
            log.warning("the shared forecast memo is unreachable (%s): fitting alone", exc)
        self._failing = True
        self._quiet_until = time.monotonic() + RETRY_AFTER_S
