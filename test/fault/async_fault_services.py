"""``async def`` services the fault tier runs with ``EVENTLET_HUB=asyncio``.

Each records ``<kind> <id>`` lines as :mod:`fault_services` does, so the
tests read what ran, where and how often.
"""

import asyncio
import os

from fault_services import record
from kombu import Queue

from nameko_like.messaging import consume
from nameko_like.rpc import rpc

#: the queue of :meth:`AsyncTarget.always_fails`
ASYNC_ALWAYS_FAILS_QUEUE = "fault-async-always-fails"


class AsyncTarget:
    name = "fault_async"

    @rpc
    async def ping(self):
        return os.getpid()

    @rpc
    async def nap(self, call_id, seconds):
        record("start", call_id)
        await asyncio.sleep(seconds)
        record("done", call_id)
        return {"id": call_id, "pid": os.getpid()}

    @consume(Queue(ASYNC_ALWAYS_FAILS_QUEUE, durable=True), requeue_on_error=True)
    async def always_fails(self, body):
        record("attempt", body["id"])
        await asyncio.sleep(0)
        raise ValueError("this async handler always fails")
