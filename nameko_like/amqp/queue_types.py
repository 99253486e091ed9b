"""Which kind of RabbitMQ queue a service's queues are: classic or quorum.

``QUEUE_TYPE: classic`` (the default) declares every queue as Nameko 2.x
does. ``QUEUE_TYPE: quorum`` is for RabbitMQ clusters: the queues a service
owns and that outlive its connections (``rpc-<service>``, reliable event
handler queues, ``<service>.dead-letter``) become quorum queues, replicated
on the cluster's nodes and available while a majority of them runs. Their
arguments:

* ``x-queue-type: quorum``;
* ``x-delivery-limit: MAX_REDELIVERIES``: the broker counts every delivery
  that came back without an ack (``x-delivery-count``, across instances
  and restarts) and past the limit dead-letters the message itself, to
  ``<service>.dead-letter`` (``x-dead-letter-exchange`` is the default
  exchange, ``x-dead-letter-routing-key`` that queue), at least once
  (``x-dead-letter-strategy: at-least-once``, which needs
  ``x-overflow: reject-publish``).

Quorum queues can be neither exclusive nor auto-delete, and reply queues
are per caller: those stay classic, and are declared non-durable, so a
queue whose node goes down goes with it and can be declared again on
another node (a durable classic queue would be unusable until its node is
back).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from kombu import Queue

from nameko_like.constants import (
    DEFAULT_MAX_REDELIVERIES,
    DEFAULT_QUEUE_TYPE,
    MAX_REDELIVERIES_CONFIG_KEY,
    QUEUE_TYPE_CONFIG_KEY,
)
from nameko_like.exceptions import ConfigurationError

#: The values ``QUEUE_TYPE`` takes.
QUEUE_TYPES = ("classic", "quorum")
QUORUM = "quorum"


def queue_type(config: dict[str, Any]) -> str:
    """``QUEUE_TYPE`` of ``config``: ``classic`` or ``quorum``.

    Raises:
        ConfigurationError: any other value, naming the ones that work.
    """
    value = config.get(QUEUE_TYPE_CONFIG_KEY) or DEFAULT_QUEUE_TYPE
    if not isinstance(value, str) or value.lower() not in QUEUE_TYPES:
        raise ConfigurationError(
            f"{QUEUE_TYPE_CONFIG_KEY} must be one of {', '.join(QUEUE_TYPES)}, got {value!r} "
            "(quorum: replicated queues for a RabbitMQ cluster)")
    return value.lower()


def is_quorum(config: dict[str, Any]) -> bool:
    """Whether ``config`` asks for quorum queues."""
    return queue_type(config) == QUORUM


def max_redeliveries(config: dict[str, Any]) -> int:
    """``MAX_REDELIVERIES`` of ``config``, checked.

    Raises:
        ConfigurationError: not a whole number of at least 0.
    """
    value = config.get(MAX_REDELIVERIES_CONFIG_KEY, DEFAULT_MAX_REDELIVERIES)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(
            f"{MAX_REDELIVERIES_CONFIG_KEY} must be a whole number of at least 0, "
            f"got {value!r}")
    return value


def dead_letter_queue_name(service_name: str) -> str:
    """Name of the dead-letter queue of ``service_name``."""
    return f"{service_name}.dead-letter"


def quorum_arguments(config: dict[str, Any], service_name: str) -> dict[str, Any]:
    """Arguments of a quorum queue owned by ``service_name`` (see the module)."""
    return {
        "x-queue-type": QUORUM,
        "x-delivery-limit": max_redeliveries(config),
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dead_letter_queue_name(service_name),
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def owned_queue_options(config: dict[str, Any], service_name: str, *,
                        auto_delete: bool = False,
                        exclusive: bool = False) -> dict[str, Any]:
    """``Queue`` keyword arguments of a queue ``service_name`` consumes.

    Durable queues that outlive their consumers become quorum queues with
    ``QUEUE_TYPE: quorum``; auto-delete and exclusive ones can't, and are
    declared non-durable there (see the module).
    """
    options: dict[str, Any] = {"durable": True, "auto_delete": auto_delete,
                               "exclusive": exclusive}
    if is_quorum(config):
        if auto_delete or exclusive:
            options["durable"] = False
        else:
            options["queue_arguments"] = quorum_arguments(config, service_name)
    return options


def reply_queue_durable(config: dict[str, Any]) -> bool:
    """Whether RPC reply queues are durable (not with quorum queues: see the module)."""
    return not is_quorum(config)


def dead_letter_queue(config: dict[str, Any], service_name: str) -> Queue:
    """The dead-letter queue of ``service_name``, as ``QUEUE_TYPE`` declares it."""
    arguments = {"x-queue-type": QUORUM} if is_quorum(config) else None
    return Queue(dead_letter_queue_name(service_name), durable=True, auto_delete=False,
                 queue_arguments=arguments)


def dead_letter_target(config: dict[str, Any], queue: Queue) -> Queue | None:
    """The queue ``queue``'s broker dead-letters to, to declare before it
    (the broker would hold its dead letters back while it does not exist)."""
    arguments: dict[str, Any] = getattr(queue, "queue_arguments", None) or {}
    target = arguments.get("x-dead-letter-routing-key")
    if arguments.get("x-dead-letter-exchange") != "" or not isinstance(target, str):
        return None
    service_name = target.removesuffix(".dead-letter")
    if dead_letter_queue_name(service_name) != target:
        return None
    return dead_letter_queue(config, service_name)


_INEQUIVALENT = re.compile(
    r"inequivalent arg '(?P<arg>[^']+)' for queue '(?P<queue>[^']*)' in vhost "
    r"'(?P<vhost>[^']*)'")

def explain_declaration_error(exc: BaseException, config: dict[str, Any]) -> str:
    """Why the broker refused a queue declaration, and the fix, in one line.

    A queue's type and arguments are fixed when it is first declared: a
    config that changed ``QUEUE_TYPE`` (or ``MAX_REDELIVERIES`` on quorum
    queues), or instances with different configs, get
    ``PRECONDITION_FAILED - inequivalent arg``.
    """
    text = " ".join(str(getattr(exc, "reply_text", "") or exc).split())
    found = _INEQUIVALENT.search(text)
    if found is None:
        return text
    arg, queue, vhost = found["arg"], found["queue"], found["vhost"]
    delete = f"`rabbitmqctl delete_queue -p {shlex.quote(vhost)} {shlex.quote(queue)}`"
    change = (f"stop every consumer of it, let it drain, delete it ({delete}) and start "
              "again with the new config (or use a fresh vhost)")
    wanted = queue_type(config)
    if wanted == QUORUM and text.endswith("but current is none"):
        return (f"{text}: queue {queue!r} exists as a classic queue (declared by Nameko, or "
                f"with {QUEUE_TYPE_CONFIG_KEY}=classic) and {QUEUE_TYPE_CONFIG_KEY}=quorum "
                "declares it as a quorum queue; a queue keeps the type it was created "
                f"with: set {QUEUE_TYPE_CONFIG_KEY} back to classic or, to move to quorum "
                f"queues, {change}")
    if wanted != QUORUM and "received none but" in text:
        return (f"{text}: queue {queue!r} exists as a quorum queue and "
                f"{QUEUE_TYPE_CONFIG_KEY}={wanted} declares it as a classic one; a queue "
                f"keeps the type it was created with: set {QUEUE_TYPE_CONFIG_KEY} to quorum "
                f"(in every instance) or, to move back to classic queues, {change}")
    if arg == "x-delivery-limit":
        return (f"{text}: quorum queue {queue!r} was created with another delivery limit "
                f"than {MAX_REDELIVERIES_CONFIG_KEY}={max_redeliveries(config)}; a queue keeps "
                f"the arguments it was created with: give every instance the "
                f"{MAX_REDELIVERIES_CONFIG_KEY} it was created with, or {change}")
    return (f"{text}: queue {queue!r} exists with another {arg!r}; a queue keeps the "
            f"arguments it was created with: declare it as it was created, or {change}")
