"""Fixtures shared by the messaging integration tier (RPC, events, messaging).

``backend`` runs a test once against RabbitMQ (a fresh vhost, marked
``integration``) and once against kombu's in-process ``memory://``
transport: behaviour that must not depend on the transport is written once.
Tests about what only a real broker does (confirms, mandatory returns,
queue arguments, names on the wire) use ``rabbit_config`` directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kombu import Connection, Queue
from kombu.transport import memory

MEMORY_CONFIG = {"AMQP_URI": "memory://"}


def _reset_memory_transport() -> None:
    # kombu keeps the memory broker's queues and bindings in class-level
    # state shared by the whole process; one test's leftovers must not
    # reach the next.
    memory.Channel.queues.clear()
    memory.Channel.events.clear()
    memory.Transport.global_state.clear()


@pytest.fixture
def memory_config() -> Iterator[dict]:
    """A config for the in-process broker, emptied before and after the test."""
    _reset_memory_transport()
    yield dict(MEMORY_CONFIG)
    _reset_memory_transport()


@pytest.fixture(params=[
    pytest.param("rabbit", marks=pytest.mark.integration),
    pytest.param("memory"),
])
def backend(request: pytest.FixtureRequest) -> dict:
    """A config for RabbitMQ (fresh vhost) or for ``memory://``: the test runs on both.

    Copy it before adding keys; it is the one ``rabbit_config`` also gives.
    """
    if request.param == "rabbit":
        return request.getfixturevalue("rabbit_config")
    return request.getfixturevalue("memory_config")


@pytest.fixture
def take_messages() -> Callable[..., list]:
    """``take(config, queue_name, count, timeout=5)``: consume up to ``count`` messages.

    Works on both backends. The messages are acknowledged and returned
    undecoded (``.body`` is bytes, ``.headers`` the AMQP headers), so a
    test can look at a payload that must not be deserialized.
    """

    def take(config: dict, queue_name: str, count: int = 1, timeout: float = 5.0) -> list:
        found: list = []
        deadline = time.monotonic() + timeout
        with Connection(config["AMQP_URI"], transport_options={"polling_interval": 0.01}) as conn:
            channel = conn.channel()
            while len(found) < count and time.monotonic() < deadline:
                try:
                    message = Queue(queue_name, no_declare=True)(channel).get(
                        no_ack=True, accept=["application/json"])
                except conn.channel_errors:  # no such queue (yet)
                    channel = conn.channel()
                    message = None
                if message is None:
                    time.sleep(0.02)
                    continue
                found.append(message)
        return found

    return take


@pytest.fixture
def management(rabbit_manager: Any, rabbit_config: dict) -> Any:
    """The management API, bound to this test's vhost; see ``_VhostApi``."""
    return _VhostApi(rabbit_manager, rabbit_config["vhost"])


class _VhostApi:
    """The few management API calls the integration tests need, for one vhost."""

    def __init__(self, manager: Any, vhost: str) -> None:
        self.manager = manager
        self.vhost = vhost

    def queue(self, name: str) -> dict | None:
        """The queue ``name`` as the API reports it, or None if it doesn't exist."""
        from requests import HTTPError

        try:
            return self.manager.get_queue(self.vhost, name)
        except HTTPError as exc:  # rabbit_manager is Nameko's Client: 404 raises
            if exc.response is not None and exc.response.status_code == 404:
                return None
            raise

    def queue_names(self) -> set[str]:
        """Names of every queue of the vhost."""
        return {queue["name"] for queue in self.manager.get_queues(self.vhost)}

    def bindings(self, queue_name: str) -> list[tuple[str, str]]:
        """``(exchange, routing_key)`` bindings of a queue, default exchange left out."""
        return sorted(
            (binding["source"], binding["routing_key"])
            for binding in self.manager.get_queue_bindings(self.vhost, queue_name)
            if binding["source"]
        )

    def exchange(self, name: str) -> dict | None:
        """The exchange ``name``, or None if it doesn't exist."""
        for exchange in self.manager.get_exchanges(self.vhost):
            if exchange["name"] == name:
                return exchange
        return None

    def peek(self, queue_name: str, count: int = 10) -> list[dict]:
        """Up to ``count`` ready messages of a queue, left on the queue.

        Each has ``payload``, ``payload_encoding`` and ``properties``
        (headers, delivery_mode, priority, expiration, content_type, ...).
        """
        url = f"{self.manager.base_url}/api/queues/{_quote(self.vhost)}/{_quote(queue_name)}/get"
        response = self.manager.session.post(
            url, json={"count": count, "ackmode": "ack_requeue_true", "encoding": "auto"},
            timeout=10)
        response.raise_for_status()
        return response.json()

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 12.0) -> Any:
        """Poll ``predicate`` until truthy (statistics lag up to 5 s behind)."""
        return self.manager.wait_for(predicate, timeout=timeout, interval=0.25)


def _quote(segment: str) -> str:
    from urllib.parse import quote

    return quote(segment, safe="")
