"""ConsumerConnection: one connection consuming all of a container's queues.

The connection is read by one greenthread that never blocks on anything but
the socket: a message that arrives while every worker is busy waits in a
backlog instead of stalling the reader, so heartbeats keep flowing and acks
keep going out however many messages are prefetched (the deadlocks of Nameko
issues #417 and #428 came from blocking the reader).

When the broker goes away the reader logs one warning per reconnect attempt,
reconnects with backoff, declares its queues again and resumes consuming.
Messages delivered on the old connection can no longer be acknowledged; the
broker redelivers them.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import Any

import amqp
from kombu import Connection, Queue

from nameko_like import instrumentation
from nameko_like._eventlet import eventlet
from nameko_like.amqp.connection import BrokerChannel, connect, make_connection, safe_uri
from nameko_like.amqp.pyamqp_transport import Delivery as Delivery  # where it used to live
from nameko_like.amqp.queue_types import dead_letter_target, explain_declaration_error
from nameko_like.amqp.retry import wait_for_broker
from nameko_like.amqp.reader_loop import read_while
from nameko_like.amqp.transport import transport_of
from nameko_like.amqp.transport_tuning import tune_connection
from nameko_like.exceptions import ConfigurationError
from nameko_like.protocols import ContainerInterface, DeliveredMessage

_log = logging.getLogger(__name__)

#: What a consumed queue's messages are handed to, in delivery order.
MessageHandler = Callable[[DeliveredMessage], None]

#: Broker answers to a declaration that no reconnect can fix. (Not
#: RESOURCE_LOCKED: an exclusive queue held by our own previous connection
#: is freed once the broker notices that connection is gone.)
_DECLARATION_ERRORS = (
    amqp.exceptions.PreconditionFailed,
    amqp.exceptions.NotFound,
    amqp.exceptions.AccessRefused,
)


def _node_down(exc: BaseException) -> bool:
    """Whether ``exc`` is a cluster's refusal to declare a durable classic
    queue whose node is down (``NOT_FOUND - home node ... is down or
    inaccessible``): it is usable again once that node is back."""
    return (isinstance(exc, amqp.exceptions.NotFound)
            and "is down or inaccessible" in str(getattr(exc, "reply_text", "") or exc))


#: Reconnect backoff bounds, in seconds.
RECONNECT_INTERVAL_START = 0.5
RECONNECT_INTERVAL_MAX = 5.0


class ConsumerConnection:
    """Consume several queues on one connection for one container.

    Args:
        container: the container whose worker pool bounds dispatching.
        config: the container config (broker URI, heartbeat, ...).
        prefetch_count: how many unacknowledged messages the broker may send.
    """

    def __init__(self, container: ContainerInterface, config: dict[str, Any],
                 prefetch_count: int) -> None:
        self.container = container
        self.config = config
        self.prefetch_count = prefetch_count
        self._transport = transport_of(config)
        self._handlers: dict[str, tuple[Queue, MessageHandler]] = {}
        #: queues whose handler never spawns a worker: no backlog for them
        self._workerless: set[str] = set()
        self._consumers: dict[str, str] = {}
        self._connection: Connection | None = None
        self._channel: BrokerChannel | None = None
        self._write_lock = eventlet.semaphore.Semaphore()
        self._backlog: collections.deque[tuple[str, DeliveredMessage]] = collections.deque()
        self._backlog_ready = eventlet.event.Event()
        self._stopping = False
        self._ready = eventlet.event.Event()
        # eventlet's GreenThreads (eventlet ships no types)
        self._reader: Any = None
        self._dispatcher: Any = None
        self._unsettled = 0
        #: made by stop() when it waits for acks still due (none per message)
        self._settled_all: Any = None
        #: deliveries that arrive while connecting, with the write lock held:
        #: handled once it is released, as a handler may settle at once (a
        #: reply's ack would wait for the lock this thread holds: deadlock)
        self._held: list[tuple[str, DeliveredMessage]] | None = None
        #: called with the error whenever the connection is lost
        self.on_lost: list[Callable[[BaseException], None]] = []
        #: called as ``on_handler_error(message, error)`` when a handler
        #: raises: the error belongs to that message (it is dead-lettered),
        #: never to the reader, which must go on with the others
        self.on_handler_error: Callable[[DeliveredMessage, Exception], None] | None = None

    # -- queues ------------------------------------------------------------------

    def add_queue(self, queue: Queue, handler: MessageHandler, needs_worker: bool = True) -> None:
        """Consume ``queue``, passing each message to ``handler`` in order.

        Without ``needs_worker``, messages are passed on as they arrive even
        when every worker is busy (the handler must not spawn one).
        """
        self._handlers[queue.name] = (queue, handler)
        if not needs_worker:
            self._workerless.add(queue.name)
        if self._channel is not None and queue.name not in self._consumers:
            with self._write_lock:
                # while running, the reader owns the socket: declare and
                # consume without waiting for the broker's answers
                self._consume(queue, nowait=True)

    def remove_queue(self, queue_name: str) -> None:
        """Stop consuming ``queue_name``; its backlog goes back to the broker."""
        self._handlers.pop(queue_name, None)
        self._workerless.discard(queue_name)
        tag = self._consumers.pop(queue_name, None)
        channel = self._channel
        if tag is not None and channel is not None:
            try:
                with self._write_lock:
                    # deliveries already on their way are requeued by _handle
                    self._transport.cancel(channel, tag)
            except Exception as exc:  # noqa: BLE001 - a dead connection cancels by itself
                _log.debug("cancel of %s failed: %s", queue_name, exc)

    def _consume(self, queue: Queue, nowait: bool = False) -> None:
        channel = self._channel
        if channel is None:
            # the connection was lost meanwhile: reconnecting consumes every queue
            return
        target = dead_letter_target(self.config, queue)
        if target is not None:
            # the broker dead-letters there (quorum queues): it must exist first
            target(channel).declare(nowait=nowait)
        queue(channel).declare(nowait=nowait)
        name = queue.name

        def on_message(message: DeliveredMessage) -> None:
            self._on_message(name, message)

        def on_cancel(consumer_tag: str) -> None:
            self._on_cancelled(name, consumer_tag)

        tag = self._transport.consume(channel, name, on_message, nowait=nowait,
                                      on_cancel=on_cancel)
        self._consumers[name] = tag

    def _on_cancelled(self, queue_name: str, consumer_tag: str) -> None:
        """The broker cancelled one consumer (its queue was deleted, say).

        Only that queue is affected: the channel and the messages delivered
        from every queue stay, so nothing is redelivered. The queue is
        declared again (with its bindings) and consumed again.
        """
        if self._consumers.get(queue_name) != consumer_tag or self._stopping:
            return
        del self._consumers[queue_name]
        _log.warning("the broker cancelled consuming %s (queue deleted?); declaring and "
                     "consuming it again", queue_name)
        # not from inside the reader's read: writing may yield
        eventlet.spawn_n(self._consume_again, queue_name, self._channel)

    def _consume_again(self, queue_name: str, channel: BrokerChannel | None) -> None:
        entry = self._handlers.get(queue_name)
        if entry is None or channel is not self._channel or queue_name in self._consumers:
            return
        try:
            with self._write_lock:
                self._consume(entry[0], nowait=True)
        except Exception as exc:  # noqa: BLE001 - a lost connection re-consumes on reconnect
            _log.warning("could not consume %s again: %s", queue_name, exc)

    @property
    def consuming(self) -> bool:
        """Whether connected and consuming every queue registered (readiness)."""
        return self._channel is not None and self._consumers.keys() >= self._handlers.keys()

    # -- lifecycle ---------------------------------------------------------------

    def start(self, timeout: float | None = None) -> None:
        """Connect and start consuming; return once consuming (or raise)."""
        self._reader = self.container.spawn_managed_thread(self._read_forever, "amqp-consumer")
        self._dispatcher = self.container.spawn_managed_thread(self._dispatch_backlog,
                                                               "amqp-backlog")
        with eventlet.Timeout(timeout):
            self._ready.wait()

    def stop(self, settle_timeout: float = 5.0) -> None:
        """Stop consuming, wait briefly for acks still due, then disconnect."""
        for name in list(self._handlers):
            self.remove_queue(name)
        self._stopping = True
        self._requeue_backlog()
        if self._unsettled and self._connection is not None:
            self._settled_all = self._settled_all or eventlet.event.Event()
            with eventlet.Timeout(settle_timeout, False):
                self._settled_all.wait()
        self._close()
        for thread in (self._reader, self._dispatcher):
            if thread is not None and thread is not eventlet.getcurrent():
                thread.kill()

    def kill(self) -> None:
        """Disconnect at once; unacknowledged messages go back to their queues."""
        self._stopping = True
        self._backlog.clear()
        self._close()

    def _close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        self._consumers.clear()
        if connection is not None:
            try:
                connection.release()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close; it's gone
                pass

    # -- reading -----------------------------------------------------------------

    def _connect(self) -> Connection:
        connection = make_connection(self.config)
        connect(connection)  # the first node of a cluster that answers
        tune_connection(connection, coalesce_writes=True)
        channel = connection.channel()
        self._transport.prepare_consumer_channel(channel, self.prefetch_count)
        self._connection, self._channel = connection, channel
        for queue, _handler in list(self._handlers.values()):
            self._consume(queue)
        return connection

    def _read_forever(self) -> None:
        interval = RECONNECT_INTERVAL_START
        attempt = 0
        while not self._stopping:
            try:
                with self._write_lock:
                    self._held = []
                    connection = self._connect()
            except Exception as exc:
                self._held = None  # the broker gives them again
                self._close()
                # (a classic queue whose cluster node is down: wait for it as for a broker)
                if not _node_down(exc) and (isinstance(exc, _DECLARATION_ERRORS)
                                            or not self._is_connection_error(exc)):
                    # A queue declared with other arguments than the broker
                    # has, a missing exchange, no permission: retrying can't
                    # help. Fail the container (and a start() in progress).
                    error = ConfigurationError(
                        f"{self.container.service_name}: the broker at {safe_uri(self.config)} "
                        f"refused a declaration: {explain_declaration_error(exc, self.config)}")
                    if not self._ready.ready():
                        self._ready.send_exception(error)
                    raise error from exc
                attempt += 1
                _log.warning("cannot connect to %s (%s); attempt %d, retrying in %.1fs",
                             safe_uri(self.config), exc, attempt, interval)
                # back off, but come back as soon as the broker's port opens
                wait_for_broker(make_connection(self.config), interval)
                interval = min(interval * 2, RECONNECT_INTERVAL_MAX)
                continue
            if attempt:
                _log.warning("reconnected to %s after %d attempt(s)", safe_uri(self.config),
                             attempt)
            if self._ready.ready() and instrumentation.observers:
                # not the first connection: a lost one is back
                instrumentation.emit("broker_reconnected", "consumer")
            attempt, interval = 0, RECONNECT_INTERVAL_START
            if not self._ready.ready():
                self._ready.send(None)
            held, self._held = self._held or [], None
            for queue_name, message in held:
                self._on_message(queue_name, message)
            try:
                self._drain(connection)
            except Exception as exc:
                if self._stopping:
                    return
                if not self._is_connection_error(exc):
                    raise
                _log.warning("connection to %s lost (%s); reconnecting", safe_uri(self.config), exc)
                self._close()
                self._forget_unsettled()
                for callback in self.on_lost:
                    callback(exc)

    def _drain(self, connection: Connection) -> None:
        read_while(connection, self._write_lock,
                   lambda: not self._stopping and self._connection is connection)

    def _is_connection_error(self, exc: BaseException) -> bool:
        connection = self._connection or make_connection(self.config)
        errors = tuple(connection.connection_errors) + tuple(connection.channel_errors) + (OSError,)
        return isinstance(exc, errors)

    # -- dispatching ------------------------------------------------------------

    def _on_message(self, queue_name: str, message: DeliveredMessage) -> None:
        if self._held is not None:
            self._held.append((queue_name, message))
            return
        self._unsettled += 1
        if queue_name in self._workerless or (
                not self._backlog and self.container.free_worker_slots > 0):
            self._handle(queue_name, message)
        else:
            self._backlog.append((queue_name, message))
            if not self._backlog_ready.ready():
                self._backlog_ready.send(None)

    def _handle(self, queue_name: str | None, message: DeliveredMessage) -> None:
        entry = self._handlers.get(queue_name) if queue_name else None
        if entry is None:
            # consumption of this queue was cancelled meanwhile
            self.settle(message, requeue=True)
            return
        try:
            entry[1](message)
        except Exception as exc:  # noqa: BLE001 - see on_handler_error
            _log.exception("error handling a message from %s", queue_name)
            if self.on_handler_error is not None:
                self.on_handler_error(message, exc)
            else:
                self.settle(message, requeue=False)

    def _dispatch_backlog(self) -> None:
        while True:
            if not self._backlog:
                self._backlog_ready.wait()
                self._backlog_ready.reset()
                continue
            # Wait for a free worker without holding one: the handler then
            # spawns its worker straight away, with no switch in between.
            if not self.container.wait_for_worker_slot() or not self._backlog:
                # no slot yet: handling now would block this thread in
                # spawn_worker, holding a message stop() can't give back
                continue
            queue_name, message = self._backlog.popleft()
            if self._stopping:
                self.settle(message, requeue=True)
                continue
            self._handle(queue_name, message)

    def _requeue_backlog(self) -> None:
        while self._backlog:
            _queue_name, message = self._backlog.popleft()
            self.settle(message, requeue=True)

    # -- settling ----------------------------------------------------------------

    def settle(self, message: DeliveredMessage, requeue: bool | None = None) -> None:
        """Ack ``message`` (``requeue`` None), or reject it, requeued or not.

        A message from a connection that has since been lost can't be
        settled; the broker has already made it available again.
        """
        channel = self._channel
        if message.channel is not channel or channel is None:
            _log.debug("not settling a message from a lost connection; the broker redelivers it")
            return
        try:
            with self._write_lock:
                if requeue is None:
                    message.ack()
                else:
                    message.reject(requeue=requeue)
        except Exception as exc:
            if not self._is_connection_error(exc):
                raise
            _log.debug("could not settle a message (%s); the broker redelivers it", exc)
            return
        self._unsettled -= 1
        if self._unsettled <= 0:
            self._all_settled()

    def _forget_unsettled(self) -> None:
        self._unsettled = 0
        self._backlog.clear()
        self._all_settled()

    def _all_settled(self) -> None:
        waited, self._settled_all = self._settled_all, None
        if waited is not None:
            waited.send(None)
