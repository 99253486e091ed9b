"""Dead-lettering and bounded redelivery of messages that can't be processed.

A message a service cannot process is published, unchanged, to the
service's dead-letter queue ``<service>.dead-letter`` (declared durable on
first use) with the reason in the ``x-dead-letter-reason`` header and where it came
from in ``x-original-*`` headers; only then is the original acknowledged, so
nothing is dropped. Explicit publishing is used instead of RabbitMQ's
``x-dead-letter-exchange`` queue argument so our queues keep exactly the
arguments Nameko declares them with, and mixed deployments stay compatible.
With ``QUEUE_TYPE: quorum`` the broker itself also dead-letters there, a
message delivered more than ``MAX_REDELIVERIES`` times (see
:mod:`nameko_like.amqp.queue_types`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kombu import Queue

from nameko_like.amqp.publish_pool import PublishPool
from nameko_like.amqp.queue_types import dead_letter_queue, is_quorum
from nameko_like.amqp.queue_types import dead_letter_queue_name as dead_letter_queue_name
from nameko_like.protocols import DeliveredMessage

_log = logging.getLogger(__name__)

#: header holding why a message was dead-lettered
REASON_HEADER = "x-dead-letter-reason"
#: header holding when a message was dead-lettered (Unix time, seconds)
TIME_HEADER = "x-dead-letter-time"
#: headers naming where a dead-lettered or requeued message was first published
ORIGINAL_EXCHANGE_HEADER = "x-original-exchange"
ORIGINAL_ROUTING_KEY_HEADER = "x-original-routing-key"
#: header counting how often nameko_like has requeued a message
REDELIVERY_HEADER = "x-redelivery-count"


#: AMQP properties a moved message keeps (the others are set anew).
_KEPT_PROPERTIES = ("correlation_id", "reply_to", "priority", "message_id", "timestamp", "type",
                    "app_id", "user_id")


def _copy_properties(message: DeliveredMessage) -> dict[str, Any]:
    properties = dict(message.properties or {})
    return {key: properties[key] for key in _KEPT_PROPERTIES if properties.get(key) is not None}


def republish(config: dict[str, Any], message: DeliveredMessage, routing_key: str,
              extra_headers: dict[str, Any],
              on_done: Callable[[BaseException | None], None],
              drop_headers: tuple[str, ...] = (), queue: Queue | None = None, *,
              pool: PublishPool) -> None:
    """Publish ``message`` unchanged to queue ``routing_key`` via the default exchange,
    through ``pool`` (the container's).

    ``on_done(error)`` is called once the broker confirmed (error None) or
    refused it. ``drop_headers`` are left out of the copy. ``queue`` is
    declared first; by default a durable classic ``routing_key``, but
    nothing with quorum queues (the queue a message is requeued to exists:
    it was consumed from; declared as classic, it would be refused).
    """
    headers = {key: value for key, value in (message.headers or {}).items()
               if key not in drop_headers}
    headers.update(extra_headers)
    channel = pool.get(config)
    if queue is None and not is_quorum(config):
        queue = Queue(routing_key, durable=True, auto_delete=False)
    try:
        outcome = channel.publish(
            message.body,
            exchange="",
            routing_key=routing_key,
            headers=headers,
            content_type=message.content_type or "application/data",
            content_encoding=message.content_encoding or "binary",
            delivery_mode=2,
            declare=(queue,) if queue is not None else (),
            **_copy_properties(message),
        )
    except Exception as exc:  # noqa: BLE001 - whatever failed the publish, on_done decides
        on_done(exc)
        return
    outcome.add_callback(lambda settled: on_done(settled.error))


def dead_letter(config: dict[str, Any], service_name: str, message: DeliveredMessage, reason: str,
                on_done: Callable[[BaseException | None], None],
                extra_headers: dict[str, Any] | None = None,
                drop_headers: tuple[str, ...] = (), *, pool: PublishPool) -> None:
    """Send ``message`` to the service's dead-letter queue with ``reason``
    (plus ``extra_headers``, minus ``drop_headers``: e.g. the attempts of a
    retried message, not its bookkeeping while it waited)."""
    headers = dict(origin_headers(message), **{REASON_HEADER: reason,
                                                TIME_HEADER: int(time.time())})
    headers.update(extra_headers or {})
    # Header values come from whoever published: escaped and cut short, so a
    # newline in a header cannot forge log lines nor a huge one flood the log.
    _log.warning("dead-lettering a message from %s/%s: %s",
                 _for_log(headers[ORIGINAL_EXCHANGE_HEADER]),
                 _for_log(headers[ORIGINAL_ROUTING_KEY_HEADER]), _for_log(reason))
    queue = dead_letter_queue(config, service_name)
    republish(config, message, queue.name, headers, on_done, drop_headers, queue, pool=pool)


#: Longest untrusted value written to a log line, in characters.
_LOG_VALUE_LIMIT = 200


def _for_log(value: object) -> str:
    """``value`` as one printable line: control characters escaped, length capped."""
    text = value if isinstance(value, str) else repr(value)
    escaped = text.encode("unicode_escape").decode("ascii")
    if len(escaped) > _LOG_VALUE_LIMIT:
        escaped = escaped[:_LOG_VALUE_LIMIT] + f"... ({len(escaped)} characters)"
    return escaped


def origin_headers(message: DeliveredMessage) -> dict[str, Any]:
    """Where ``message`` was first published, as ``x-original-*`` headers.

    A message requeued by nameko_like arrives through the default exchange;
    the headers it was requeued with still name its first exchange and key.
    """
    existing = message.headers or {}
    if ORIGINAL_EXCHANGE_HEADER in existing:
        return {
            ORIGINAL_EXCHANGE_HEADER: existing[ORIGINAL_EXCHANGE_HEADER],
            ORIGINAL_ROUTING_KEY_HEADER: existing.get(ORIGINAL_ROUTING_KEY_HEADER, ""),
        }
    info = message.delivery_info or {}
    return {
        ORIGINAL_EXCHANGE_HEADER: info.get("exchange") or "",
        ORIGINAL_ROUTING_KEY_HEADER: info.get("routing_key") or "",
    }


def redelivery_count(message: DeliveredMessage) -> int:
    """How often this message was requeued after a handler error."""
    try:
        return int((message.headers or {}).get(REDELIVERY_HEADER, 0))
    except (TypeError, ValueError):
        return 0
