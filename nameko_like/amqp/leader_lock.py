"""A leader lock made of one RabbitMQ queue: who of a service's instances is in charge.

Every instance consumes the lock's queue, declared with
``x-single-active-consumer``: the broker makes one consumer active and
delivers messages to that one only. Each instance puts a small *token*
message in the queue when it connects; the active consumer receives the
tokens and keeps one unacknowledged. Receiving a token is how an instance
learns it is the active one, and it stays active as long as its consumer
lives. When the leader's connection goes (a stop, a crash, ``kill -9``) the
broker gives its token back to the queue and makes the next consumer
active, which then receives it: the hand-over needs nothing but the broker.

The queue holds at most one ready token (``x-max-length`` 1; the one a
leader holds unacknowledged is not counted), and is deleted by the broker
once no instance has used it for a day (``x-expires``). The leader swaps
its token for a fresh one every minute, so the broker's
``consumer_timeout`` (30 minutes by default) never closes its channel.

On ``memory://`` (one process) the first lock to start for a name leads,
and the next takes over when it stops.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import amqp
from kombu import Queue

from nameko_like._eventlet import eventlet
from nameko_like.amqp.connection import make_connection, safe_uri
from nameko_like.amqp.transport import transport_of
from nameko_like.amqp.transport_tuning import start_heartbeats

_log = logging.getLogger(__name__)

#: Seconds between a leader's token swaps (see the module's docstring).
TOKEN_RENEW_INTERVAL = 60.0
#: The lock queue is deleted after this long without consumers (milliseconds).
QUEUE_EXPIRES_MS = 24 * 3600 * 1000
#: Waits between reconnect attempts, in seconds.
RECONNECT_INTERVAL_START = 0.5
RECONNECT_INTERVAL_MAX = 5.0


def lock_queue(name: str) -> Queue:
    """The lock queue ``name``, with the arguments that make it a lock."""
    return Queue(name, durable=True, auto_delete=False, queue_arguments={
        "x-single-active-consumer": True,
        "x-max-length": 1,
        "x-expires": QUEUE_EXPIRES_MS,
    })


class LeaderLock:
    """Membership in the group of instances contending for lock ``name``.

    ``start(spawn)`` joins (``spawn`` runs the lock's loop in a greenthread,
    e.g. a container's ``spawn_managed_thread``); :meth:`held_since` says
    whether and since when this instance leads; :meth:`stop` leaves the
    group and hands the lead over at once.
    """

    def __init__(self, config: dict[str, Any], name: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.name = name
        self.clock = clock
        self._since: float | None = None
        self._stopping = False
        self._connection: Any = None
        self._channel: Any = None
        self._token_tag: int | None = None
        self._write_lock = eventlet.semaphore.Semaphore()
        #: one process on an in-process broker: no broker-held lock needed
        self._in_process = transport_of(config).in_process

    def held_since(self) -> float | None:
        """When (``clock`` time) this instance became the leader; None if it is not."""
        return self._since

    def start(self, spawn: Callable[[Callable[[], None]], Any]) -> None:
        """Join the contenders; the lead comes when the broker gives it."""
        if self._in_process:
            _LocalLocks.join(self)
        else:
            spawn(self._run)

    def stop(self) -> None:
        """Leave the contenders; if leading, the next one takes over at once."""
        self._stopping = True
        self._since = None
        if self._in_process:
            _LocalLocks.leave(self)
            return
        with self._write_lock:
            self._close()

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - a dead connection closes as it can
                pass

    # -- on RabbitMQ ---------------------------------------------------------------

    def _run(self) -> None:
        interval = RECONNECT_INTERVAL_START
        while not self._stopping:
            try:
                self._connect()
                interval = RECONNECT_INTERVAL_START
                self._hold()
            except Exception as exc:  # noqa: BLE001 - any failure: lose the lead, reconnect
                was_leader = self._since is not None
                self._since = None
                with self._write_lock:
                    self._close()
                if self._stopping:
                    return
                _log.warning("leader lock %s: connection to %s lost (%s)%s; reconnecting in "
                             "%.1fs", self.name, safe_uri(self.config), exc,
                             ", no longer leading" if was_leader else "", interval)
                eventlet.sleep(interval)
                interval = min(interval * 2, RECONNECT_INTERVAL_MAX)

    def _connect(self) -> None:
        connection = make_connection(self.config)
        connection.connect()
        with self._write_lock:
            if self._stopping:
                connection.close()
                return
            self._connection = connection
            channel = connection.channel()
            lock_queue(self.name)(channel).declare()
            # one token at a time: the others wait in the queue, ready for
            # whoever leads next
            channel.basic_qos(0, 1, False)
            channel.basic_consume(queue=self.name, callback=self._on_token, no_ack=False)
            self._put_token(channel)
            self._channel = channel

    def _put_token(self, channel: amqp.Channel) -> None:
        channel.basic_publish(amqp.Message(b"", delivery_mode=2), exchange="",
                              routing_key=self.name)

    def _on_token(self, message: amqp.Message) -> None:
        # Only the active consumer gets deliveries: this instance leads, and
        # keeps leading until its consumer ends.
        self._token_tag = message.delivery_tag
        if self._since is None:
            self._since = self.clock()
            _log.info("leader lock %s: leading", self.name)

    def _hold(self) -> None:
        connection = self._connection
        if connection is None:
            return
        heartbeats = start_heartbeats(connection, self._write_lock)
        renew_at = time.monotonic() + TOKEN_RENEW_INTERVAL
        try:
            while not self._stopping and self._connection is connection:
                try:
                    connection.drain_events(timeout=max(0.01, renew_at - time.monotonic()))
                except TimeoutError:
                    pass
                if time.monotonic() >= renew_at:
                    self._renew_token()
                    renew_at = time.monotonic() + TOKEN_RENEW_INTERVAL
        finally:
            if heartbeats is not None:
                heartbeats.kill()

    def _renew_token(self) -> None:
        tag, self._token_tag = self._token_tag, None
        if tag is None:
            return
        with self._write_lock:
            # the fresh token first, so the queue is never without one
            self._put_token(self._channel)
            self._channel.basic_ack(tag)


class _LocalLocks:
    """Leader locks of one process on ``memory://``: first come, first lead."""

    _waiting: dict[str, list[LeaderLock]] = {}

    @classmethod
    def join(cls, lock: LeaderLock) -> None:
        line = cls._waiting.setdefault(lock.name, [])
        line.append(lock)
        if line[0] is lock:
            lock._since = lock.clock()

    @classmethod
    def leave(cls, lock: LeaderLock) -> None:
        line = cls._waiting.get(lock.name, [])
        if lock in line:
            line.remove(lock)
        if line and line[0]._since is None:
            line[0]._since = line[0].clock()
