"""ServiceRunner and run_services: several containers driven as one."""

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.containers import ServiceContainer
from nameko_like.runners import run_services
from nameko_like.testing.services import dummy
from nameko_like.testing.utils import get_container


class Alpha:
    name = "alpha"

    @dummy
    def method(self):
        pass


class Beta:
    name = "beta"

    @dummy
    def method(self):
        pass


class RecordingContainer(ServiceContainer):
    """Records what the runner asked of it."""

    calls = []

    def start(self):
        self.calls.append(("start", self.service_name))
        super().start()

    def stop(self):
        self.calls.append(("stop", self.service_name))
        super().stop()

    def kill(self, exc_info=None):
        self.calls.append(("kill", self.service_name))
        super().kill(exc_info)


RECORDING = f"{RecordingContainer.__module__}.RecordingContainer"


def test_one_container_per_service_in_order(runner_factory, empty_config):
    runner = runner_factory(empty_config, Alpha, Beta)

    assert runner.service_names == ["alpha", "beta"]
    assert [container.service_cls for container in runner.containers] == [Alpha, Beta]
    assert get_container(runner, Beta).service_name == "beta"


def test_a_service_name_may_be_added_once(runner_factory, empty_config):
    runner = runner_factory(empty_config, Alpha)

    class AlsoAlpha:
        name = "alpha"

    with pytest.raises(ValueError, match="different service class named 'alpha'"):
        runner.add_service(AlsoAlpha)


def test_adding_the_same_class_again_is_a_no_op(runner_factory, empty_config):
    runner = runner_factory(empty_config, Alpha)
    container = get_container(runner, Alpha)

    runner.add_service(Alpha)

    assert runner.service_names == ["alpha"]
    assert runner.containers == [container]


def test_runner_uses_service_container_cls(runner_factory, empty_config):
    runner = runner_factory(dict(empty_config, SERVICE_CONTAINER_CLS=RECORDING), Alpha, Beta)

    assert {type(container) for container in runner.containers} == {RecordingContainer}


def test_start_stop_and_kill_reach_every_container(runner_factory, empty_config):
    RecordingContainer.calls.clear()
    config = dict(empty_config, SERVICE_CONTAINER_CLS=RECORDING)
    runner = runner_factory(config, Alpha, Beta)

    runner.start()
    assert all(container.running for container in runner.containers)
    runner.stop()
    assert not any(container.running for container in runner.containers)

    other = runner_factory(config, Alpha)
    other.start()
    other.kill()

    assert sorted(RecordingContainer.calls) == sorted([
        ("start", "alpha"), ("start", "beta"), ("stop", "alpha"), ("stop", "beta"),
        ("start", "alpha"), ("kill", "alpha"),
    ])


def test_wait_returns_once_every_container_stopped(runner_factory, empty_config):
    runner = runner_factory(empty_config, Alpha, Beta)
    runner.start()
    waiting = eventlet.spawn(runner.wait)
    eventlet.sleep(0.01)
    assert not waiting.dead

    runner.stop()

    with eventlet.Timeout(1):
        assert waiting.wait() is None


def test_wait_raises_when_a_container_dies_with_an_error(runner_factory, empty_config):
    runner = runner_factory(empty_config, Alpha, Beta)
    runner.start()

    def crash():
        raise RuntimeError("beta crashed")

    get_container(runner, Beta).spawn_managed_thread(crash)

    with eventlet.Timeout(1), pytest.raises(RuntimeError, match="beta crashed"):
        runner.wait()
    # The caller decides about the others.
    assert get_container(runner, Alpha).running


def test_run_services_stops_on_exit(empty_config):
    with run_services(empty_config, Alpha, Beta) as runner:
        assert runner.service_names == ["alpha", "beta"]
        assert all(container.running for container in runner.containers)
    assert not any(container.running for container in runner.containers)


def test_run_services_can_kill_on_exit(empty_config):
    RecordingContainer.calls.clear()
    config = dict(empty_config, SERVICE_CONTAINER_CLS=RECORDING)

    with pytest.raises(KeyError), run_services(config, Alpha, kill_on_exit=True):
        raise KeyError("body failed")

    assert RecordingContainer.calls == [("start", "alpha"), ("kill", "alpha")]
