"""Tying a broker's channel.close to the publish that caused it.

A publish to an exchange that does not exist (404 NOT_FOUND), one the user
may not write to (403 ACCESS_REFUSED) or a message over the broker's
``max_message_size`` (406 PRECONDITION_FAILED) makes the broker close the
*channel*, not the connection. The broker handles a channel's publishes in
order, so when the close arrives:

* the unconfirmed publishes written before the offending one were taken
  (routed) by the broker; their confirms were lost with the channel;
* the offending one was refused;
* those written after it were discarded unread and can be sent again on a
  new channel of the same connection.

The close's text names the exchange or the message size, which identifies
the offender among the unconfirmed publishes (:func:`find_offender`);
:func:`replace_closed_channel` then sends the discarded ones again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import amqp
from amqp import spec

from nameko_like.amqp.encode import send_publish
from nameko_like.exceptions import DeliveryError

if TYPE_CHECKING:
    from nameko_like.amqp.confirms import ConfirmTracker, Settlements

_log = logging.getLogger(__name__)

_EXCHANGE_TEXT = re.compile(r"exchange '((?:[^'\\]|\\.)*)' in vhost")
_SIZE_TEXT = re.compile(r"message size (\d+) is larger than")


class PublishRefused(DeliveryError):
    """The broker refused this one message and closed its channel (403/404/406).

    Permanent: publishing the same message again fails the same way.
    ``reply_code`` and ``reply_text`` are the broker's.
    """

    def __init__(self, reply_code: int, reply_text: str) -> None:
        super().__init__(f"the broker refused the message ({reply_code}): {reply_text}")
        self.reply_code = reply_code
        self.reply_text = reply_text

    @property
    def too_large(self) -> bool:
        """Whether the message was over the broker's ``max_message_size``."""
        return _SIZE_TEXT.search(self.reply_text) is not None


class ChannelClosedByBroker(DeliveryError):
    """What the broker said when it closed a publish channel."""

    def __init__(self, channel: amqp.Channel, reply_code: int, reply_text: str) -> None:
        super().__init__(f"{reply_code}: {reply_text}")
        self.channel = channel
        self.reply_code = reply_code
        self.reply_text = reply_text


@dataclass
class SentPublish:
    """What is needed to match a publish to a close, and to send it again."""

    message: amqp.Message
    exchange: str
    routing_key: str
    mandatory: bool


def watch_channel_close(channel: amqp.Channel,
                        on_closed: Callable[[ChannelClosedByBroker], None]) -> None:
    """Call ``on_closed`` when the broker closes ``channel``, instead of reviving it.

    py-amqp would reopen the channel under the same number, without
    confirm mode, and raise out of the reader; instead ``on_closed`` runs
    right there in the reader, and decides what becomes of the channel's
    unconfirmed publishes. It must send the ``channel.close-ok``
    (:func:`acknowledge_close`) before any other frame on that channel
    number.
    """
    def on_close(reply_code: int, reply_text: str, class_id: int, method_id: int) -> None:
        on_closed(ChannelClosedByBroker(channel, reply_code, reply_text))

    channel._callbacks[spec.Channel.Close] = on_close


def acknowledge_close(channel: amqp.Channel) -> None:
    """Send ``channel.close-ok`` and free the channel's number."""
    channel.send_method(spec.Channel.CloseOk)
    channel.is_open = False
    channel.collect()


def open_channel_nowait(connection: amqp.Connection) -> amqp.Channel:
    """A new py-amqp channel, opened and put in confirm mode without waiting.

    The reader greenthread owns the socket, so nobody may wait for the
    broker's answers here; AMQP lets publishes follow ``channel.open`` and
    ``confirm.select`` at once, and the broker handles them in order.
    """
    channel = amqp.Channel(connection)
    channel.send_method(spec.Channel.Open, "s", ("",))
    channel.confirm_select(nowait=True)
    return channel


def find_offender(reply_text: str, sent: list[SentPublish]) -> int | None:
    """Index in ``sent`` (unconfirmed publishes, oldest first) of the refused one.

    The first publish matching the exchange or size named by the broker;
    without a name to match, the oldest unconfirmed publish. None if
    nothing matches.
    """
    exchange = _EXCHANGE_TEXT.search(reply_text)
    if exchange is not None:
        name = exchange.group(1)
        return next((index for index, item in enumerate(sent) if item.exchange == name), None)
    size = _SIZE_TEXT.search(reply_text)
    if size is not None:
        length = int(size.group(1))
        return next((index for index, item in enumerate(sent) if len(item.message.body) == length),
                    None)
    return 0 if sent else None


def replace_closed_channel(
    connection: amqp.Connection, closed: ChannelClosedByBroker, confirms: ConfirmTracker,
    prepare: Callable[[amqp.Channel], None],
) -> tuple[amqp.Channel, Settlements]:
    """A new channel in place of the one the broker closed over one publish.

    The close is acknowledged, a new channel of ``connection`` opened
    without waiting and given to ``prepare``; the publishes the broker
    discarded go out again on it first, in order, with the same outcomes
    (see :meth:`ConfirmTracker.split_at_close`). Returns the new channel
    and the outcomes to settle, with their errors (the refused publish's
    among them).
    """
    # a new channel first: callbacks of settled outcomes may publish
    acknowledge_close(closed.channel)
    channel = open_channel_nowait(connection)
    prepare(channel)
    settle, resend = confirms.split_at_close(closed)
    confirms.new_channel()
    for outcome, sent in resend:
        send_publish(channel, sent.message, sent.exchange, sent.routing_key, sent.mandatory)
        confirms.resent(outcome, sent)
    _log.warning("the broker refused a publish (%s); %d publish(es) sent again",
                 closed, len(resend))
    return channel, settle
