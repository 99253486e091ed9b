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
runs, the waiting caller's reads in a plain script).
"""

from __future__ import annotations

import logging
import time

from nameko_like.amqp.channel_errors import SentPublish
from nameko_like.amqp.outcome import PublishOutcome
from nameko_like.amqp.retry import NACK_RETRY_INTERVAL

_log = logging.getLogger(__name__)

#: Seconds between two warnings about refused publishes (a node loss
#: refuses every publish for seconds: one line, not one per message).
WARN_EVERY = 5.0


class NackedPublishes:
    """Nacked publishes of one connection, each with when to send it again."""

    def __init__(self) -> None:
        self._waiting: list[tuple[float, PublishOutcome, SentPublish]] = []
        self._warned_at = float("-inf")

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
        self._waiting.append((due, outcome, sent))
        return True

    @property
    def next_due(self) -> float | None:
        """``time.monotonic()`` when the next one is due, None if none waits."""
        return self._waiting[0][0] if self._waiting else None

    def take_due(self) -> list[tuple[PublishOutcome, SentPublish]]:
        """The publishes due now, oldest first (forgotten here)."""
        now = time.monotonic()
        due = [(outcome, sent) for at, outcome, sent in self._waiting if at <= now]
        if due:
            self._waiting = [item for item in self._waiting if item[0] > now]
        return due

    def take_all(self) -> list[PublishOutcome]:
        """Every waiting publish's outcome (the connection is gone)."""
        waiting, self._waiting = self._waiting, []
        return [outcome for _, outcome, _ in waiting]
