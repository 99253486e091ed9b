"""What RPC looks like on the wire; the same names and shapes as Nameko 2.x.

* requests go to the topic exchange ``nameko-rpc`` (config ``rpc_exchange``)
  with routing key ``<service>.<method>``, body ``{"args": [...], "kwargs": {...}}``,
  properties ``reply_to`` (the routing key of the caller's reply queue) and
  ``correlation_id``, and context data in ``nameko.<key>`` headers;
* each service consumes the durable queue ``rpc-<service>``, bound with
  ``<service>.*``;
* replies go to the same exchange with the request's ``reply_to`` as routing
  key and body ``{"result": ..., "error": null | {"exc_type", "exc_path",
  "exc_args", "value"}}``;
* callers consume ``rpc.reply-<caller>-<uuid>``, bound with ``<uuid>``.
"""

from __future__ import annotations

import uuid
from typing import Any

from kombu import Exchange, Queue

from nameko_like.amqp.queue_types import owned_queue_options, reply_queue_durable
from nameko_like.constants import (
    DEFAULT_RPC_EXCHANGE,
    DEFAULT_RPC_REPLY_QUEUE_TTL,
    RPC_EXCHANGE_CONFIG_KEY,
    RPC_REPLY_QUEUE_TTL_CONFIG_KEY,
)
from nameko_like.exceptions import MalformedRequest


def rpc_exchange(config: dict[str, Any]) -> Exchange:
    """The RPC exchange named by ``config``."""
    name = config.get(RPC_EXCHANGE_CONFIG_KEY) or DEFAULT_RPC_EXCHANGE
    return Exchange(name, type="topic", durable=True, auto_delete=False)


def service_queue(config: dict[str, Any], service_name: str) -> Queue:
    """The queue a service's RPC requests arrive on (a quorum queue with
    ``QUEUE_TYPE: quorum``)."""
    return Queue(
        f"rpc-{service_name}",
        exchange=rpc_exchange(config),
        routing_key=f"{service_name}.*",
        **owned_queue_options(config, service_name),
    )


def reply_queue(config: dict[str, Any], owner: str,
                auto_delete: bool = False) -> tuple[Queue, str]:
    """A fresh reply queue for ``owner`` and its routing key.

    The routing key is a new uuid and the queue ``rpc.reply-<owner>-<uuid>``
    bound with it, as in Nameko, so a Nameko service replies to it. It
    expires after ``RPC_REPLY_QUEUE_TTL`` seconds without a consumer.

    A service's queue (``auto_delete=False``) also outlives a lost
    connection, so replies published while the service reconnects wait for
    it. A standalone proxy's (``auto_delete=True``) goes away with its last
    consumer, that is with the proxy's connection: short-lived proxies
    leave no queues behind. (Its calls fail when their connection drops
    anyway; after a reconnect it is declared again under the same name.)
    The expiry stays as a backstop for a queue never consumed. With
    ``QUEUE_TYPE: quorum`` (a cluster) it is not durable: it goes away with
    its node, and is declared again on the node its caller reconnects to.
    """
    routing_key = str(uuid.uuid4())
    ttl = config.get(RPC_REPLY_QUEUE_TTL_CONFIG_KEY, DEFAULT_RPC_REPLY_QUEUE_TTL)
    queue = Queue(
        f"rpc.reply-{owner}-{routing_key}",
        exchange=rpc_exchange(config),
        routing_key=routing_key,
        durable=reply_queue_durable(config),
        auto_delete=auto_delete,
        queue_arguments={"x-expires": int(ttl * 1000)},
    )
    return queue, routing_key


def request_body(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The body of an RPC request."""
    return {"args": list(args), "kwargs": kwargs}


def parse_request_body(body: Any) -> tuple[list[Any], dict[str, Any]]:
    """``(args, kwargs)`` of a decoded request body, or ``MalformedRequest``."""
    if not isinstance(body, dict):
        raise MalformedRequest(
            f"request body must be an object with args and kwargs, got {type(body).__name__}"
        )
    args = body.get("args", [])
    kwargs = body.get("kwargs", {})
    if not isinstance(args, (list, tuple)):
        raise MalformedRequest(f"'args' must be a list, got {type(args).__name__}")
    if not isinstance(kwargs, dict) or not all(isinstance(key, str) for key in kwargs):
        raise MalformedRequest("'kwargs' must be an object with string keys")
    return list(args), kwargs


def reply_body(result: Any, error: dict[str, Any] | None) -> dict[str, Any]:
    """The body of an RPC reply."""
    return {"result": result, "error": error}
