"""PublishPool: the publish channels of one owner, closed with it.

Every publish of a process goes through a
:class:`~nameko_like.amqp.publish_channel.PublishChannel`, one pipelined
connection per broker and connection settings: a publisher never waits
for a connection to be free. Which channels exist, and when they close, is
up to their owner, who holds a pool and closes it when it stops:

* a :class:`~nameko_like.runners.ServiceRunner` for all its containers;
* a :class:`~nameko_like.containers.ServiceContainer` run alone (as the
  testing helpers do), for its extensions;
* a standalone client: the event dispatcher and ``Publisher`` of
  :mod:`nameko_like.standalone` and :mod:`nameko_like.amqp`.

Extensions reach their container's pool as ``container.publish_pool``.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

from nameko_like.amqp.connection import ConnectionKey, connection_key
from nameko_like.amqp.publish_channel import PublishChannel

__all__ = ["PublishPool"]

#: Most config dicts whose connection key a pool remembers. Services use a
#: handful; a caller bringing a new dict each time must not keep them all.
_KEYS_CACHE_SIZE = 64

#: Every pool alive, so that a forked child can drop its parent's sockets.
_pools: weakref.WeakSet[PublishPool] = weakref.WeakSet()


class PublishPool:
    """One :class:`PublishChannel` per broker and connection settings, until ``close()``.

    ``get(config)`` is called for every reply and event, so the connection
    key is worked out once per config dict (config is not expected to change
    once services run). A closed pool can be used again: ``get`` then opens
    new channels (a runner or a proxy started again).
    """

    def __init__(self) -> None:
        self._channels: dict[ConnectionKey, PublishChannel] = {}
        self._keys: dict[int, tuple[dict[str, Any], ConnectionKey]] = {}
        self._lock = threading.Lock()
        _pools.add(self)

    def get(self, config: dict[str, Any]) -> PublishChannel:
        """The channel for the broker of ``config``, opened on first use."""
        cached = self._keys.get(id(config))
        if cached is not None and cached[0] is config:
            key = cached[1]
        else:
            key = connection_key(config)
            if len(self._keys) >= _KEYS_CACHE_SIZE:
                self._keys.clear()
            self._keys[id(config)] = (config, key)
        channel = self._channels.get(key)
        if channel is not None and not channel.closed:
            return channel
        with self._lock:
            channel = self._channels.get(key)
            if channel is None or channel.closed:
                channel = self._channels[key] = PublishChannel(config)
            return channel

    @property
    def channels(self) -> list[PublishChannel]:
        """The channels open now."""
        return [channel for channel in self._channels.values() if not channel.closed]

    def close(self) -> None:
        """Close every channel: their connections end, unconfirmed publishes fail."""
        with self._lock:
            channels = list(self._channels.values())
            self._channels.clear()
            self._keys.clear()
        for channel in channels:
            channel.close()

    def _forget_after_fork(self) -> None:
        """Drop the channels unclosed: their sockets belong to the parent."""
        self._channels.clear()
        self._keys.clear()
        self._lock = threading.Lock()


def close_when_collected(owner: object, pool: PublishPool) -> None:
    """Close ``pool`` once ``owner`` is garbage collected (or at exit).

    For standalone clients used without ``close()``, as Nameko's are: a
    program making one per message must not leave a connection behind each.
    Where a reader greenthread reads a channel, the close (which kills it)
    runs from the hub rather than inside the collector.
    """
    weakref.finalize(owner, _close_soon, pool)


def _close_soon(pool: PublishPool) -> None:
    if any(channel.has_reader for channel in pool.channels):
        from nameko_like._eventlet import eventlet

        eventlet.spawn_n(pool.close)
    else:
        pool.close()


def _forget_after_fork() -> None:
    """In a forked child, drop every pool's connections unclosed.

    Their sockets are shared with the parent: closing them (or publishing
    on them) from the child would corrupt the parent's AMQP stream. The
    child connects afresh on its first publish.
    """
    for pool in list(_pools):
        pool._forget_after_fork()


os.register_at_fork(after_in_child=_forget_after_fork)
