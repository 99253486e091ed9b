"""The nameko_like pytest plugin, loaded through the ``pytest11`` entry point.

Options:
    ``--amqp-uri``: the broker tests use (default: local RabbitMQ as guest).
    ``--rabbit-api-uri`` (alias ``--rabbit-ctl-uri``): RabbitMQ's management API.

Fixtures: ``empty_config``, ``mock_container``, ``container_factory``,
``runner_factory``, ``predictable_call_ids``, ``rabbit_manager``,
``rabbit_config``, ``amqp_uri`` (plus the HTTP fixtures of
:mod:`nameko_like.testing.web_fixtures`).

Every test also gets a leak check: it fails if the test leaves a started
ServiceContainer or an eventlet greenthread running. Mark a test
``@pytest.mark.allow_leaks`` to opt out.

Tests run eventlet-monkey-patched, as services do under ``nameko_like run``:
the patch is applied when pytest loads this plugin, before test modules
import anything. Set ``NAMEKO_LIKE_NO_MONKEY_PATCH=1`` to run unpatched.
"""

from __future__ import annotations

import os as _os

from nameko_like._eventlet import eventlet as _eventlet

if _os.environ.get("NAMEKO_LIKE_NO_MONKEY_PATCH") != "1":
    # Must run before test modules import socket/threading users; patching
    # later would leave them with blocking primitives.
    _eventlet.monkey_patch()


import gc
import importlib.util
import itertools
import logging
import os
import time
import uuid
from typing import Any, Callable, Iterator
from unittest.mock import create_autospec, patch
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.constants import AMQP_URI_CONFIG_KEY, DEFAULT_AMQP_URI, DEFAULT_MAX_WORKERS
from nameko_like.containers import ServiceContainer, get_container_cls
from nameko_like.runners import ServiceRunner
from nameko_like.utils import sanitize_url

_log = logging.getLogger(__name__)

_WEB_FIXTURES = "nameko_like.testing.web_fixtures"
# The HTTP fixtures live beside the HTTP code; expose them once that module
# exists. No try/except: a module that exists but fails to import must fail
# the run, not silently drop its fixtures.
pytest_plugins = [_WEB_FIXTURES] if importlib.util.find_spec(_WEB_FIXTURES) else []

#: Seconds the leak check lets greenthreads and containers finish on their own.
LEAK_GRACE_PERIOD = 1.0


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the broker options."""
    group = parser.getgroup("nameko_like")
    group.addoption(
        "--amqp-uri", action="store", dest="AMQP_URI", default=DEFAULT_AMQP_URI,
        help=f"URI of the AMQP broker tests use (default {DEFAULT_AMQP_URI})",
    )
    group.addoption(
        "--rabbit-api-uri", "--rabbit-ctl-uri", action="store", dest="RABBIT_CTL_URI",
        default=None,
        help="URI of RabbitMQ's management API (default: local RabbitMQ, as guest)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the plugin's marker."""
    config.addinivalue_line(
        "markers",
        "allow_leaks: let this test leave service containers or greenthreads running",
    )


# --- configs and containers -------------------------------------------------


@pytest.fixture
def empty_config(request: pytest.FixtureRequest) -> dict:
    """A config naming only the broker given by ``--amqp-uri``."""
    return {AMQP_URI_CONFIG_KEY: request.config.getoption("AMQP_URI")}


@pytest.fixture
def mock_container(empty_config: dict) -> Any:
    """A mock ServiceContainer, for testing extensions on their own.

    It has a real ``config``, ``service_name`` ``"service"``, an empty
    ``shared_extensions`` (so extensions can bind to it) and a
    ``spawn_worker`` mock that checks its arguments.
    """
    container = create_autospec(ServiceContainer, instance=True)
    container.config = empty_config
    container.service_name = "service"
    container.shared_extensions = {}
    container.max_workers = DEFAULT_MAX_WORKERS
    container.started = False
    return container


def _set_up_broker_first(request: pytest.FixtureRequest) -> None:
    # Fixtures are torn down in reverse order of set-up: a test's vhost must
    # be set up before, so deleted after, the containers that use it.
    if "rabbit_config" in request.fixturenames:
        request.getfixturevalue("rabbit_config")


def _kill_all(killables: list[Any]) -> None:
    """Kill every item, even if some raise; then re-raise the first error."""
    errors = []
    for item in killables:
        try:
            item.kill()
        except Exception as exc:  # the rest must still be killed
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture
def container_factory(
    request: pytest.FixtureRequest, empty_config: dict
) -> Iterator[Callable[..., Any]]:
    """``factory(service_cls, config=None)`` making service containers.

    Honours ``SERVICE_CONTAINER_CLS``; without a config the container gets a
    copy of ``empty_config``. Every container made is killed at teardown.
    """
    _set_up_broker_first(request)
    made: list[Any] = []

    def factory(service_cls: type, config: dict | None = None) -> Any:
        config = dict(empty_config) if config is None else config
        container = get_container_cls(config)(service_cls, config)
        made.append(container)
        return container

    yield factory
    _kill_all(made)


@pytest.fixture
def runner_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., ServiceRunner]]:
    """``factory(config, *service_classes)`` making ServiceRunners.

    Every runner made is killed at teardown.
    """
    _set_up_broker_first(request)
    made: list[ServiceRunner] = []

    def factory(config: dict, *service_classes: type) -> ServiceRunner:
        runner = ServiceRunner(config)
        for service_cls in service_classes:
            runner.add_service(service_cls)
        made.append(runner)
        return runner

    yield factory
    _kill_all(made)


@pytest.fixture
def predictable_call_ids() -> Iterator[Any]:
    """Make call ids ``service.method.0``, ``.1``, ... in creation order.

    Yields the mock standing in for the id generator.
    """
    counter = itertools.count()
    with patch("nameko_like.worker_context.new_call_id") as new_id:
        new_id.side_effect = lambda: str(next(counter))
        yield new_id


# --- RabbitMQ ---------------------------------------------------------------


@pytest.fixture(scope="session")
def rabbit_manager(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A RabbitManager for the management API at ``--rabbit-api-uri``.

    Fails at once, naming the fix, if the API does not answer.
    """
    # Imported here: they need the `dev` extras, and the plugin is loaded by
    # every pytest run where nameko_like is installed.
    import requests

    from nameko_like.testing.rabbit import DEFAULT_MANAGEMENT_URL, RabbitManager

    uri = request.config.getoption("RABBIT_CTL_URI") or DEFAULT_MANAGEMENT_URL
    manager = RabbitManager(uri)
    try:
        manager.overview()
    except (requests.ConnectionError, requests.Timeout) as exc:
        manager.close()
        pytest.fail(
            f"RabbitMQ management API not reachable at {sanitize_url(uri)} ({type(exc).__name__}): "
            "run `rabbitmq-plugins enable rabbitmq_management` or pass --rabbit-api-uri",
            pytrace=False,
        )
    yield manager
    manager.close()


@pytest.fixture
def rabbit_config(request: pytest.FixtureRequest, rabbit_manager: Any) -> Iterator[dict]:
    """A config for a fresh vhost, made for this test and deleted after it.

    Keys: ``AMQP_URI`` (``--amqp-uri`` pointing at the vhost), ``username``
    and ``vhost``.
    """
    broker = urlsplit(request.config.getoption("AMQP_URI"))
    username = unquote(broker.username or "guest")
    vhost = f"nameko_like_test_{uuid.uuid4().hex[:12]}"
    rabbit_manager.create_vhost(vhost)
    try:
        rabbit_manager.set_vhost_permissions(vhost, username)
        uri = urlunsplit(broker._replace(path="/" + quote(vhost, safe="")))
        yield {AMQP_URI_CONFIG_KEY: uri, "username": username, "vhost": vhost}
    finally:
        rabbit_manager.delete_vhost(vhost)


@pytest.fixture
def amqp_uri(rabbit_config: dict) -> str:
    """The AMQP URI of this test's vhost."""
    return rabbit_config[AMQP_URI_CONFIG_KEY]


# --- leak check -------------------------------------------------------------


def _with_subclasses(cls: type) -> list[type]:
    """``cls`` and all its subclasses, however deep."""
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_with_subclasses(sub))
    return found


def _running() -> tuple[set[Any], set[Any]]:
    """Return the live greenthreads and the running containers."""
    thread_classes = _with_subclasses(eventlet.greenthread.GreenThread)
    container_classes = _with_subclasses(ServiceContainer)
    threads, containers = set(), set()
    # Instances refer to their class, so one C-level pass over the heap finds
    # them (faster than filtering gc.get_objects() in Python).
    for obj in gc.get_referrers(*thread_classes, *container_classes):
        kind = type(obj)
        if kind in thread_classes and not obj.dead:
            threads.add(obj)
        elif kind in container_classes and obj.running:
            containers.add(obj)
    return threads, containers


_EVENTLET_DIR = os.path.dirname(eventlet.__file__) + os.sep


def _frame_summary(frame: Any) -> str:
    code = frame.f_code
    return f"{getattr(code, 'co_qualname', code.co_name)} ({code.co_filename}:{frame.f_lineno})"


def _describe_thread(thread: Any) -> str:
    """Name the function a greenthread runs and where it waits."""
    frame = thread.gr_frame
    if frame is None:
        return f"{thread!r} (not started)"
    stack = []
    while frame is not None:
        stack.append(frame)
        frame = frame.f_back
    # The outermost frame is GreenThread.main; the one above it is the
    # function the thread was spawned with.
    entry = stack[-2] if len(stack) > 1 else stack[-1]
    # Where it waits, as the caller of eventlet's blocking call sees it.
    waiting = next((f for f in stack if not f.f_code.co_filename.startswith(_EVENTLET_DIR)), entry)
    description = _frame_summary(entry)
    if waiting is not entry:
        description += f", waiting in {_frame_summary(waiting)}"
    return description


def _leaks(before: tuple[set[Any], set[Any]]) -> tuple[set[Any], set[Any]]:
    """What runs now that did not before, after a grace period to finish."""
    deadline = time.monotonic() + LEAK_GRACE_PERIOD
    while True:
        threads, containers = _running()
        threads -= before[0]
        containers -= before[1]
        if not (threads or containers) or time.monotonic() >= deadline:
            return threads, containers
        eventlet.sleep(0.02)


@pytest.fixture(autouse=True)
def nameko_like_leak_check(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves containers or greenthreads running.

    Opt out with ``@pytest.mark.allow_leaks``. What leaked is killed, so
    one leaking test does not make the next ones fail too.
    """
    if request.node.get_closest_marker("allow_leaks"):
        yield
        return
    before = _running()
    yield
    threads, containers = _leaks(before)
    if not (threads or containers):
        return
    lines = [f"container {container!r} still running" for container in containers]
    lines += [f"greenthread still running: {_describe_thread(thread)}" for thread in threads]
    try:
        _kill_all([*containers, *threads])
    except Exception:  # the leak report below matters more
        _log.exception("could not kill what the test left running")
    pytest.fail(
        "test left running:\n  " + "\n  ".join(lines) + "\n"
        "(kill or stop them before the test ends, or mark the test @pytest.mark.allow_leaks)",
        pytrace=False,
    )
