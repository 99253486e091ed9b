"""Events between the real Nameko 2.x and nameko_like, both ways, on RabbitMQ.

Nameko's side (``nameko_side/``) runs as subprocesses in ``.venv-nameko``;
nameko_like's services run in this process. Each test has a fresh vhost.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from nameko_like.contextdata import Language
from nameko_like.events import EventDispatcher, event_handler
from nameko_like.extensions import DependencyProvider
from nameko_like.rpc import rpc
from nameko_like.standalone.events import event_dispatcher
from nameko_like.standalone.rpc import ClusterRpcProxy
from nameko_like.testing.services import entrypoint_waiter

pytestmark = pytest.mark.integration

#: Seconds to wait for an event to be handled.
EVENT_TIMEOUT = 20

#: Queue of the Nameko handler ``nk_listener.on_ping`` (SERVICE_POOL).
NAMEKO_PING_QUEUE = "evt-nl_source-ping--nk_listener.on_ping"
#: Queue of our handler ``nl_events.on_nameko_ping`` (SERVICE_POOL).
NAMEKO_LIKE_PING_QUEUE = "evt-nk_source-ping--nl_events.on_nameko_ping"


class CallIdStack(DependencyProvider):
    """The worker's call id stack, to check what dispatchers passed on."""

    def get_dependency(self, worker_ctx: Any) -> list:
        return list(worker_ctx.call_id_stack)


class Events:
    """nameko_like handlers of events Nameko dispatches."""

    name = "nl_events"

    language = Language()
    call_id_stack = CallIdStack()

    @event_handler("nk_source", "ping")
    def on_nameko_ping(self, payload: Any) -> dict:
        return {"payload": payload, "language": self.language}

    @event_handler("nk_listener", "announced")
    def on_announced(self, payload: Any) -> dict:
        return {"payload": payload, "language": self.language,
                "call_id_stack": self.call_id_stack}

    @event_handler("nl_source", "ping")
    def on_our_ping(self, payload: Any) -> Any:
        return payload


class Source:
    """A nameko_like service dispatching ``nl_source`` events."""

    name = "nl_source"

    dispatch = EventDispatcher()

    @rpc
    def ping(self, payload: Any) -> None:
        self.dispatch("ping", payload)


def read_records(path: Path, count: int, timeout: float = EVENT_TIMEOUT) -> list[dict]:
    """The first ``count`` events the Nameko listener recorded in ``path``."""
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return [json.loads(line) for line in lines[:count]]
        if time.monotonic() >= deadline:
            pytest.fail(f"the Nameko listener recorded {len(lines)} events, not {count}, "
                        f"within {timeout}s: {lines}")
        time.sleep(0.1)


def start_listener(nameko_run: Any, wait_for_consumers: Any, record_path: Path,
                   **config: Any) -> Any:
    listener = nameko_run("nk_services:Listener", RECORD_PATH=str(record_path), **config)
    wait_for_consumers(NAMEKO_PING_QUEUE, watch=(listener,))
    wait_for_consumers("rpc-nk_listener", watch=(listener,))
    return listener


# --- Nameko -> nameko_like ----------------------------------------------------


def test_nameko_standalone_dispatch_reaches_nameko_like_handler(
        start_container, container_factory, rabbit_config, nameko_client):
    container = container_factory(Events, rabbit_config)
    start_container(container)

    with entrypoint_waiter(container, "on_nameko_ping", timeout=EVENT_TIMEOUT) as handled:
        nameko_client({"dispatch": [{
            "service": "nk_source", "event_type": "ping", "payload": {"n": 1},
            # Nameko's standalone dispatcher takes context only as raw headers
            "headers": {"nameko.language": "nl-NL"},
        }]})

    assert handled.get() == {"payload": {"n": 1}, "language": "nl-NL"}


def test_nameko_service_dispatch_reaches_nameko_like_handler(
        start_container, container_factory, rabbit_config, nameko_run, wait_for_consumers,
        tmp_path):
    container = container_factory(Events, rabbit_config)
    start_container(container)
    start_listener(nameko_run, wait_for_consumers, tmp_path / "events.jsonl")

    proxy = ClusterRpcProxy(rabbit_config, context_data={"language": "pt-BR"},
                            timeout=EVENT_TIMEOUT)
    with entrypoint_waiter(container, "on_announced", timeout=EVENT_TIMEOUT) as handled, \
            proxy as cluster:
        cluster.nk_listener.announce(["news"])

    event = handled.get()
    assert (event["payload"], event["language"]) == (["news"], "pt-BR")
    # Nameko's dispatcher passes its worker's call id stack on
    assert event["call_id_stack"][-2].startswith("nk_listener.announce.")
    assert event["call_id_stack"][-1].startswith("nl_events.on_announced.")


# --- nameko_like -> Nameko ----------------------------------------------------


def test_nameko_like_dispatch_reaches_nameko_handler(
        start_container, container_factory, rabbit_config, nameko_run, wait_for_consumers,
        tmp_path):
    record_path = tmp_path / "events.jsonl"
    start_listener(nameko_run, wait_for_consumers, record_path)
    start_container(container_factory(Source, rabbit_config))

    dispatch = event_dispatcher(rabbit_config, context_data={"language": "es-ES"})
    dispatch("nl_source", "ping", {"from": "standalone"})
    with ClusterRpcProxy(rabbit_config, context_data={"language": "it-IT"},
                         timeout=EVENT_TIMEOUT) as cluster:
        cluster.nl_source.ping({"from": "service"})

    records = read_records(record_path, 2)
    assert sorted(records, key=lambda record: record["language"]) == [
        {"payload": {"from": "standalone"}, "language": "es-ES"},
        {"payload": {"from": "service"}, "language": "it-IT"},
    ]


# --- one event exchange, declared by both -------------------------------------


@pytest.mark.parametrize("auto_delete", [None, True], ids=["default", "auto_delete"])
@pytest.mark.parametrize("first", ["nameko", "nameko_like"])
def test_event_exchange_redeclared_by_the_other_framework(
        first, auto_delete, start_container, container_factory, rabbit_config, nameko_run,
        nameko_client, wait_for_consumers, management, tmp_path):
    """``nl_source.events``, declared by either side, is accepted by the other.

    Each side declares it both as a handler (binding its queue) and as a
    dispatcher; a mismatch in durable or auto_delete would make the broker
    refuse the second declaration with PRECONDITION_FAILED.
    """
    extra = {} if auto_delete is None else {"AUTO_DELETE_EVENT_EXCHANGES": auto_delete}
    config = dict(rabbit_config, **extra)
    record_path = tmp_path / "events.jsonl"
    container = container_factory(Events, config)

    def nameko_side() -> None:
        start_listener(nameko_run, wait_for_consumers, record_path, **extra)
        nameko_client({"config": {"AMQP_URI": rabbit_config["AMQP_URI"], **extra},
                       "dispatch": [{"service": "nl_source", "event_type": "ping",
                                     "payload": "from nameko"}]})

    def nameko_like_side() -> None:
        start_container(container)
        wait_for_consumers("evt-nl_source-ping--nl_events.on_our_ping")
        event_dispatcher(config)("nl_source", "ping", "from nameko_like")

    # each handler gets the events dispatched once its queue was bound
    both = {"from nameko", "from nameko_like"}
    expect_ours = both if first == "nameko_like" else {"from nameko_like"}
    expect_theirs = both if first == "nameko" else {"from nameko"}
    ours: set = set()

    def all_ours_handled(_worker_ctx: Any, result: Any, _exc_info: Any) -> bool:
        ours.add(result)
        return ours >= expect_ours

    with entrypoint_waiter(container, "on_our_ping", timeout=EVENT_TIMEOUT,
                           callback=all_ours_handled):
        if first == "nameko":
            nameko_side()
            nameko_like_side()
        else:
            nameko_like_side()
            nameko_side()

    theirs = {record["payload"] for record in read_records(record_path, len(expect_theirs))}
    assert (ours, theirs) == (expect_ours, expect_theirs)
    exchange = management.exchange("nl_source.events")
    assert (exchange["type"], exchange["durable"]) == ("topic", True)
    assert exchange["auto_delete"] is bool(auto_delete)
