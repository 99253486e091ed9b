"""Matching the broker's confirms, nacks and returns to publish outcomes.

A confirm-mode channel numbers its publishes 1, 2, 3... (delivery tags);
the broker confirms (``basic.ack``) or rejects (``basic.nack``) them by tag,
one at a time or every tag up to one (``multiple``), in publish order. A
``mandatory`` publish no queue takes comes back first as a ``basic.return``,
which names its exchange and routing key but no tag: the oldest unsettled
mandatory publish on that route is the one returned (a channel's returns
come in publish order too), and its confirm then settles it as
undeliverable.

:class:`ConfirmTracker` keeps that bookkeeping for one
:class:`~nameko_like.amqp.publish_channel.PublishChannel`: its owner writes
the publishes and calls ``sent``; the channel's ack, nack and return events
call ``on_ack``, ``on_nack`` and ``on_return``. When the broker closes the
channel over one publish, ``split_at_close`` tells which publishes were
taken, which one was refused and which must be sent again (see
:mod:`nameko_like.amqp.channel_errors`).
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable

import amqp

from nameko_like import instrumentation
from nameko_like.amqp.channel_errors import (
    ChannelClosedByBroker,
    PublishRefused,
    SentPublish,
    find_offender,
)
from nameko_like.amqp.outcome import PublishOutcome
from nameko_like.amqp.retry import PublishConnectionLost, PublishNacked
from nameko_like.exceptions import UndeliverableMessage

_log = logging.getLogger(__name__)

#: Outcomes to settle, each with its error (None: the broker took it).
Settlements = list[tuple[PublishOutcome, BaseException | None]]

#: Publishes the broker discarded, with their outcomes, to send again.
Resends = list[tuple[PublishOutcome, SentPublish]]


class ConfirmTracker:
    """The unconfirmed publishes of one publish connection, by delivery tag.

    Not thread-safe: the owner calls ``sent``, ``resent``, ``split_at_close``,
    ``new_channel`` and ``drop_all`` with its lock held; the confirm events
    arrive in whoever reads the connection.
    """

    def __init__(self) -> None:
        self._next_tag = 0
        self._pending: dict[int, PublishOutcome] = {}
        #: what each unconfirmed publish sent, to tie a channel error to it
        self._sent: dict[int, SentPublish] = {}
        #: unsettled mandatory publishes by (exchange, routing key), oldest first
        self._by_route: dict[tuple[str, str], collections.deque[PublishOutcome]] = {}
        #: perf_counter() of each first send, only while observers are registered
        self._sent_at: dict[int, float] = {}
        #: called with a nacked publish: True if its owner sends it again
        #: later (then it stays unsettled), False to fail it now
        self.retry_nacked: Callable[[PublishOutcome, SentPublish], bool] | None = None

    @property
    def watching_returns(self) -> int:
        """How many mandatory publishes are still watched for a return."""
        return sum(len(waiting) for waiting in self._by_route.values())

    def new_channel(self) -> None:
        """A new channel numbers its publishes from 1 again."""
        self._next_tag = 0

    def sent(self, sent: SentPublish) -> PublishOutcome:
        """Track a publish just written to the channel; return its outcome.

        Call it only once the publish is written (a body that fails to
        serialize must not take a delivery tag), and without yielding in
        between, so that no confirm can arrive first.
        """
        outcome = PublishOutcome()
        self._track(outcome, sent)
        if instrumentation.observers and instrumentation.observed("publish_confirmed"):
            self._sent_at[self._next_tag] = time.perf_counter()
        if sent.mandatory:
            outcome.route = (sent.exchange, sent.routing_key)
            self._by_route.setdefault(outcome.route, collections.deque()).append(outcome)
        return outcome

    def resent(self, outcome: PublishOutcome, sent: SentPublish) -> None:
        """Track a publish written again (on a new channel), with its old outcome.

        Its route, if mandatory, is still watched: it never settled.
        """
        self._track(outcome, sent)

    def _track(self, outcome: PublishOutcome, sent: SentPublish) -> None:
        self._next_tag += 1
        self._pending[self._next_tag] = outcome
        self._sent[self._next_tag] = sent

    def wake_all(self) -> None:
        """Wake every greenthread waiting for a confirm, to look again (see
        ``PublishOutcome.wake``): the broker blocked publishing."""
        for outcome in list(self._pending.values()):
            outcome.wake()

    def drop_all(self) -> list[PublishOutcome]:
        """Forget every unconfirmed publish (the connection is gone); return their outcomes."""
        pending, self._pending = self._pending, {}
        self._sent.clear()
        self._sent_at.clear()
        self._by_route.clear()
        return list(pending.values())

    def split_at_close(self, closed: ChannelClosedByBroker) -> tuple[Settlements, Resends]:
        """The broker closed the channel over one publish: which publish was that?

        Publishes before the offender were taken by the broker (it handles
        a channel's publishes in order), the offender is refused
        (``PublishRefused``), those after it were discarded unread: they are
        returned, oldest first, to be sent again (then given to ``resent``).
        With no offender to blame, every unconfirmed publish fails. Every
        publish is forgotten; call ``new_channel`` before sending again.
        """
        tags = sorted(self._pending)
        self._sent_at.clear()
        offender = find_offender(closed.reply_text, [self._sent[tag] for tag in tags])
        if offender is None:
            # nothing to blame: fail them all, but keep the connection
            error: BaseException = PublishConnectionLost(
                f"the broker closed the publish channel: {closed}")
            before, refused, after = [], tags, []
        else:
            error = PublishRefused(closed.reply_code, closed.reply_text)
            before, refused, after = tags[:offender], [tags[offender]], tags[offender + 1:]
        settle: Settlements = [(self._pending.pop(tag), None) for tag in before]
        settle += [(self._pending.pop(tag), error) for tag in refused]
        resend: Resends = [(self._pending.pop(tag), self._sent.pop(tag)) for tag in after]
        for tag in before + refused:
            self._sent.pop(tag, None)
        return settle, resend

    def settle_all(self, settle: Settlements) -> None:
        """Settle outcomes taken out by ``split_at_close`` (a return makes one undeliverable).

        Outside the owner's lock: an outcome's callback may publish.
        """
        for outcome, failure in settle:
            if outcome.returned:
                failure = UndeliverableMessage(outcome.returned)
            outcome.settle(failure)
            if outcome.route is not None:
                self._forget_settled(outcome.route)

    # -- the channel's events ---------------------------------------------------

    def on_ack(self, delivery_tag: int, multiple: bool) -> None:
        """``basic.ack``: the broker took the message(s)."""
        self._settle(delivery_tag, multiple, None)

    def on_nack(self, delivery_tag: int, multiple: bool) -> None:
        """``basic.nack``: the broker could not take the message(s).

        Not unroutable (that comes as a return first): the owner may send
        it again (``retry_nacked``); otherwise it fails with ``PublishNacked``.
        """
        retry = self.retry_nacked
        for tag in self._tags_up_to(delivery_tag, multiple):
            outcome = self._pending.pop(tag, None)
            sent = self._sent.pop(tag, None)
            self._sent_at.pop(tag, None)
            if outcome is None or sent is None:
                continue
            outcome.nacks += 1
            if outcome.returned:
                outcome.settle(UndeliverableMessage(outcome.returned))
            elif retry is None or not retry(outcome, sent):
                outcome.settle(PublishNacked(
                    f"the broker refused the message (basic.nack) {outcome.nacks} time(s): "
                    "a queue it routes to could not take it (at its length limit with "
                    "reject-publish, or a quorum queue without a leader after a node loss); "
                    "it was not taken, send it again later"))
            else:
                continue
            if outcome.route is not None:
                self._forget_settled(outcome.route)

    def requeue_route(self, outcome: PublishOutcome) -> None:
        """A nacked mandatory publish is sent again: watch it for returns as
        the newest on its route (returns come in publish order)."""
        waiting = self._by_route.get(outcome.route) if outcome.route else None
        if waiting is None:
            return
        try:
            waiting.remove(outcome)
        except ValueError:
            pass
        waiting.append(outcome)

    def _tags_up_to(self, delivery_tag: int, multiple: bool) -> list[int]:
        if not multiple:
            return [delivery_tag]
        # tags are tracked in ascending order: stop at the first one past
        # delivery_tag instead of scanning every publish in flight
        tags = []
        for tag in self._pending:
            if tag > delivery_tag:
                break
            tags.append(tag)
        return tags

    def on_return(self, exc: Exception, exchange: str, routing_key: str,
                  message: amqp.Message) -> None:
        """``basic.return``: no queue took a mandatory message (py-amqp's arguments).

        A return precedes the confirm of the same message; messages on one
        route are matched oldest first (see the module docstring).
        """
        waiting = self._by_route.get((exchange, routing_key))
        while waiting:
            outcome = waiting.popleft()
            if not outcome.settled:
                outcome.returned = (
                    f"no queue bound to exchange {exchange!r} with routing key {routing_key!r}"
                )
                break
        _log.debug("message to %s/%s returned as unroutable", exchange, routing_key)

    def _settle(self, delivery_tag: int, multiple: bool, error: BaseException | None) -> None:
        for tag in self._tags_up_to(delivery_tag, multiple):
            outcome = self._pending.pop(tag, None)
            self._sent.pop(tag, None)
            if outcome is None:
                continue
            if self._sent_at:
                sent_at = self._sent_at.pop(tag, None)
                if sent_at is not None and error is None:
                    instrumentation.emit("publish_confirmed", time.perf_counter() - sent_at)
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
