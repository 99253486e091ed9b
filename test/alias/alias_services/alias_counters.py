"""A service written for Nameko, using nameko-redis: run unchanged under the alias."""

from typing import Any

from nameko.rpc import rpc
from nameko_redis import Redis


class CountersService:
    """Counters kept in Redis."""

    name = "counters"
    redis: Any = Redis("development")

    @rpc
    def incr(self, key: str) -> int:
        """Add one to ``key``; return the new count."""
        return int(self.redis.incr(key))

    @rpc
    def get(self, key: str) -> int:
        """The count of ``key`` (0 if never counted)."""
        return int(self.redis.get(key) or 0)
