"""Counting the broker's redeliveries of a message.

A message goes back to its queue without nameko_like republishing it when
its connection drops before the ack (a handler that hogged the CPU past the
heartbeat timeout, say) or when it is rejected with ``requeue``. RabbitMQ
then delivers it again with ``redelivered`` set, but a classic queue says
nothing of how often; a quorum queue adds ``x-delivery-count``. Without a
count, a message whose handling always ends that way loops forever.

:class:`RedeliveryCounter` counts, per process, the redeliveries of each
message it sees again (by queue, ids and body), and takes the quorum
queue's count, kept by the broker for every consumer, where there is one
(the broker then also dead-letters past ``MAX_REDELIVERIES`` itself: see
:mod:`nameko_like.amqp.queue_types`). Only redelivered messages are counted,
so the hot path pays nothing but one dictionary lookup of the flag.
"""

from __future__ import annotations

import collections
import hashlib

from nameko_like.protocols import DeliveredMessage

#: header of quorum queues: how often the message was delivered before
DELIVERY_COUNT_HEADER = "x-delivery-count"

#: Messages whose count is remembered; the oldest are forgotten first.
COUNTER_SIZE = 10000


def _key(queue_name: str, message: DeliveredMessage) -> bytes:
    properties = message.properties or {}
    digest = hashlib.blake2b(digest_size=16)
    for part in (queue_name, properties.get("correlation_id"), properties.get("message_id")):
        digest.update(repr(part).encode("utf-8", "backslashreplace"))
        digest.update(b"\0")
    body = message.body
    digest.update(body if isinstance(body, bytes)
                  else repr(body).encode("utf-8", "backslashreplace"))
    return digest.digest()


class RedeliveryCounter:
    """How often the broker has redelivered each message seen by this process."""

    def __init__(self, size: int = COUNTER_SIZE) -> None:
        self.size = size
        self._counts: collections.OrderedDict[bytes, int] = collections.OrderedDict()

    def count(self, queue_name: str, message: DeliveredMessage) -> int:
        """Note a delivery of ``message``; return how many redeliveries it has had."""
        if not (message.delivery_info or {}).get("redelivered"):
            return 0
        try:
            quorum = int((message.headers or {}).get(DELIVERY_COUNT_HEADER) or 0)
        except (TypeError, ValueError):
            quorum = 0
        if quorum:
            # a quorum queue counts for the whole cluster (every instance,
            # every restart) and enforces its delivery limit: nothing to keep
            return quorum
        key = _key(queue_name, message)
        count = self._counts.pop(key, 0) + 1
        self._counts[key] = count
        while len(self._counts) > self.size:
            self._counts.popitem(last=False)
        return count
