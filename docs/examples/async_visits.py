"""Services with async def methods, run on eventlet's asyncio hub.

Run with ``EVENTLET_HUB=asyncio nameko_like run async_visits``.
"""

import asyncio

import redis
import redis.asyncio

from nameko_like.asyncio_support import run_coroutine
from nameko_like.events import EventDispatcher, event_handler
from nameko_like.extensions import DependencyProvider
from nameko_like.rpc import RpcProxy, rpc
from nameko_like.web.handlers import http


class Counters(DependencyProvider):
    """Redis counters: redis-py's client in sync methods, redis.asyncio's in async ones."""

    def setup(self):
        config = self.container.config
        self.prefix = config.get("REDIS_KEY_PREFIX", "")
        self.sync_client = redis.Redis.from_url(config["REDIS_URI"])
        self.async_client = redis.asyncio.Redis.from_url(config["REDIS_URI"])

    def stop(self):
        self.sync_client.close()
        # eventlet code (this greenthread) waiting for a coroutine
        run_coroutine(self.async_client.aclose())

    def get_dependency(self, worker_ctx):
        return CounterClient(self.sync_client, self.prefix)

    def get_async_dependency(self, worker_ctx):
        return AsyncCounterClient(self.async_client, self.prefix)


class CounterClient:
    def __init__(self, client, prefix):
        self.client, self.prefix = client, prefix

    def get(self, name):
        return int(self.client.get(self.prefix + name) or 0)


class AsyncCounterClient:
    def __init__(self, client, prefix):
        self.client, self.prefix = client, prefix

    async def incr(self, name):
        return await self.client.incr(self.prefix + name)

    async def get(self, name):
        return int(await self.client.get(self.prefix + name) or 0)


class Visits:
    name = "visits"
    counters = Counters()
    dispatch = EventDispatcher()

    @http("POST", "/visit/<page>")
    async def visit(self, request, page):
        count = await self.counters.incr(page)
        await self.dispatch("visited", {"page": page, "count": count})
        return str(count)

    @rpc
    def count(self, page):
        # not migrated yet: a sync method, with the sync client
        return self.counters.get(page)


class Reports:
    name = "reports"
    visits = RpcProxy("visits")
    milestones = []

    @rpc
    async def total(self, pages):
        # the calls run concurrently
        counts = await asyncio.gather(*(self.visits.count(page) for page in pages))
        return dict(zip(pages, counts))

    @event_handler("visits", "visited")
    async def on_visited(self, payload):
        if payload["count"] % 10 == 0:
            self.milestones.append(payload)
