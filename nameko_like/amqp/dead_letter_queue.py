"""Reading, replaying and removing the messages of a service's dead-letter queue.

Used by ``nameko_like dlq``. Messages are taken with ``basic.get`` and held
unacknowledged while the command looks at them; the ones it does not
remove go back to the queue, in place, when it closes its connection. A
replayed message is removed only after the broker confirmed its copy (and
did not return it as unroutable), so a failure at any point loses nothing:
at worst the message is both replayed and still in the dead-letter queue.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone
from dataclasses import dataclass, field
from typing import Any

import amqp
from kombu import Queue

from nameko_like.amqp.connection import make_connection, safe_uri
from nameko_like.amqp.dead_letter import (
    ORIGINAL_EXCHANGE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    REASON_HEADER,
    REDELIVERY_HEADER,
    TIME_HEADER,
    dead_letter_queue_name,
)
from nameko_like.exceptions import CommandError

#: Headers of the dead-lettering itself (ours, and the broker's when a
#: quorum queue dead-letters), dropped from a replayed message.
BOOKKEEPING_HEADERS = frozenset({
    REASON_HEADER, TIME_HEADER, ORIGINAL_EXCHANGE_HEADER, ORIGINAL_ROUTING_KEY_HEADER,
    REDELIVERY_HEADER, "x-death", "x-first-death-exchange", "x-first-death-queue",
    "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue",
    "x-last-death-reason", "x-delivery-count"})
#: Properties a replayed message keeps (user_id is left out: the broker
#: refuses a user_id other than the publishing connection's user).
KEPT_PROPERTIES = ("content_type", "content_encoding", "correlation_id", "reply_to", "priority",
                   "message_id", "timestamp", "type", "app_id")
#: Seconds to wait for the broker to confirm one replayed message.
CONFIRM_TIMEOUT = 30.0
#: Hex digits of a message's id.
ID_LENGTH = 12


@dataclass
class DeadLetter:
    """One message of a dead-letter queue, as taken (and held) from it."""

    id: str
    body: bytes
    headers: dict[str, Any]
    properties: dict[str, Any]
    delivery_tag: int = field(repr=False)

    @property
    def _death(self) -> dict[str, Any]:
        """The broker's record of the first dead-lettering (quorum queues), if any."""
        deaths = self.headers.get("x-death")
        return dict(deaths[-1]) if isinstance(deaths, list) and deaths and \
            isinstance(deaths[-1], dict) else {}

    @property
    def reason(self) -> str:
        """Why it was dead-lettered (``?`` when no header says)."""
        if REASON_HEADER in self.headers:
            return str(self.headers[REASON_HEADER])
        death = self._death
        if death:
            return f"{death.get('reason')} (dead-lettered by the broker from {death.get('queue')})"
        return "?"

    @property
    def exchange(self) -> str | None:
        """The exchange it was first published to (None: unknown)."""
        value = self.headers.get(ORIGINAL_EXCHANGE_HEADER, self._death.get("exchange"))
        return None if value is None else str(value)

    @property
    def routing_key(self) -> str:
        """The routing key it was first published with."""
        keys = self._death.get("routing-keys") or [""]
        return str(self.headers.get(ORIGINAL_ROUTING_KEY_HEADER, keys[0]))

    @property
    def dead_lettered_at(self) -> float | None:
        """When it was dead-lettered (Unix time), if known."""
        value = self.headers.get(TIME_HEADER, self._death.get("time"))
        if isinstance(value, datetime):
            # AMQP timestamps are UTC; py-amqp gives them naive
            return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
        try:
            return float(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    def age(self, now: float | None = None) -> float | None:
        """Seconds since it was dead-lettered, if known."""
        moment = self.dead_lettered_at
        return None if moment is None else max(0.0, (time.time() if now is None else now) - moment)


def message_id(body: bytes, headers: dict[str, Any]) -> str:
    """A short id that names a message by its content (stable across commands)."""
    digest = hashlib.sha256(body)
    digest.update(repr(sorted(headers.items())).encode("utf-8", "backslashreplace"))
    return digest.hexdigest()[:ID_LENGTH]


class DeadLetterQueue:
    """A connection to ``<service>.dead-letter``; use it as a context manager.

    Raises ``CommandError`` when the queue does not exist.
    """

    def __init__(self, config: dict[str, Any], service_name: str) -> None:
        self.config = config
        self.name = dead_letter_queue_name(service_name)
        self.service_name = service_name
        self._connection: Any = None
        self._channel: Any = None
        self._publish_channel: Any = None

    def __enter__(self) -> DeadLetterQueue:
        connection = make_connection(self.config, heartbeat=False)
        connection.connect()
        self._connection = connection
        channel = connection.channel()
        channel.auto_decode = False  # bodies stay bytes, replayed unchanged
        try:
            Queue(self.name, durable=True)(channel).queue_declare(passive=True)
        except amqp.exceptions.NotFound:
            self.close()
            raise CommandError(
                f"no queue {self.name!r} on {safe_uri(self.config)}: {self.service_name} has "
                "dead-lettered nothing yet, or the service name (or vhost) is wrong") from None
        self._channel = channel
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection: the messages taken and not removed go back."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def take_all(self) -> list[DeadLetter]:
        """Every message of the queue, oldest first, held until :meth:`close`."""
        letters: list[DeadLetter] = []
        while True:
            message = self._channel.basic_get(queue=self.name, no_ack=False)
            if message is None:
                return letters
            body = message.body if isinstance(message.body, bytes) else bytes(message.body)
            headers = dict(message.properties.get("application_headers") or {})
            letters.append(DeadLetter(message_id(body, headers), body, headers,
                                      dict(message.properties), message.delivery_tag))

    def remove(self, letter: DeadLetter) -> None:
        """Remove ``letter`` from the queue for good."""
        self._channel.basic_ack(letter.delivery_tag)

    def replay(self, letter: DeadLetter) -> None:
        """Publish ``letter`` to where it first went, then remove it.

        Raises ``CommandError`` (and keeps the message) if it does not say
        where it came from, or the broker refused or could not route it.
        """
        if letter.exchange is None:
            raise CommandError(f"message {letter.id} has no {ORIGINAL_EXCHANGE_HEADER} header: "
                               "nowhere to replay it to")
        channel = self._publishing_channel()
        returned: list[Exception] = []

        def handler(exc: Exception, *details: object) -> None:
            returned.append(exc)

        channel.events["basic_return"].add(handler)
        headers = {key: value for key, value in letter.headers.items()
                   if key not in BOOKKEEPING_HEADERS}
        properties = {key: letter.properties[key] for key in KEPT_PROPERTIES
                      if letter.properties.get(key) is not None}
        message = amqp.Message(letter.body, application_headers=headers, delivery_mode=2,
                               **properties)
        try:
            channel.basic_publish_confirm(message, exchange=letter.exchange,
                                          routing_key=letter.routing_key, mandatory=True,
                                          confirm_timeout=CONFIRM_TIMEOUT)
        except amqp.exceptions.AMQPError as exc:
            self._publish_channel = None  # the broker closed it
            raise CommandError(f"the broker refused the replay of {letter.id} to "
                               f"{letter.exchange!r}/{letter.routing_key!r}: {exc}") from None
        finally:
            channel.events["basic_return"].discard(handler)
        if returned:
            raise CommandError(f"message {letter.id}: no queue is bound to "
                               f"{letter.exchange!r} with {letter.routing_key!r} (is the service "
                               "running, or its queue declared?); kept it")
        self.remove(letter)

    def _publishing_channel(self) -> Any:
        if self._publish_channel is None:
            # basic_publish_confirm puts it in confirm mode on first use
            self._publish_channel = self._connection.channel()
        return self._publish_channel
