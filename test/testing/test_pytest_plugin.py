"""The pytest plugin, exercised through pytester sessions of its own."""

import importlib.metadata
import time

import pytest
import requests

from nameko_like.testing.utils import find_free_port

pytest_plugins = ["pytester"]

PLUGIN = "nameko_like.testing.pytest"


def plugin_args():
    """``-p`` for the plugin unless its entry point already loads it."""
    for entry_point in importlib.metadata.entry_points(group="pytest11"):
        if entry_point.value == PLUGIN:
            return []
    return ["-p", PLUGIN]


@pytest.fixture
def run(pytester):
    """Write ``source`` as a test module and run pytest on it in-process."""

    def run(source, *args):
        pytester.makepyfile(source)
        return pytester.runpytest(*plugin_args(), "-p", "no:cacheprovider", *args)

    return run


def test_options_and_empty_config(run):
    result = run(
        """
        def test_defaults(request, empty_config):
            # Nameko's destinations, and the names nameko_like used before
            for name in ("RABBIT_API_URI", "RABBIT_CTL_URI"):
                assert request.config.getoption(name) == "http://api.example:15672"
            for name in ("RABBIT_AMQP_URI", "AMQP_URI"):
                assert request.config.getoption(name) == "memory://"
            assert request.config.getoption("AMQP_SSL_PORT") == 5671
            assert empty_config == {}
        """,
        "--amqp-uri", "memory://",
        "--rabbit-ctl-uri", "http://api.example:15672",
    )
    result.assert_outcomes(passed=1)


def test_amqp_uri_default(run):
    result = run(
        """
        def test_default(request, empty_config):
            assert request.config.getoption("AMQP_URI") == "amqp://guest:guest@localhost:5672/"
            assert request.config.getoption("RABBIT_API_URI") == (
                "http://guest:guest@localhost:15672")
            assert empty_config == {}
        """
    )
    result.assert_outcomes(passed=1)


def test_factories_kill_what_they_made(run):
    result = run(
        """
        from nameko_like.timer import timer

        made = []

        class Service:
            name = "service"

            @timer(interval=60)
            def tick(self):
                pass

        def test_make(container_factory, runner_factory, empty_config):
            container = container_factory(Service)
            assert container.config == empty_config and container.config is not empty_config
            runner = runner_factory(empty_config, Service)
            container.start()
            runner.start()
            made.extend([container, *runner.containers])

        def test_all_killed():
            assert len(made) == 2
            assert not any(container.running for container in made)
        """
    )
    result.assert_outcomes(passed=2)


def test_factories_outlive_the_vhost_they_use(run, pytester):
    # A stand-in rabbit_config records when the vhost comes and goes.
    pytester.makeconftest(
        """
        import pytest
        from nameko_like.containers import ServiceContainer

        events = []

        class RecordingContainer(ServiceContainer):
            def kill(self, exc_info=None):
                events.append("container killed")
                super().kill(exc_info)

        @pytest.fixture
        def rabbit_config():
            events.append("vhost created")
            yield {"SERVICE_CONTAINER_CLS": "conftest.RecordingContainer"}
            events.append("vhost deleted")
        """
    )
    result = run(
        """
        from conftest import events

        class Service:
            name = "service"

        def test_uses_both(container_factory, rabbit_config):
            container_factory(Service, rabbit_config)

        def test_order():
            assert events == ["vhost created", "container killed", "vhost deleted"]
        """
    )
    result.assert_outcomes(passed=2)


def test_mock_container(run):
    result = run(
        """
        import pytest

        def test_shape(mock_container, empty_config):
            assert mock_container.config is empty_config
            assert empty_config == {"serializer": "json"}
            assert mock_container.serializer == "json"
            assert mock_container.accept == ["json"]
            assert mock_container.service_name == "service"
            assert mock_container.shared_extensions == {}
            mock_container.spawn_worker("entrypoint", (), {}, context_data=None)
            with pytest.raises(TypeError):
                mock_container.spawn_worker(no_such_argument=1)
        """
    )
    result.assert_outcomes(passed=1)


def test_predictable_call_ids(run):
    result = run(
        """
        from nameko_like.testing.services import dummy, entrypoint_hook

        class Service:
            name = "service"

            @dummy
            def method(self):
                pass

        def test_ids(container_factory, predictable_call_ids):
            container = container_factory(Service)
            container.start()
            (entrypoint,) = container.entrypoints
            ids = [container.spawn_worker(entrypoint, (), {}).call_id for _ in range(2)]
            assert ids == ["service.method.0", "service.method.1"]
        """
    )
    result.assert_outcomes(passed=1)


LEAKY = """
import pytest
from nameko_like._eventlet import eventlet
from nameko_like.containers import ServiceContainer
from nameko_like.timer import timer

leaked = []

class Service:
    name = "leaky"

    @timer(interval=60)
    def tick(self):
        pass

def sleepy_function():
    eventlet.sleep(30)

def test_leaves_a_container():
    container = ServiceContainer(Service, {})
    container.start()
    leaked.append(container)

def test_leaves_a_greenthread():
    leaked.append(eventlet.spawn(sleepy_function))

def test_finishing_within_the_grace_period_is_fine():
    eventlet.spawn(eventlet.sleep, 0.1)

@pytest.mark.allow_leaks
def test_allowed_to_leak():
    leaked.append(eventlet.spawn(eventlet.sleep, 0.5))

def test_leaks_were_killed():
    container, thread, allowed = leaked
    assert not container.running
    assert thread.dead
    assert not allowed.dead
"""


def test_leak_check_fails_tests_that_leave_things_running(run):
    result = run(LEAKY, "--strict-markers")

    result.assert_outcomes(passed=5, errors=2)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_leaves_a_container*",
        "*container <ServiceContainer leaky at * still running*",
        "*ERROR at teardown of test_leaves_a_greenthread*",
        "*greenthread still running: sleepy_function (*/test_leak_check_*.py:16)",
        "*mark the test @pytest.mark.allow_leaks*",
    ])


def test_unreachable_rabbit_api_fails_fast_with_the_fix(run):
    api = f"http://guest:secret@127.0.0.1:{find_free_port()}"
    started = time.monotonic()

    result = run(
        """
        def test_one(rabbit_config):
            pass

        def test_two(amqp_uri):
            pass
        """,
        "--rabbit-api-uri", api,
    )

    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([
        "*cannot reach the RabbitMQ management API at http://127.0.0.1:*"
        "`rabbitmq-plugins enable rabbitmq_management`*--rabbit-api-uri*",
    ])
    assert "secret" not in result.stdout.str()
    assert time.monotonic() - started < 10


@pytest.mark.integration
def test_rabbit_config_makes_a_fresh_vhost_per_test(run, pytester, rabbit_manager):
    result = run(
        """
        import pathlib

        def test_first(rabbit_config, amqp_uri, rabbit_manager):
            vhost = rabbit_config["vhost"]
            assert amqp_uri == rabbit_config["AMQP_URI"]
            assert amqp_uri == f"amqp://guest:guest@localhost:5672/{vhost}"
            assert rabbit_manager.get_queues(vhost) == []
            pathlib.Path("first").write_text(vhost)

        def test_second(rabbit_config):
            pathlib.Path("second").write_text(rabbit_config["vhost"])
        """
    )
    result.assert_outcomes(passed=2)
    vhosts = {(pytester.path / name).read_text() for name in ("first", "second")}
    assert len(vhosts) == 2
    for vhost in vhosts:
        with pytest.raises(requests.HTTPError, match="404"):
            rabbit_manager.get_queues(vhost)


def test_eventlet_hub_ini_option_chooses_the_asyncio_hub(pytester, monkeypatch):
    # in a process of its own: this one's hub is made already
    monkeypatch.delenv("EVENTLET_HUB", raising=False)
    pytester.makeini("[pytest]\nnameko_like_eventlet_hub = asyncio\n")
    pytester.makepyfile("""
        from nameko_like.asyncio_support import is_asyncio_hub
        from nameko_like.testing.patching import is_patched

        def test_hub():
            assert is_asyncio_hub()
            assert is_patched()
    """)
    result = pytester.runpytest_subprocess(*plugin_args(), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
