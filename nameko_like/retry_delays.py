"""The delay topology: where a message waits for its next attempt.

Built from plain RabbitMQ features, no plugin:

* one durable headers exchange per service, ``<service>.retry``;
* one durable queue per delay, ``<service>.retry.<milliseconds>ms``, bound to
  it by the :data:`DELAY_HEADER` header, declared with that delay as its
  ``x-message-ttl`` and the default exchange (``""``) as its
  ``x-dead-letter-exchange``.

A waiting message is published (persistent, confirmed) to the exchange with
the name of the queue it came from as its routing key. When its time is up
the broker dead-letters it to the default exchange with that routing key:
straight back to its queue. The TTL is the queue's, not the message's, so
every message of a queue waits the same time and expires in order: a long
delay never holds a short one back (RabbitMQ only expires messages at the
head of a queue). Delays are rounded to two significant figures
(:func:`delay_milliseconds`), so a service has a few queues per decade of
delay at most.

Queues have no ``x-expires``: a waiting message must never lose its queue,
and empty queues cost the broker next to nothing.

On ``memory://`` (one process, nothing persistent anyway) messages wait in
a greenthread instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kombu import Exchange, Queue

from nameko_like._eventlet import eventlet
from nameko_like.amqp.publish_pool import PublishPool
from nameko_like.amqp.transport import transport_of
from nameko_like.protocols import DeliveredMessage

_log = logging.getLogger(__name__)

#: header the delay exchange routes on (not ``x-``: headers exchanges ignore those)
DELAY_HEADER = "retry-delay-ms"

#: headers the broker adds when it dead-letters; dropped when a message goes
#: back to wait, so they don't grow with every attempt
DEATH_HEADERS = ("x-death", "x-first-death-exchange", "x-first-death-queue",
                  "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue",
                  "x-last-death-reason")

#: AMQP properties a waiting message keeps: an RPC request keeps its
#: ``reply_to`` and ``correlation_id``, so its caller gets the final reply.
_KEPT_PROPERTIES = ("correlation_id", "reply_to", "priority", "message_id", "timestamp", "type",
                    "app_id", "user_id")


def delay_milliseconds(seconds: float) -> int:
    """``seconds`` in whole milliseconds, rounded to two significant figures."""
    millis = max(round(seconds * 1000), 0)
    if millis < 100:
        return millis
    scale: int = 10 ** (len(str(millis)) - 2)
    return (millis + scale // 2) // scale * scale


def delay_exchange(service_name: str) -> Exchange:
    """The headers exchange ``service_name``'s waiting messages are published to."""
    return Exchange(f"{service_name}.retry", type="headers", durable=True, auto_delete=False)


def delay_queue(service_name: str, millis: int) -> Queue:
    """The queue where ``service_name``'s messages wait ``millis`` milliseconds."""
    return Queue(
        f"{service_name}.retry.{millis}ms",
        exchange=delay_exchange(service_name),
        binding_arguments={"x-match": "all", DELAY_HEADER: str(millis)},
        durable=True,
        auto_delete=False,
        queue_arguments={"x-message-ttl": millis, "x-dead-letter-exchange": ""},
    )


def _properties(message: DeliveredMessage) -> dict[str, Any]:
    properties = dict(message.properties or {})
    return {key: properties[key] for key in _KEPT_PROPERTIES if properties.get(key) is not None}


def wait_then_return(config: dict[str, Any], service_name: str, message: DeliveredMessage,
                     queue_name: str, seconds: float, extra_headers: dict[str, Any],
                     on_done: Callable[[BaseException | None], None], *,
                     pool: PublishPool) -> None:
    """Put a copy of ``message`` aside; it comes back to ``queue_name`` after ``seconds``
    (published through ``pool``, the container's).

    ``on_done(error)`` is called once the broker has the copy (error None),
    or could not take it; only then may the original be settled.
    """
    headers = {key: value for key, value in (message.headers or {}).items()
               if key not in DEATH_HEADERS}
    headers.update(extra_headers)
    millis = delay_milliseconds(seconds)
    headers[DELAY_HEADER] = str(millis)
    publish: dict[str, Any] = dict(
        headers=headers,
        content_type=message.content_type or "application/data",
        content_encoding=message.content_encoding or "binary",
        delivery_mode=2,
        **_properties(message),
    )
    channel = pool.get(config)
    if transport_of(config).in_process:
        _wait_in_memory(channel, message.body, queue_name, millis, publish)
        on_done(None)
        return
    queue = delay_queue(service_name, millis)
    try:
        # mandatory: a delay queue deleted by hand returns the message, and
        # the original goes back to its queue rather than being lost
        outcome = channel.publish(message.body, exchange=delay_exchange(service_name).name,
                                  routing_key=queue_name, mandatory=True,
                                  declare=(queue,), **publish)
    except Exception as exc:  # noqa: BLE001 - whatever failed the publish, on_done decides
        on_done(exc)
        return
    outcome.add_callback(lambda settled: on_done(settled.error))


def _wait_in_memory(channel: Any, body: Any, queue_name: str, millis: int,
                    publish: dict[str, Any]) -> None:
    def back() -> None:
        try:
            channel.publish(body, exchange="", routing_key=queue_name, **publish)
        except Exception:  # noqa: BLE001 - a background greenthread: log, don't raise
            _log.exception("could not return a delayed message to %s", queue_name)

    eventlet.spawn_after(millis / 1000, back)
