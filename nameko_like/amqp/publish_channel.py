"""PublishChannel: one connection that publishes with pipelined confirms.

Nameko waits for each publish's confirm before the next publish can use the
connection, so a publisher's rate is its confirm round-trip rate. Here every
publish is written at once and gets a :class:`PublishOutcome`; confirms,
nacks and returns are matched to outcomes as they arrive. The guarantee is
the same (a caller that waits learns whether the broker took the message),
but many publishes share one round trip.

Confirms are read either by a reader greenthread (inside an eventlet
monkey-patched process, where services always run) or, in a plain script, by
whoever waits for an outcome.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from typing import Any

from kombu import Exchange, Producer
from kombu.exceptions import OperationalError

from nameko_like._eventlet import eventlet
from nameko_like.amqp.connection import connection_key, is_memory_uri, make_connection, safe_uri
from nameko_like.amqp.transport_tuning import start_heartbeats, tune_connection
from nameko_like.amqp.channel_errors import (
    ChannelClosedByBroker,
    PublishRefused,
    SentPublish,
    acknowledge_close,
    find_offender,
    open_channel_nowait,
    watch_channel_close,
)
from nameko_like.amqp.encode import build_message, send_publish
from nameko_like.amqp.outcome import PublishOutcome, settled_outcome
from nameko_like.amqp.retry import (
    DEFAULT_RETRY_POLICY,
    RECONNECT_INTERVAL,
    PublishBlocked,
    deadline_for,
)
from nameko_like.exceptions import DeliveryError, RpcTimeout, UndeliverableMessage

_log = logging.getLogger(__name__)

__all__ = ["DEFAULT_RETRY_POLICY", "PublishBlocked", "PublishChannel", "PublishConnectionLost",
           "get_publish_channel", "reset_publish_channels"]

#: Seconds between checks of a blocked connection by a waiting publisher.
_BLOCKED_POLL = 0.05


class PublishConnectionLost(DeliveryError, ConnectionError):
    """The connection dropped before the broker confirmed the message."""


class _NotNow(Exception):
    """No connection to publish on yet (or publishing is blocked): wait."""


def _green_process() -> bool:
    return eventlet.patcher.is_monkey_patched("socket")


class PublishChannel:
    """A connection and a confirm-mode channel shared by many publishers."""

    def __init__(self, config: dict) -> None:
        self.config = config
        self._memory = is_memory_uri(config.get("AMQP_URI") or "")
        self._use_reader = _green_process()
        # Green locks where greenthreads share the channel, OS locks in a
        # plain (possibly threaded) script.
        self._lock: Any = eventlet.semaphore.Semaphore() if self._use_reader else threading.RLock()
        self._drain_lock = threading.Lock()
        self._connection: Any = None
        self._channel: Any = None
        self._producer: Any = None
        self._next_tag = 0
        self._pending: dict[int, PublishOutcome] = {}
        #: what each unconfirmed publish sent, to tie a channel error to it
        self._sent: dict[int, SentPublish] = {}
        self._by_route: dict[tuple[str, str], collections.deque] = {}
        self._reader: Any = None
        self._closed = False
        self._next_attempt_at = float("-inf")
        self._last_connect_error: BaseException | None = None
        #: why the broker blocked publishing (connection.blocked), if it did
        self._blocked: str | None = None
        self._sleep: Any = eventlet.sleep if self._use_reader else time.sleep
        self._declared: set[Any] = set()
        #: called with each new (connection, publish channel) right after
        #: connecting, before the reader starts: clients add consumers here
        self.on_connected: list[Any] = []
        #: called with the error when a connection is lost
        self.on_lost: list[Any] = []

    # -- connection management -------------------------------------------------

    def _connect(self) -> None:
        # Heartbeats need someone reading all the time: only the reader
        # greenthread does; a plain script's client reads only while it waits.
        connection = make_connection(self.config, heartbeat=self.has_reader)
        # one attempt: publishers waiting for the broker share the attempts
        connection.ensure_connection(max_retries=0)
        tune_connection(connection, coalesce_writes=self._use_reader)
        raw = getattr(connection, "connection", None)
        if raw is not None and hasattr(raw, "on_blocked"):
            raw.on_blocked = self._on_blocked
            raw.on_unblocked = self._on_unblocked
        self._blocked = None
        channel = connection.channel()
        if not self._memory:
            self._prepare_channel(channel)
        self._connection, self._channel = connection, channel
        self._producer = Producer(channel, auto_declare=False)
        self._next_tag = 0
        self._declared.clear()
        for callback in self.on_connected:
            callback(connection, channel)
        if self._use_reader and not self._memory:
            self._reader = eventlet.spawn(self._read_forever, connection)

    def _prepare_channel(self, channel: Any, confirm: bool = True) -> None:
        if confirm:
            channel.confirm_select()
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        channel.events["basic_return"].add(self._on_return)
        watch_channel_close(channel, self._on_channel_closed)

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
        for outcome, failure in settle:
            if outcome.returned:
                failure = UndeliverableMessage(outcome.returned)
            outcome.settle(failure)
            if outcome.route is not None:
                self._forget_settled(outcome.route)

    def _reopen_channel(self, closed: ChannelClosedByBroker
                        ) -> list[tuple[PublishOutcome, BaseException | None]]:
        """The broker closed the channel over one publish: fail that one only.

        Called with the lock held, from the reader. Publishes before the
        offender were taken by the broker (it handles a channel's publishes
        in order), those after it were discarded unread and go out again on
        a new channel of the same connection, with the same outcomes. See
        :mod:`nameko_like.amqp.channel_errors`. Returns the outcomes to
        settle, with their errors.
        """
        if closed.channel is not self._channel:
            acknowledge_close(closed.channel)
            return []
        # a new channel first: callbacks of settled outcomes may publish
        acknowledge_close(closed.channel)
        channel = open_channel_nowait(self._connection.connection)
        self._prepare_channel(channel, confirm=False)
        self._channel = channel
        self._producer = Producer(channel, auto_declare=False)
        self._next_tag = 0
        tags = sorted(self._pending)
        offender = find_offender(closed.reply_text, [self._sent[tag] for tag in tags])
        if offender is None:
            # nothing to blame: fail them all, but keep the connection
            error: BaseException = PublishConnectionLost(
                f"the broker closed the publish channel: {closed}")
            before, refused, after = [], tags, []
        else:
            error = PublishRefused(closed.reply_code, closed.reply_text)
            before, refused, after = tags[:offender], [tags[offender]], tags[offender + 1:]
        settle: list[tuple[PublishOutcome, BaseException | None]] = [
            (self._pending.pop(tag), None) for tag in before]
        settle += [(self._pending.pop(tag), error) for tag in refused]
        resend = [(self._pending.pop(tag), self._sent.pop(tag)) for tag in after]
        for tag in before + refused:
            self._sent.pop(tag, None)
        # the publishes the broker discarded go out again first, in order
        for outcome, sent in resend:
            send_publish(channel, sent.message, sent.exchange, sent.routing_key, sent.mandatory)
            self._next_tag += 1
            self._pending[self._next_tag] = outcome
            self._sent[self._next_tag] = sent
        _log.warning("the broker refused a publish (%s); %d publish(es) sent again",
                     closed, len(resend))
        return settle

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
        try:
            self._connect()
        except (OperationalError, *self._connection_errors()) as exc:
            if self._last_connect_error is None:
                _log.warning("cannot connect to %s to publish (%s); publishers wait and retry "
                             "as their retry policy allows", safe_uri(self.config), exc)
            self._last_connect_error = exc
            self._next_attempt_at = time.monotonic() + RECONNECT_INTERVAL
            return
        if self._last_connect_error is not None:
            _log.warning("publishing to %s again", safe_uri(self.config))
        self._last_connect_error = None

    def _on_blocked(self, reason: str) -> None:
        _log.warning("the broker %s blocked publishing: %s", safe_uri(self.config), reason)
        self._blocked = reason or "connection.blocked"

    def _on_unblocked(self) -> None:
        _log.warning("the broker %s unblocked publishing", safe_uri(self.config))
        self._blocked = None

    @property
    def blocked(self) -> bool:
        """Whether the broker currently blocks publishing (connection.blocked)."""
        return self._blocked is not None and self._connection is not None

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

    def _lost(self, exc: BaseException, expected: bool = False) -> None:
        """Drop the connection and fail every unconfirmed publish."""
        connection, self._connection = self._connection, None
        self._channel = self._producer = None
        pending, self._pending = self._pending, {}
        self._sent.clear()
        self._blocked = None
        self._by_route.clear()
        if connection is not None and not expected:
            _log.warning("publish connection to %s lost: %s", safe_uri(self.config), exc)
            try:
                connection.collect()
            except Exception:  # nothing useful to do with a broken socket
                pass
        error = PublishConnectionLost(f"connection lost before the broker confirmed: {exc}")
        for outcome in pending.values():
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
        if self._connection is not None:
            connection = self._connection
            self._lost(PublishConnectionLost("publisher closed"), expected=True)
            try:
                connection.release()
            except Exception:
                pass

    # -- publishing --------------------------------------------------------------

    def _declare(self, entities: tuple) -> None:
        """Declare exchanges/queues not yet declared on this connection.

        Declaring waits for the broker's answer, which would mean reading
        the socket the reader greenthread owns; so it happens on a
        short-lived connection of its own. It is rare: once per entity.
        """
        todo = [entity for entity in entities if entity not in self._declared]
        if not todo:
            return
        if self._memory:
            for entity in todo:
                entity(self._channel).declare()
        else:
            with make_connection(self.config, heartbeat=False) as connection:
                channel = connection.channel()
                for entity in todo:
                    entity(channel).declare()
        self._declared.update(todo)

    def publish(
        self,
        body: Any,
        exchange: str | Exchange = "",
        routing_key: str = "",
        mandatory: bool = False,
        retry: bool = True,
        retry_policy: dict | None = None,
        declare: tuple = (),
        deadline: float | None = None,
        **properties: Any,
    ) -> PublishOutcome:
        """Publish one message; return its outcome without waiting.

        ``properties`` are kombu ``Producer.publish`` keywords: serializer,
        compression, headers, delivery_mode, priority, expiration,
        correlation_id, reply_to, content_type, ...

        While the broker can't be reached (or blocks publishing), this waits
        and retries for as long as ``retry`` and ``retry_policy`` allow (see
        :mod:`nameko_like.amqp.retry`), or until ``deadline`` (a
        ``time.monotonic()`` value), then raises ``PublishConnectionLost``
        (or ``PublishBlocked``).
        """
        exchange_name = exchange.name if isinstance(exchange, Exchange) else exchange
        if deadline is None:
            deadline = deadline_for(retry, retry_policy)
        first = True
        while True:
            error: BaseException | None = None
            with self._lock:
                try:
                    self._try_connect(force=first and not retry)
                    first = False
                    if self._connection is None or self._blocked is not None:
                        raise _NotNow()
                    if declare:
                        self._declare(declare)
                    if self._memory:
                        return self._publish_in_memory(body, exchange_name, routing_key, mandatory, properties)
                    message = build_message(body, **properties)
                    send_publish(self._channel, message, exchange_name, routing_key, mandatory)
                    # Registered only once written: a body that fails to
                    # serialize must not take a delivery tag. Nothing can
                    # be confirmed between the write and these lines, as
                    # they don't yield.
                    outcome = PublishOutcome()
                    self._next_tag += 1
                    self._pending[self._next_tag] = outcome
                    self._sent[self._next_tag] = SentPublish(message, exchange_name, routing_key,
                                                             mandatory)
                    if mandatory:
                        outcome.route = (exchange_name, routing_key)
                        self._by_route.setdefault(outcome.route, collections.deque()).append(outcome)
                    return outcome
                except _NotNow:
                    pass
                except self._connection_errors() as exc:
                    self._lost(exc)
                    error = exc
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._unavailable(error)
            wait = _BLOCKED_POLL if self._blocked is not None else max(
                self._next_attempt_at - time.monotonic(), _BLOCKED_POLL)
            self._sleep(min(wait, remaining))

    def _connection_errors(self) -> tuple:
        connection = self._connection or make_connection(self.config)
        return tuple(connection.connection_errors) + tuple(connection.channel_errors) + (OSError,)

    def _publish_in_memory(self, body: Any, exchange: str, routing_key: str,
                           mandatory: bool, properties: dict) -> PublishOutcome:
        if mandatory and exchange:
            channel = self._channel
            try:
                routes = channel.typeof(exchange).lookup(channel.get_table(exchange), exchange, routing_key, None)
            except KeyError:
                routes = []
            if not routes:
                return settled_outcome(UndeliverableMessage(
                    f"no queue bound to exchange {exchange!r} with routing key {routing_key!r}"))
        self._producer.publish(body, exchange=exchange, routing_key=routing_key, retry=False, **properties)
        return settled_outcome()

    def wait(self, outcome: PublishOutcome, timeout: float | None = None) -> None:
        """Wait for ``outcome`` to settle, reading confirms if nobody else does."""
        if self._use_reader or outcome.settled:
            outcome.wait(timeout)
            return
        outcome.wait(timeout, drain=lambda t: self._drain_until(outcome, t))

    # -- confirms ------------------------------------------------------------------

    def _drain_until(self, outcome: PublishOutcome, timeout: float | None) -> None:
        if not self.drain_until(lambda: outcome.settled, timeout):
            raise RpcTimeout(f"no confirm from the broker within {timeout}s")

    @property
    def has_reader(self) -> bool:
        """Whether a reader greenthread reads this connection."""
        return self._use_reader and not self._memory

    def ensure_connected(self, retry_policy: dict | None = None) -> None:
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
            self._sleep(min(max(self._next_attempt_at - time.monotonic(), _BLOCKED_POLL),
                            remaining))

    def drain_until(self, done: Any, timeout: float | None) -> bool:
        """Read from the connection until ``done()`` is true; False on timeout.

        For processes without a reader greenthread: whoever waits reads, one
        at a time, and what it reads settles everyone's outcomes.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            connection = self._connection
            if connection is None:
                return done()
            with self._drain_lock:
                if done():
                    return True
                try:
                    # no timeout unless there is a deadline: each timeout
                    # costs socket-option system calls around every read
                    connection.drain_events(timeout=remaining)
                except TimeoutError:
                    continue
                except self._connection_errors() as exc:
                    with self._lock:
                        if self._connection is connection:
                            self._lost(exc)
        return True

    def _read_forever(self, connection: Any) -> None:
        heartbeats = start_heartbeats(connection, self._lock)
        try:
            while self._connection is connection:
                connection.drain_events(timeout=None)
        except Exception as exc:  # any failure here means the connection is gone
            with self._lock:
                if self._connection is connection:
                    self._lost(exc)
        finally:
            if heartbeats is not None:
                heartbeats.kill()

    def _settle(self, delivery_tag: int, multiple: bool, error: BaseException | None) -> None:
        if multiple:
            tags = [tag for tag in self._pending if tag <= delivery_tag]
        else:
            tags = [delivery_tag]
        for tag in tags:
            outcome = self._pending.pop(tag, None)
            self._sent.pop(tag, None)
            if outcome is None:
                continue
            if outcome.returned:
                outcome.settle(UndeliverableMessage(outcome.returned))
            else:
                outcome.settle(error)
            if outcome.route is not None:
                self._forget_settled(outcome.route)

    def _forget_settled(self, route: tuple[str, str]) -> None:
        """Stop watching settled publishes of ``route`` for returns.

        Confirms come in publish order, so settled outcomes gather at the
        left of their route's queue; without this every acknowledged
        mandatory publish (one per RPC request) would stay until a reconnect.
        """
        waiting = self._by_route.get(route)
        if waiting is None:
            return
        while waiting and waiting[0].settled:
            waiting.popleft()
        if not waiting:
            del self._by_route[route]

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple, None)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple, UndeliverableMessage("the broker rejected the message (nack)"))

    def _on_return(self, exc: Any, exchange: str, routing_key: str, message: Any) -> None:
        # A return precedes the confirm of the same message. Messages on one
        # route are matched oldest first (see the module docstring).
        waiting = self._by_route.get((exchange, routing_key))
        while waiting:
            outcome = waiting.popleft()
            if not outcome.settled:
                outcome.returned = (
                    f"no queue bound to exchange {exchange!r} with routing key {routing_key!r}"
                )
                break
        _log.debug("message to %s/%s returned as unroutable", exchange, routing_key)


_channels: dict[tuple, PublishChannel] = {}
_channels_lock = threading.Lock()


_keys: dict[int, tuple[dict, tuple]] = {}
#: Most config dicts whose connection key is remembered. Services use a
#: handful; a program making a standalone dispatcher per event brings a new
#: dict each time, and the cache must not keep them all alive.
_KEYS_CACHE_SIZE = 64


def get_publish_channel(config: dict) -> PublishChannel:
    """The process-wide PublishChannel for the broker of ``config``.

    One pipelined connection per broker and connection settings is the
    bounded pool: a publisher never waits for a connection to be free.
    Called for every reply and event, so the connection key is worked out
    once per config dict (config is not expected to change once services
    run).
    """
    cached = _keys.get(id(config))
    if cached is not None and cached[0] is config:
        key = cached[1]
    else:
        key = connection_key(config)
        if len(_keys) >= _KEYS_CACHE_SIZE:
            _keys.clear()
        _keys[id(config)] = (config, key)
    channel = _channels.get(key)
    if channel is not None and not channel._closed:
        return channel
    with _channels_lock:
        channel = _channels.get(key)
        if channel is None or channel._closed:
            channel = _channels[key] = PublishChannel(config)
        return channel


def _forget_after_fork() -> None:
    """In a forked child, drop the parent's publish connections unclosed.

    Their sockets are shared with the parent: closing them (or publishing
    on them) from the child would corrupt the parent's AMQP stream. The
    child connects afresh on its first publish.
    """
    _channels.clear()
    _keys.clear()
    global _channels_lock
    _channels_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def reset_publish_channels() -> None:
    """Close every shared publish channel (tests, forked processes)."""
    with _channels_lock:
        channels = list(_channels.values())
        _channels.clear()
    for channel in channels:
        channel.close()
