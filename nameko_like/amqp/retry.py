"""How long a publish may wait for the broker, from Nameko's retry policy.

Nameko publishes with ``retry=True`` and ``retry_policy={"max_retries": 3}``
(kombu's ``ensure`` fills in one-second intervals): a publish during a
short broker outage blocks, reconnects and succeeds; it raises only once
the policy is spent. Here the policy becomes a deadline: the sum of its
intervals (``interval_start``, growing by ``interval_step`` up to
``interval_max``, ``max_retries`` times) plus time for the connection
attempts themselves, or the policy's ``timeout`` when that is shorter.
Publishers waiting for the same connection share its reconnect attempts,
which are made every :data:`RECONNECT_INTERVAL` (or as soon as the broker's
port accepts connections again).

A publish the broker refuses (``basic.nack``: it could not take the
message, e.g. a queue at its length limit with ``reject-publish``, or a
quorum queue whose leader was on a node just lost) is sent again every
:data:`NACK_RETRY_INTERVAL` within the same deadline.

A publish that runs out of time raises :class:`PublishConnectionLost` (no
connection, or it dropped before the broker confirmed),
:class:`PublishBlocked` (the broker blocks publishing) or
:class:`PublishNacked` (the broker refused every attempt).
"""

from __future__ import annotations

import socket
import time
from typing import Any
from urllib.parse import urlsplit

from kombu import Connection

from nameko_like._eventlet import eventlet
from nameko_like.exceptions import DeliveryError

#: Nameko 2.14's ``DEFAULT_RETRY_POLICY``.
DEFAULT_RETRY_POLICY: dict[str, Any] = {"max_retries": 3}

#: kombu's ``Connection.ensure`` defaults for what a policy leaves out.
_INTERVAL_DEFAULTS: dict[str, float] = {
    "interval_start": 1.0, "interval_step": 1.0, "interval_max": 1.0,
}

#: Seconds allowed on top of the policy's intervals for the connection
#: attempts (a refused connection fails at once; a broker that is shutting
#: down may take a moment to refuse).
ATTEMPT_ALLOWANCE = 2.0

#: Seconds between shared reconnect attempts while publishers wait.
RECONNECT_INTERVAL = 0.5

#: Seconds between sending a refused (nacked) publish again.
NACK_RETRY_INTERVAL = 0.5

#: Seconds between checks of a blocked connection by a waiting publisher.
BLOCKED_POLL = 0.05

#: Seconds between probes of the broker's port while waiting to reconnect.
PROBE_INTERVAL = 0.1


class PublishConnectionLost(DeliveryError, ConnectionError):
    """The connection dropped before the broker confirmed the message.

    Also raised when no connection could be made within the publish's time.
    """


class PublishBlocked(DeliveryError, ConnectionError):
    """The broker blocked publishing (a memory or disk alarm) past the publish's time."""


class PublishNacked(DeliveryError):
    """The broker refused the message (``basic.nack``) each time it was sent.

    Not an unroutable message (that is ``UndeliverableMessage``): a queue
    took the route but could not take the message, for instance one at its
    ``x-max-length`` with ``x-overflow: reject-publish``, or a quorum queue
    without a leader for a few seconds after a cluster node was lost. The
    publish was retried as its retry policy allows; the message was not
    taken, so sending it again later is safe.
    """


#: ``(DEFAULT_RETRY_POLICY as it was, its seconds)``: worked out once, not per reply
_default_seconds: tuple[dict[str, Any], float] | None = None


def retry_seconds(retry: bool, retry_policy: dict[str, Any] | None) -> float:
    """How long a publish may keep trying to reach the broker."""
    global _default_seconds
    if not retry:
        return 0.0
    if retry_policy is None:
        cached = _default_seconds
        if cached is None or cached[0] != DEFAULT_RETRY_POLICY:  # a dict: it may be changed
            cached = _default_seconds = (dict(DEFAULT_RETRY_POLICY),
                                         _policy_seconds(DEFAULT_RETRY_POLICY))
        return cached[1]
    return _policy_seconds(retry_policy)


def _policy_seconds(retry_policy: dict[str, Any]) -> float:
    policy = dict(_INTERVAL_DEFAULTS)
    policy.update(retry_policy)
    max_retries = policy.get("max_retries")
    timeout = policy.get("timeout")
    if max_retries is None:
        # kombu: retry for ever, unless a timeout says otherwise
        return float("inf") if timeout is None else float(timeout)
    total, interval = 0.0, float(policy["interval_start"])
    for _ in range(int(max_retries)):
        total += min(interval, float(policy["interval_max"]))
        interval += float(policy["interval_step"])
    total += ATTEMPT_ALLOWANCE
    return total if timeout is None else min(total, float(timeout))


def deadline_for(retry: bool, retry_policy: dict[str, Any] | None) -> float:
    """The ``time.monotonic()`` by which a publish starting now must give up."""
    return time.monotonic() + retry_seconds(retry, retry_policy)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port`` right now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def broker_address(connection: Connection) -> tuple[str, int] | None:
    """``(host, port)`` of a kombu connection to AMQP, None for other transports."""
    port = connection.port or getattr(connection.transport, "default_port", None)
    if not connection.hostname or not port:
        return None
    return connection.hostname, int(port)


def broker_addresses(connection: Connection) -> list[tuple[str, int]]:
    """``(host, port)`` of the broker and of each failover alternative."""
    addresses = []
    current = broker_address(connection)
    if current is not None:
        addresses.append(current)
    default_port = getattr(connection.transport, "default_port", None)
    for alternative in connection.alt:
        parts = urlsplit(alternative if "://" in alternative else f"amqp://{alternative}")
        try:
            port = parts.port or default_port
        except ValueError:
            continue  # kombu refuses such a URI before we get here
        if parts.hostname and port and (parts.hostname, int(port)) not in addresses:
            addresses.append((parts.hostname, int(port)))
    return addresses


def wait_for_broker(connection: Connection, seconds: float) -> None:
    """Sleep up to ``seconds``, returning early once the broker's port accepts.

    Reconnect attempts back off so a long outage does not flood the log;
    probing the port (each node's, for a cluster) in between (a refused
    probe costs nothing) lets the next attempt follow within a fraction of
    a second of the broker's return instead of at the end of the back-off.
    """
    addresses = broker_addresses(connection)
    deadline = time.monotonic() + seconds
    was_closed: set[tuple[str, int]] = set()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        eventlet.sleep(min(PROBE_INTERVAL, remaining))
        # only a port that opens counts: one open all along (a broker that
        # refuses us for another reason) gets the whole back-off; with a
        # cluster, any node's
        for address in addresses:
            if port_open(*address, timeout=min(0.5, max(remaining, 0.05))):
                if address in was_closed:
                    return
            else:
                was_closed.add(address)
