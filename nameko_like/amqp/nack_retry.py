"""Publishes the broker refused (``basic.nack``), waiting to be sent again.

A nack is not a return: the message had a queue, which could not take it
(at its ``x-max-length`` with ``reject-publish``; after a cluster node was
lost, a quorum queue refuses publishes for several seconds while it has no
leader). That passes, so a nacked publish is sent again, every
:data:`~nameko_like.amqp.retry.NACK_RETRY_INTERVAL`, on the publisher's
channel, until the deadline its retry policy (or its call's timeout) gives
(``PublishOutcome.deadline``). Its outcome stays unsettled meanwhile; once
no attempt fits before the deadline it fails with ``PublishNacked``.

:class:`NackedPublishes` is the waiting list of one publish connection; the
connection sends the due ones again (a timer greenthread where a reader
runs, the waiting caller's reads in a plain script): :class:`NackResending`,
a part of :class:`~nameko_like.amqp.publish_connection.PublishConnection`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from kombu import Connection

from nameko_like._eventlet import eventlet
from nameko_like.amqp.channel_errors import SentPublish
from nameko_like.amqp.confirms import ConfirmTracker
from nameko_like.amqp.connection import BrokerChannel
from nameko_like.amqp.encode import send_publish
from nameko_like.amqp.outcome import PublishOutcome
from nameko_like.amqp.retry import BLOCKED_POLL, NACK_RETRY_INTERVAL, PublishConnectionLost

_log = logging.getLogger(__name__)

#: Seconds between two warnings about refused publishes (a node loss
#: refuses every publish for seconds: one line, not one per message).
WARN_EVERY = 5.0


class NackedPublishes:
    """Nacked publishes of one connection, each with when to send it again."""

    def __init__(self) -> None:
        self._waiting: list[tuple[float, PublishOutcome, SentPublish]] = []
        self._warned_at = float("-inf")
        # In a threaded plain script the thread reading a nack adds while
        # another, resending, takes: each change of the list is atomic.
        self._guard = threading.Lock()

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, outcome: PublishOutcome, sent: SentPublish) -> bool:
        """Keep ``outcome`` to send again if an attempt fits before its deadline."""
        now = time.monotonic()
        due = now + NACK_RETRY_INTERVAL
        if due >= outcome.deadline:
            return False
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            _log.warning("the broker refused a publish to %r/%r (basic.nack); sending it "
                         "again every %ss as its retry policy allows", sent.exchange,
                         sent.routing_key, NACK_RETRY_INTERVAL)
        with self._guard:
            self._waiting.append((due, outcome, sent))
        return True

    @property
    def next_due(self) -> float | None:
        """``time.monotonic()`` when the next one is due, None if none waits."""
        return self._waiting[0][0] if self._waiting else None

    def take_due(self) -> list[tuple[PublishOutcome, SentPublish]]:
        """The publishes due now, oldest first (forgotten here)."""
        now = time.monotonic()
        with self._guard:
            due = [(outcome, sent) for at, outcome, sent in self._waiting if at <= now]
            if due:
                self._waiting = [item for item in self._waiting if item[0] > now]
        return due

    def take_all(self) -> list[PublishOutcome]:
        """Every waiting publish's outcome (the connection is gone)."""
        with self._guard:
            waiting, self._waiting = self._waiting, []
        return [outcome for _, outcome, _ in waiting]


class NackResending:
    """Sending nacked publishes again: on a timer where a reader runs, else when asked."""

    # The connection's state, kept by PublishConnection (declared for type checks).
    _connection: Connection | None
    _channel: BrokerChannel | None
    _lock: AbstractContextManager[object]
    _confirms: ConfirmTracker
    _nacked: NackedPublishes
    _resend_timer: Any  # eventlet's GreenThread
    _closed: bool
    _use_reader: bool
    _connection_errors: Callable[[], tuple[type[BaseException], ...]]
    _lost: Callable[[BaseException], None]

    def _retry_nacked(self, outcome: PublishOutcome, sent: SentPublish) -> bool:
        """A nacked publish: keep it to send again if its deadline allows."""
        if self._closed or not self._nacked.add(outcome, sent):
            return False
        if self._use_reader and self._resend_timer is None:
            self._resend_timer = eventlet.spawn_after(NACK_RETRY_INTERVAL, self._resend_later)
        return True

    def _resend_later(self) -> None:
        self._resend_timer = None
        self.resend_nacked()
        next_due = self._nacked.next_due
        if next_due is not None and self._resend_timer is None and not self._closed:
            self._resend_timer = eventlet.spawn_after(
                max(next_due - time.monotonic(), BLOCKED_POLL), self._resend_later)

    def resend_nacked(self) -> None:
        """Send again the nacked publishes that are due, on the current channel."""
        failed: list[PublishOutcome] = []
        with self._lock:
            due = self._nacked.take_due()
            channel = self._channel
            if due and (self._connection is None or channel is None):
                failed = [outcome for outcome, _ in due]
            elif due:
                assert channel is not None
                for index, (outcome, sent) in enumerate(due):
                    try:
                        send_publish(channel, sent.message, sent.exchange, sent.routing_key,
                                     sent.mandatory)
                    except self._connection_errors() as exc:
                        self._lost(exc)
                        failed = [outcome for outcome, _ in due[index:]]
                        break
                    self._confirms.resent(outcome, sent)
                    self._confirms.requeue_route(outcome)
        # outside the lock: an outcome's callback may publish
        for outcome in failed:
            outcome.settle(PublishConnectionLost(
                "connection lost while a refused (nacked) publish waited to be sent again"))
