"""docs/migrating_off_eventlet.rst: its example, on the asyncio hub, the real broker and Redis."""

import socket
import uuid

import pytest
import redis

from nameko_like.asyncio_support import is_asyncio_hub
from nameko_like.testing.services import entrypoint_waiter

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not is_asyncio_hub(),
                       reason="needs eventlet's asyncio hub (EVENTLET_HUB=asyncio)"),
]

REDIS_URI = "redis://localhost:6379/0"


def _redis_answers():
    try:
        with socket.create_connection(("localhost", 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def config(rabbit_config, web_config):
    if not _redis_answers():
        pytest.skip("Redis does not answer on localhost:6379")
    prefix = f"async-visits-{uuid.uuid4().hex[:12]}:"
    yield {**rabbit_config, **web_config, "REDIS_URI": REDIS_URI, "REDIS_KEY_PREFIX": prefix}
    client = redis.Redis.from_url(REDIS_URI)
    try:
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def test_async_visits_example(container_factory, config, web_session):
    from async_visits import Reports, Visits

    container_factory(Visits, config).start()
    reports = container_factory(Reports, config)
    reports.start()
    Reports.milestones.clear()

    for expected in range(1, 10):
        assert web_session.post("/visit/home").text == str(expected)
    with entrypoint_waiter(reports, "on_visited",
                           callback=lambda ctx, result, exc: ctx.args[0]["count"] == 10):
        assert web_session.post("/visit/home").text == "10"
    assert web_session.post("/visit/about").text == "1"
    assert Reports.milestones == [{"page": "home", "count": 10}]

    from nameko_like.standalone.rpc import ClusterRpcProxy

    with ClusterRpcProxy(config, timeout=10) as cluster:
        assert cluster.reports.total(["home", "about", "none"]) == {
            "home": 10, "about": 1, "none": 0}


def test_unit_testing_an_async_method_with_worker_factory():
    from unittest.mock import AsyncMock

    from async_visits import Reports

    from nameko_like.asyncio_support import run_coroutine
    from nameko_like.testing.services import worker_factory

    service = worker_factory(Reports, visits=AsyncMock())
    service.visits.count.side_effect = lambda page: len(page)
    # from a test (a greenthread), wait for the coroutine on the hub's loop
    assert run_coroutine(service.total(["home", "faq"])) == {"home": 4, "faq": 3}
