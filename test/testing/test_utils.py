"""nameko_like.testing.utils."""

import socket
import time
from unittest.mock import Mock, call

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.extensions import DependencyProvider, Entrypoint
from nameko_like.testing.services import dummy, entrypoint_hook
from nameko_like.testing.utils import (
    AnyInstanceOf,
    DummyProvider,
    assert_stops_raising,
    find_free_port,
    get_container,
    get_extension,
    wait_for_call,
    wait_for_worker_idle,
)
from nameko_like.testing.waiting import WaitTimeout
from nameko_like.worker_context import WorkerContext


class Service:
    name = "service"
    value = DummyProvider("fixed")

    @dummy
    def read(self):
        return self.value

    @dummy
    def nap(self, seconds):
        eventlet.sleep(seconds)


def test_get_container(runner_factory, empty_config):
    class Other:
        name = "other"

    runner = runner_factory(empty_config, Service)

    assert get_container(runner, Service).service_cls is Service
    assert get_container(runner, Other) is None


def test_get_extension_by_type_and_attributes(container_factory):
    container = container_factory(Service)

    assert get_extension(container, DependencyProvider).attr_name == "value"
    assert get_extension(container, Entrypoint, method_name="nap").method_name == "nap"
    assert get_extension(container, Entrypoint, method_name="missing") is None
    assert get_extension(container, Entrypoint, no_such_attribute=1) is None


def test_dummy_provider_injects_its_value(container_factory):
    container = container_factory(Service)
    container.start()

    with entrypoint_hook(container, "read") as read:
        assert read() == "fixed"


def test_wait_for_call_waits_on_entering_and_yields_the_mock():
    handler = Mock()
    eventlet.spawn_after(0.02, handler, "event")

    with wait_for_call(1, handler) as called:
        called.assert_called_once_with("event")


def test_wait_for_call_counts_an_earlier_call():
    handler = Mock()
    handler("already")

    started = time.monotonic()
    with wait_for_call(1, handler):
        pass
    assert time.monotonic() - started < 0.5


def test_wait_for_call_times_out():
    with pytest.raises(WaitTimeout):
        with wait_for_call(0.05, Mock()):
            pass


def test_assert_stops_raising_retries_until_fn_passes():
    attempts = []

    def ready():
        attempts.append(1)
        assert len(attempts) >= 3, "not yet"
        return "ready"

    assert assert_stops_raising(ready, interval=0.01) == "ready"
    assert len(attempts) == 3


def test_assert_stops_raising_gives_up_with_the_last_error():
    def never():
        raise AssertionError("still broken")

    with pytest.raises(WaitTimeout, match="still broken") as info:
        assert_stops_raising(never, timeout=0.05, interval=0.01)
    assert isinstance(info.value.__cause__, AssertionError)


def test_assert_stops_raising_only_retries_the_given_type():
    def wrong():
        raise KeyError("not retried")

    with pytest.raises(KeyError):
        assert_stops_raising(wrong, exception_type=AssertionError, timeout=1)


def test_find_free_port_can_be_bound():
    port = find_free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_wait_for_worker_idle(container_factory):
    container = container_factory(Service)
    container.start()
    (entrypoint,) = [ep for ep in container.entrypoints if ep.method_name == "nap"]
    container.spawn_worker(entrypoint, (0.1,), {})

    wait_for_worker_idle(container, timeout=2)

    assert container.free_worker_slots == container.max_workers
    container.spawn_worker(entrypoint, (5,), {})
    with pytest.raises(WaitTimeout, match="still running"):
        wait_for_worker_idle(container, timeout=0.05)


def test_any_instance_of():
    handler = Mock()
    handler(3, "text")

    assert handler.call_args == call(AnyInstanceOf(int), AnyInstanceOf(str))
    assert AnyInstanceOf(int) != "3"
    assert (AnyInstanceOf(int) != 3) is False  # __ne__ itself, not just __eq__
    assert repr(AnyInstanceOf(WorkerContext)) == "<AnyInstanceOf WorkerContext>"


def test_web_config_port_is_below_the_ephemeral_range_and_can_be_bound(web_config_port):
    from nameko_like.testing import web_fixtures

    assert web_fixtures.LISTEN_PORT_LOW <= web_config_port < web_fixtures._ephemeral_low()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", web_config_port))


def test_unassigned_port_skips_a_port_in_use(monkeypatch):
    from nameko_like.testing import web_fixtures

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        busy = taken.getsockname()[1]
        taken.listen()
        picks = iter([busy, busy, *range(12345, 12445)])
        monkeypatch.setattr(web_fixtures.random, "randrange", lambda low, high: next(picks))
        port = web_fixtures.unassigned_port()
    assert port != busy and 12345 <= port < 12445
