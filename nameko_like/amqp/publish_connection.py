"""The connection under a PublishChannel: made, read, lost and made again.

:class:`PublishConnection` keeps one connection and its confirm-mode
channel for :class:`~nameko_like.amqp.publish_channel.PublishChannel`,
which adds publishing on top:

* **Reconnects** are shared: while the broker is away, publishers waiting
  for it make one connection attempt every ``RECONNECT_INTERVAL`` between
  them (whoever holds the lock when one is due), so an outage does not turn
  into a storm of attempts (see :mod:`nameko_like.amqp.retry`).
* **Reading**: in an eventlet monkey-patched process (where services always
  run) a reader greenthread reads the connection for good, with a heartbeat
  greenthread beside it (:func:`~nameko_like.amqp.transport_tuning.start_heartbeats`);
  in a plain script, whoever waits for an outcome reads (``drain_until``),
  sending and checking heartbeats as it waits; a publish after an idle
  spell first reads what the broker sent meanwhile and checks its
  heartbeats, so a connection the broker dropped (or a broker gone silent)
  is replaced before the publish rather than found out by a call that hangs.
* **connection.blocked**: while the broker blocks publishing (a memory or
  disk alarm) publishers wait; the error of one that runs out of time says
  so (``PublishBlocked``).
* **A channel closed by the broker** (a refused publish) is replaced on the
  same connection, and only the refused publish fails (see
  :mod:`nameko_like.amqp.channel_errors`).
* **A refused publish** (``basic.nack``) is sent again as its retry policy
  allows (see :mod:`nameko_like.amqp.nack_retry`).
* **A lost connection** fails every unconfirmed publish with
  ``PublishConnectionLost``; the next publish reconnects.

This module connects, reconnects and loses the connection, and runs the
reader greenthread; :class:`PublishConnection` takes the plain script's
reading from :class:`~nameko_like.amqp.plain_reading.PlainScriptReading`
and the resending of nacked publishes from
:class:`~nameko_like.amqp.nack_retry.NackResending`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from typing import Any

import amqp
from kombu import Connection
from kombu.exceptions import OperationalError

from nameko_like import instrumentation
from nameko_like._eventlet import eventlet
from nameko_like.amqp.channel_errors import (
    ChannelClosedByBroker,
    acknowledge_close,
    replace_closed_channel,
    watch_channel_close,
)
from nameko_like.amqp.confirms import ConfirmTracker, Settlements
from nameko_like.amqp.connection import (
    BrokerChannel,
    Declarable,
    connect,
    make_connection,
    safe_uri,
)
from nameko_like.amqp.nack_retry import NackedPublishes, NackResending
from nameko_like.amqp.plain_reading import PlainScriptReading
from nameko_like.amqp.retry import (
    BLOCKED_POLL,
    RECONNECT_INTERVAL,
    PublishBlocked,
    PublishConnectionLost,
    deadline_for,
)
from nameko_like.amqp.reader_loop import read_while
from nameko_like.amqp.transport import transport_of
from nameko_like.amqp.transport_tuning import heartbeat_interval, tune_connection
from nameko_like.exceptions import DeliveryError

_log = logging.getLogger(__name__)

# BLOCKED_POLL lives in nameko_like.amqp.retry; importers still find it here.
__all__ = ["BLOCKED_POLL", "PublishConnection"]


def _green_process() -> bool:
    patched: bool = eventlet.patcher.is_monkey_patched("socket")
    return patched


class PublishConnection(PlainScriptReading, NackResending):
    """A connection and a confirm-mode channel, kept up for publishers."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self._transport = transport_of(config)
        #: whether the broker confirms later, over a socket someone must read
        self._confirmed = self._transport.confirms
        self._use_reader = _green_process()
        # Green locks where greenthreads share the channel, OS locks in a
        # plain (possibly threaded) script.
        self._lock: AbstractContextManager[object] = (
            eventlet.semaphore.Semaphore() if self._use_reader else threading.RLock())
        self._drain_lock = threading.Lock()
        self._connection: Connection | None = None
        self._channel: BrokerChannel | None = None
        self._confirms = ConfirmTracker()
        self._confirms.retry_nacked = self._retry_nacked
        self._nacked = NackedPublishes()
        self._resend_timer: Any = None  # eventlet's GreenThread
        self._reader: Any = None  # eventlet's GreenThread (eventlet ships no types)
        self._closed = False
        self._next_attempt_at = float("-inf")
        self._last_connect_error: BaseException | None = None
        self._connected_before = False  # a later connect is a reconnect (observers)
        #: why the broker blocked publishing (connection.blocked), if it did
        self._blocked: str | None = None
        self._sleep: Callable[[float], None] = eventlet.sleep if self._use_reader else time.sleep
        self._declared: set[Declarable] = set()
        #: when a plain script's client last checked heartbeats (monotonic)
        self._last_beat_check = 0.0
        #: the heartbeat interval negotiated on the current connection (0: none)
        self._heartbeat = 0.0
        #: called with each new (connection, publish channel) right after
        #: connecting, before the reader starts: clients add consumers here
        self.on_connected: list[Callable[[Connection, BrokerChannel], object]] = []
        #: called with the error when a connection is lost
        self.on_lost: list[Callable[[BaseException], object]] = []

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called (a closed channel never reconnects)."""
        return self._closed

    @property
    def has_reader(self) -> bool:
        """Whether a reader greenthread reads this connection."""
        return self._use_reader and self._confirmed

    @property
    def blocked(self) -> bool:
        """Whether the broker currently blocks publishing (connection.blocked)."""
        return self._blocked is not None and self._connection is not None

    # -- connecting ----------------------------------------------------------------

    def _connect(self) -> None:
        # Heartbeats in either kind of process: the reader greenthread keeps
        # them; a plain script's client checks them while it waits and
        # before a publish after an idle spell (_check_idle_connection).
        connection = make_connection(self.config)
        # one attempt (on each node of a cluster): publishers waiting for
        # the broker share the attempts
        connect(connection)
        tune_connection(connection, coalesce_writes=self._use_reader)
        raw = getattr(connection, "connection", None)
        if raw is not None and hasattr(raw, "on_blocked"):
            raw.on_blocked = self._on_blocked
            raw.on_unblocked = self._on_unblocked
        self._blocked = None
        channel = connection.channel()
        if self._confirmed:
            self._prepare_channel(channel)
        self._heartbeat = heartbeat_interval(connection)  # before readers see the connection
        if self._closed:
            # Closed while this connection was being made: it must not
            # outlive the publisher, nor start a reader and heartbeats
            # nobody would stop.
            try:
                connection.release()
            except Exception:  # noqa: BLE001 - releasing a half-used connection may fail; it's gone
                pass
            raise PublishConnectionLost("publisher is closed")
        self._connection, self._channel = connection, channel
        self._last_beat_check = time.monotonic()
        self._confirms.new_channel()
        self._declared.clear()
        for callback in self.on_connected:
            callback(connection, channel)
        if self._use_reader and self._confirmed:
            self._reader = eventlet.spawn(self._read_forever, connection)

    def _prepare_channel(self, channel: amqp.Channel, confirm: bool = True) -> None:
        if confirm:
            channel.confirm_select()
        channel.events["basic_ack"].add(self._confirms.on_ack)
        channel.events["basic_nack"].add(self._confirms.on_nack)
        channel.events["basic_return"].add(self._confirms.on_return)
        watch_channel_close(channel, self._on_channel_closed)

    def _try_connect(self, force: bool = False) -> None:
        """One connection attempt, if one is due (called with the lock held).

        Publishers waiting for the broker share the attempts: one every
        ``RECONNECT_INTERVAL``, whoever gets the lock first makes it.
        """
        if self._closed:
            raise PublishConnectionLost("publisher is closed")
        if self._connection is not None:
            return
        if not force and time.monotonic() < self._next_attempt_at:
            return
        errors: tuple[type[BaseException], ...] = (OperationalError, *self._connection_errors())
        try:
            self._connect()
        except errors as exc:
            if self._closed:
                # close() came while the connection was being made (it
                # does not wait for the lock): give up, quietly.
                raise PublishConnectionLost("publisher is closed") from exc
            if self._last_connect_error is None:
                _log.warning("cannot connect to %s to publish (%s); publishers wait and retry "
                             "as their retry policy allows", safe_uri(self.config), exc)
            self._last_connect_error = exc
            self._next_attempt_at = time.monotonic() + RECONNECT_INTERVAL
            return
        if self._last_connect_error is not None:
            _log.warning("publishing to %s again", safe_uri(self.config))
        self._last_connect_error = None
        if self._connected_before and instrumentation.observers:
            instrumentation.emit("broker_reconnected", "publisher")
        self._connected_before = True

    def ensure_connected(self, retry_policy: dict[str, Any] | None = None) -> None:
        """Connect now if not connected, retrying as ``retry_policy`` allows."""
        deadline = deadline_for(True, retry_policy)
        first = True
        while True:
            with self._lock:
                self._try_connect(force=first)
                first = False
                if self._connection is not None:
                    return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._unavailable(None)
            self._sleep(min(max(self._next_attempt_at - time.monotonic(), BLOCKED_POLL),
                            remaining))

    def _connection_errors(self) -> tuple[type[BaseException], ...]:
        connection = self._connection or make_connection(self.config)
        return tuple(connection.connection_errors) + tuple(connection.channel_errors) + (OSError,)

    # -- blocked publishing --------------------------------------------------------

    def _on_blocked(self, reason: str) -> None:
        _log.warning("the broker %s blocked publishing: %s", safe_uri(self.config), reason)
        self._blocked = reason or "connection.blocked"
        # publishers waiting for confirms without a timer look again, and
        # from now on poll until their deadline (see Publisher._wait)
        self._confirms.wake_all()

    def _on_unblocked(self) -> None:
        _log.warning("the broker %s unblocked publishing", safe_uri(self.config))
        self._blocked = None

    def unavailable(self) -> DeliveryError:
        """The error for a publish that ran out of time waiting for the broker."""
        return self._unavailable(None)

    def _unavailable(self, error: BaseException | None) -> DeliveryError:
        """The error of a publish that ran out of time waiting for the broker."""
        if self._blocked is not None and self._connection is not None:
            return PublishBlocked(
                f"the broker at {safe_uri(self.config)} blocks publishing ({self._blocked}: "
                "a memory or disk alarm); free memory or disk on the broker")
        reason = error or self._last_connect_error
        return PublishConnectionLost(f"cannot publish to {safe_uri(self.config)}: {reason}")

    # -- a channel closed by the broker ---------------------------------------------

    def _on_channel_closed(self, closed: ChannelClosedByBroker) -> None:
        # In the reader (or a draining waiter), from inside drain_events.
        # Publishers must not write to the closed channel meanwhile (a frame
        # after the close-ok would be a connection error): hold the lock.
        with self._lock:
            try:
                settle = self._reopen_channel(closed)
            except self._connection_errors() as exc:
                if closed.channel is self._channel:
                    self._lost(exc)
                raise
        # outside the lock: an outcome's callback may publish
        self._confirms.settle_all(settle)

    def _reopen_channel(self, closed: ChannelClosedByBroker) -> Settlements:
        """The broker closed the channel over one publish: fail that one only.

        Called with the lock held, from the reader. The publishes the broker
        discarded go out again on a new channel of the same connection, with
        the same outcomes (see :meth:`ConfirmTracker.split_at_close`).
        Returns the outcomes to settle, with their errors.
        """
        connection = self._connection
        if closed.channel is not self._channel or connection is None:
            acknowledge_close(closed.channel)
            return []
        self._channel, settle = replace_closed_channel(
            connection.connection, closed, self._confirms,
            partial(self._prepare_channel, confirm=False))
        return settle

    # -- losing the connection -------------------------------------------------------

    def _lost(self, exc: BaseException, expected: bool = False) -> None:
        """Drop the connection and fail every unconfirmed publish."""
        connection, self._connection = self._connection, None
        self._channel = None
        # A loss seen by a publisher (a declare or write that failed) leaves
        # the reader blocked on the old socket, which nobody would close:
        # it goes with its connection (the next connect starts a new one).
        reader, self._reader = self._reader, None
        if reader is not None and reader is not eventlet.getcurrent():
            reader.kill()
        pending = self._confirms.drop_all() + self._nacked.take_all()
        self._blocked = None
        if connection is not None and not expected:
            _log.warning("publish connection to %s lost: %s", safe_uri(self.config), exc)
            try:
                connection.collect()
            except Exception:  # noqa: BLE001 - nothing useful to do with a broken socket
                pass
        error = PublishConnectionLost(f"connection lost before the broker confirmed: {exc}")
        for outcome in pending:
            outcome.settle(error)
        if connection is not None:
            for callback in self.on_lost:
                callback(exc)

    def close(self) -> None:
        """Close the connection; unconfirmed publishes fail."""
        self._closed = True
        reader, self._reader = self._reader, None
        if reader is not None and reader is not eventlet.getcurrent():
            reader.kill()
        timer, self._resend_timer = self._resend_timer, None
        if timer is not None:
            timer.cancel()
        if self._connection is not None:
            connection = self._connection
            self._lost(PublishConnectionLost("publisher closed"), expected=True)
            try:
                connection.release()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail; it's gone
                pass

    def forget_after_fork(self) -> None:
        """In a forked child: drop the connection unclosed; the next publish connects.

        Its socket is shared with the parent: closing it, or publishing or
        reading on it, from the child would corrupt the parent's AMQP stream.
        The parent's unconfirmed publishes are the parent's business.
        """
        self._connection = None
        self._channel = None
        self._reader = None
        self._resend_timer = None
        self._blocked = None
        self._confirms = ConfirmTracker()
        self._confirms.retry_nacked = self._retry_nacked
        self._nacked = NackedPublishes()
        self._declared = set()
        self._lock = eventlet.semaphore.Semaphore() if self._use_reader else threading.RLock()
        self._drain_lock = threading.Lock()

    # -- reading (eventlet) ---------------------------------------------------------

    def _read_forever(self, connection: Connection) -> None:
        try:
            read_while(connection, self._lock, lambda: self._connection is connection)
        except Exception as exc:  # noqa: BLE001 - any failure here means the connection is gone
            with self._lock:
                if self._connection is connection:
                    self._lost(exc)
