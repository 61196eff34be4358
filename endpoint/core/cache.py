"""The Django cache on Redis, degrading like the gateway's rate limiter.

Sign-in, sign-up and password reset (allauth) and the page abuse limits
(django-ratelimit) keep their counters in the Django cache. Django's
RedisCache raises when Redis is down, which turned those pages into 500s.
This backend answers as if Redis were empty instead, and says so in the log
at most once a minute:

- reads are misses (``get`` gives the default, ``has_key`` False);
- writes store nothing (``set``, ``delete``, ``touch``...);
- ``add`` answers True, as if the key had been absent and was now stored:
  the locks and counters allauth and django-ratelimit open with ``add`` are
  then taken, fresh, so their limits fail open rather than block or refuse;
- ``incr`` raises ValueError, as for a key that does not exist.

Every call waits at most RATE_LIMIT_REDIS_TIMEOUT for a dead Redis (the
timeouts the limiter's own clients use), unless OPTIONS say otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache

from endpoint.core.redis_clients import UNREACHABLE, report_outage

log = logging.getLogger(__name__)

WHILE_DOWN = "answering every read as a miss and storing nothing"


class ForgivingRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        options = dict(params.get("OPTIONS") or {})
        timeout = settings.RATE_LIMIT_REDIS_TIMEOUT
        options.setdefault("socket_connect_timeout", timeout)
        options.setdefault("socket_timeout", timeout)
        super().__init__(server, {**params, "OPTIONS": options})

    def _or(self, fallback: Any, call: Callable[..., Any], *args: Any) -> Any:
        """``call(*args)``, or ``fallback`` when Redis cannot be reached."""
        try:
            return call(*args)
        except UNREACHABLE as exc:
            report_outage(log, "cache", self._servers[0], exc, WHILE_DOWN)
            return fallback

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._or(True, super().add, key, value, timeout, version)

    def get(self, key, default=None, version=None):
        return self._or(default, super().get, key, default, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        self._or(None, super().set, key, value, timeout, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._or(False, super().touch, key, timeout, version)

    def delete(self, key, version=None):
        return self._or(False, super().delete, key, version)

    def get_many(self, keys, version=None):
        return self._or({}, super().get_many, keys, version)

    def has_key(self, key, version=None):
        return self._or(False, super().has_key, key, version)

    def incr(self, key, delta=1, version=None):
        missing = object()
        value = self._or(missing, super().incr, key, delta, version)
        if value is missing:
            raise ValueError(f"Key {key!r} not found (the cache's Redis is unreachable).")
        return value

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._or([], super().set_many, data, timeout, version)

    def delete_many(self, keys, version=None):
        self._or(None, super().delete_many, keys, version)

    def clear(self):
        return self._or(False, super().clear)
