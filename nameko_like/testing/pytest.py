"""The nameko_like pytest plugin, loaded through the ``pytest11`` entry point.

Options (Nameko's names, aliases and ``config.getoption`` names):
    ``--amqp-uri`` / ``--rabbit-amqp-uri`` (``RABBIT_AMQP_URI``, also readable
    as ``AMQP_URI``): the broker tests use; ``rabbit_config`` makes a vhost
    of its own on it for each test.
    ``--rabbit-api-uri`` / ``--rabbit-ctl-uri`` (``RABBIT_API_URI``, also
    ``RABBIT_CTL_URI``): RabbitMQ's management API.
    ``--amqp-ssl-port`` (``AMQP_SSL_PORT``) and ``--amqp-ssl-option KEY=VALUE``
    (``AMQP_SSL_OPTIONS``): for ``rabbit_ssl_config``.
    ``--blocking-detection``: turn on eventlet's hub blocking detection.
    ``--suppress-nameko-eventlet-notification``: no warning when tests import
    nameko_like but the session is not monkey-patched.

Fixtures: ``empty_config``, ``mock_container``, ``container_factory``,
``runner_factory``, ``predictable_call_ids``, ``rabbit_manager``,
``rabbit_config``, ``rabbit_ssl_config``, ``amqp_uri``,
``get_message_from_queue``, and the HTTP fixtures of
:mod:`nameko_like.testing.web_fixtures` (``web_config``, ``web_session``,
``websocket``). The RabbitMQ and HTTP fixtures need the ``testing`` extra
(``pip install 'nameko_like[testing]'``); without it they fail naming it,
and the rest of the plugin works.

Every test also gets a leak check: it fails if the test leaves a started
ServiceContainer or an eventlet greenthread running. Mark a test
``@pytest.mark.allow_leaks`` to opt out.

Monkey patching: the plugin patches (``eventlet.monkey_patch()``) only
sessions that use nameko_like, before any conftest or test module is
imported. The switch is the ini option ``nameko_like_monkey_patch``:
``true``, ``false`` or ``auto`` (the default: patch when the ini file, a
``conftest.py`` on the way to the tests, or a test file named on the command
line mentions ``nameko_like``); ``NAMEKO_LIKE_NO_MONKEY_PATCH=1`` turns it
off whatever the ini says. See :mod:`nameko_like.testing.patching`.

Nothing here imports eventlet or nameko_like's core at load time: pytest
loads this plugin in every run where nameko_like is installed, and those
imports must wait until the patch decision is made.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import logging
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pytest

from nameko_like.constants import (
    AMQP_URI_CONFIG_KEY,
    DEFAULT_AMQP_URI,
    DEFAULT_MAX_WORKERS,
    DEFAULT_SERIALIZER,
    SERIALIZER_CONFIG_KEY,
)
from nameko_like.testing import DEFAULT_MANAGEMENT_URL, patching

_log = logging.getLogger(__name__)

#: The HTTP fixtures' module; it needs ``requests`` (the ``testing`` extra).
WEB_FIXTURES = "nameko_like.testing.web_fixtures"
#: What to install for the fixtures that need more than nameko_like.
TESTING_EXTRA_HINT = "pip install 'nameko_like[testing]'"


# --- options and hooks --------------------------------------------------------


def _ssl_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` (VALUE read as YAML) to ``(key, value)``; ``KEY`` to ``(key, True)``."""
    import yaml

    if "=" not in text:
        return text, True
    key, value = text.strip().split("=", 1)
    return key, yaml.safe_load(value)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the broker options (Nameko's names and destinations) and the patch switch."""
    import ssl

    group = parser.getgroup("nameko_like")
    group.addoption(
        "--amqp-uri", "--rabbit-amqp-uri", action="store", dest="RABBIT_AMQP_URI",
        default=DEFAULT_AMQP_URI,
        help=f"URI of the AMQP broker tests use (default {DEFAULT_AMQP_URI}); "
             "rabbit_config replaces its vhost with a fresh one per test",
    )
    group.addoption(
        "--rabbit-api-uri", "--rabbit-ctl-uri", action="store", dest="RABBIT_API_URI",
        default=DEFAULT_MANAGEMENT_URL,
        help=f"URI of RabbitMQ's management API (default {DEFAULT_MANAGEMENT_URL})",
    )
    group.addoption(
        "--amqp-ssl-port", action="store", dest="AMQP_SSL_PORT", default=5671,
        help="port of the broker's TLS listener, for rabbit_ssl_config (default 5671)",
    )
    group.addoption(
        "--amqp-ssl-option", type=_ssl_option, action="append", dest="AMQP_SSL_OPTIONS",
        metavar="KEY=VALUE",
        default=[("ca_certs", "certs/cacert.pem"), ("certfile", "certs/clientcert.pem"),
                 ("keyfile", "certs/clientkey.pem"), ("cert_reqs", ssl.CERT_REQUIRED)],
        help="a TLS option of rabbit_ssl_config's AMQP_SSL (VALUE is read as YAML); repeatable",
    )
    group.addoption(
        "--blocking-detection", action="store_true", dest="blocking_detection", default=False,
        help="turn on eventlet's hub blocking detection",
    )
    group.addoption(
        "--suppress-nameko-eventlet-notification", action="store_true",
        dest="suppress_eventlet_notification", default=False,
        help="no warning when tests import nameko_like in a session that is not "
             "monkey-patched",
    )
    patching.add_ini_option(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Monkey-patch the session, if it uses nameko_like, before conftests are imported."""
    patching.patch_if_wanted(early_config)


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker, the option aliases and the HTTP fixtures."""
    config.addinivalue_line(
        "markers",
        "allow_leaks: let this test leave service containers or greenthreads running",
    )
    # Names nameko_like used before it took Nameko's; suites may read either.
    config.option.AMQP_URI = config.option.RABBIT_AMQP_URI
    config.option.RABBIT_CTL_URI = config.option.RABBIT_API_URI
    if config.option.blocking_detection:
        from nameko_like._eventlet import eventlet

        eventlet.debug.hub_blocking_detection(True)
    _register_web_fixtures(config)


def _register_web_fixtures(config: pytest.Config) -> None:
    # No try/except around the import: a web_fixtures module that exists but
    # fails to import for another reason must fail the run, not vanish.
    if importlib.util.find_spec("requests") is not None:
        config.pluginmanager.import_plugin(WEB_FIXTURES)
    else:
        config.pluginmanager.register(_WebFixturesNeedRequests(), "nameko_like-web-fixtures")


class _WebFixturesNeedRequests:
    """Stands in for the HTTP fixtures where ``requests`` is not installed,
    so that a test using them fails saying what to install."""

    @staticmethod
    def _fail(name: str) -> None:
        pytest.fail(f"the {name} fixture needs the requests package: {TESTING_EXTRA_HINT}",
                    pytrace=False)

    @pytest.fixture
    def web_config_port(self) -> None:
        """Fails: needs ``requests``."""
        self._fail("web_config_port")

    @pytest.fixture
    def web_config(self) -> None:
        """Fails: needs ``requests``."""
        self._fail("web_config")

    @pytest.fixture
    def web_session(self) -> None:
        """Fails: needs ``requests``."""
        self._fail("web_session")

    @pytest.fixture
    def websocket(self) -> None:
        """Fails: needs ``requests``."""
        self._fail("websocket")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Warn if tests import nameko_like but the session is not monkey-patched."""
    if session.config.option.suppress_eventlet_notification:
        return
    if "nameko_like.containers" not in sys.modules or patching.is_patched():
        return
    reason = session.config.stash.get(patching.REASON_KEY, "")
    warnings.warn(pytest.PytestWarning(
        f"these tests import nameko_like, but the session is not eventlet-monkey-patched "
        f"({reason}): set `{patching.INI_OPTION} = true` in the [pytest] ini section, or call "
        "eventlet.monkey_patch() at the top of your conftest.py. Silence this with "
        "--suppress-nameko-eventlet-notification."), stacklevel=1)


# --- configs and containers -------------------------------------------------


@pytest.fixture
def empty_config() -> dict:
    """An empty config, as in Nameko: ``{}``."""
    return {}


@pytest.fixture
def mock_container(empty_config: dict) -> Any:
    """A mock ServiceContainer, for testing extensions on their own.

    As Nameko's: an autospec of ServiceContainer (``mock`` package's when
    installed) whose ``config`` is ``empty_config`` plus the default
    serializer, with ``serializer`` and ``accept``. Also has
    ``service_name`` ``"service"``, an empty ``shared_extensions`` (so
    extensions can bind to it), ``max_workers`` and ``started`` False.
    """
    from nameko_like.containers import ServiceContainer
    from nameko_like.testing._mock import mock_lib

    # A class spec, as Nameko's: its mock is callable, so a mock.Mock.
    container = mock_lib.create_autospec(ServiceContainer)
    container.config = empty_config
    container.config[SERIALIZER_CONFIG_KEY] = DEFAULT_SERIALIZER
    container.serializer = DEFAULT_SERIALIZER
    container.accept = [DEFAULT_SERIALIZER]
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


@pytest.fixture
def container_factory(
    request: pytest.FixtureRequest, empty_config: dict
) -> Iterator[Callable[..., Any]]:
    """``factory(service_cls, config=None)`` making service containers.

    Honours ``SERVICE_CONTAINER_CLS``; without a config the container gets a
    copy of ``empty_config``. Every container made is killed at teardown.
    """
    from nameko_like.containers import get_container_cls

    kill_all = _leaks_module().kill_all

    _set_up_broker_first(request)
    made: list[Any] = []

    def factory(service_cls: type, config: dict | None = None) -> Any:
        config = dict(empty_config) if config is None else config
        container = get_container_cls(config)(service_cls, config)
        made.append(container)
        return container

    yield factory
    kill_all(made)


@pytest.fixture
def runner_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``factory(config, *service_classes)`` making ServiceRunners.

    Every runner made is killed at teardown.
    """
    from nameko_like.runners import ServiceRunner

    kill_all = _leaks_module().kill_all

    _set_up_broker_first(request)
    made: list[ServiceRunner] = []

    def factory(config: dict, *service_classes: type) -> ServiceRunner:
        runner = ServiceRunner(config)
        for service_cls in service_classes:
            runner.add_service(service_cls)
        made.append(runner)
        return runner

    yield factory
    kill_all(made)


@pytest.fixture
def predictable_call_ids() -> Iterator[Any]:
    """Make call ids ``service.method.0``, ``.1``, ... in creation order, one
    counter for all services, as Nameko's fixture does.

    Yields the (autospec'd) mock standing in for the id generator.
    """
    from nameko_like.testing._mock import mock_lib

    counter = itertools.count()
    with mock_lib.patch("nameko_like.worker_context.new_call_id", autospec=True) as new_id:
        new_id.side_effect = lambda: str(next(counter))
        yield new_id


# --- RabbitMQ ---------------------------------------------------------------


def _leaks_module() -> Any:
    # By full name, not `from nameko_like.testing import leaks`: that form
    # takes the package attribute even after pytester dropped the module
    # from sys.modules, and a stale copy knows a stale ServiceContainer.
    return importlib.import_module("nameko_like.testing.leaks")


def _rabbit_module() -> Any:
    try:
        rabbit = importlib.import_module("nameko_like.testing.rabbit")
    except ImportError as exc:
        pytest.fail(f"the RabbitMQ fixtures need {exc.name}: {TESTING_EXTRA_HINT}", pytrace=False)
    return rabbit


@pytest.fixture(scope="session")
def rabbit_manager(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A :class:`nameko_like.testing.rabbit.Client` for the management API at
    ``--rabbit-api-uri``.

    Fails at once, naming the fix, if the API does not answer.
    """
    rabbit = _rabbit_module()
    try:
        client = rabbit.Client(request.config.getoption("RABBIT_API_URI"))
    except ConnectionError as exc:
        pytest.fail(f"{exc} (or pass --rabbit-api-uri)", pytrace=False)
    yield client
    client.close()


@pytest.fixture
def rabbit_config(request: pytest.FixtureRequest, rabbit_manager: Any) -> Iterator[dict]:
    """A config for a fresh vhost, made for this test and deleted after it.

    Keys, as in Nameko: ``AMQP_URI`` (``--amqp-uri`` pointing at the
    vhost), ``username`` and ``vhost``.
    """
    rabbit = _rabbit_module()
    broker = urlsplit(request.config.getoption("RABBIT_AMQP_URI"))
    username = unquote(broker.username or "guest")
    vhost = f"nameko_like_test_{uuid.uuid4().hex[:12]}"
    rabbit_manager.create_vhost(vhost)
    try:
        rabbit_manager.set_vhost_permissions(vhost, username)
        uri = urlunsplit(broker._replace(path="/" + quote(vhost, safe="")))
        yield {AMQP_URI_CONFIG_KEY: uri, "username": username, "vhost": vhost}
    finally:
        try:
            rabbit_manager.delete_vhost(vhost)
        except rabbit.HTTPError as exc:
            if exc.response is None or exc.response.status_code != 404:
                raise
            # 404: the test deleted the vhost itself


@pytest.fixture
def rabbit_ssl_config(request: pytest.FixtureRequest, rabbit_config: dict) -> dict:
    """``rabbit_config`` through the broker's TLS port (``--amqp-ssl-port``),
    with ``AMQP_SSL`` from the ``--amqp-ssl-option`` options."""
    options = dict(request.config.getoption("AMQP_SSL_OPTIONS") or ()) or True
    uri = urlsplit(rabbit_config[AMQP_URI_CONFIG_KEY])
    host = f"[{uri.hostname}]" if ":" in (uri.hostname or "") else (uri.hostname or "")
    credentials = uri.netloc.rpartition("@")[0]
    netloc = f"{credentials}@" if credentials else ""
    netloc += f"{host}:{request.config.getoption('AMQP_SSL_PORT')}"
    return {
        AMQP_URI_CONFIG_KEY: urlunsplit(uri._replace(netloc=netloc)),
        "username": rabbit_config["username"],
        "vhost": rabbit_config["vhost"],
        "AMQP_SSL": options,
    }


@pytest.fixture
def amqp_uri(rabbit_config: dict) -> str:
    """The AMQP URI of this test's vhost."""
    return rabbit_config[AMQP_URI_CONFIG_KEY]


@pytest.fixture
def get_message_from_queue(amqp_uri: str) -> Callable[..., Any]:
    """``get(queue_name, ack=True, block=True, timeout=1, accept=None)``: take
    one message from a queue of this test's vhost, as Nameko's fixture does.

    The queue is declared as kombu's ``SimpleQueue`` declares it. The message
    is acknowledged, or with ``ack=False`` put back; ``accept`` lists the
    content types to decode. Raises ``queue.Empty`` if none arrives in
    ``timeout`` seconds (with ``block``).
    """
    from kombu import Connection

    def get(queue_name: str, ack: bool = True, block: bool = True, timeout: float = 1,
            accept: list[str] | None = None) -> Any:
        with Connection(amqp_uri) as connection:
            queue = connection.SimpleQueue(queue_name)
            if accept is not None:
                # SimpleQueue takes no `accept`; its consumer does.
                queue.consumer.accept = accept
            try:
                message = queue.get(block=block, timeout=timeout)
                if ack:
                    message.ack()
                else:
                    message.requeue()
            finally:
                queue.close()
        return message

    return get


# --- leak check -------------------------------------------------------------


@pytest.fixture(autouse=True)
def nameko_like_leak_check(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves containers or greenthreads running.

    Opt out with ``@pytest.mark.allow_leaks``. What leaked is killed, so
    one leaking test does not make the next ones fail too. Sessions that
    never import nameko_like are not checked.
    """
    if request.node.get_closest_marker("allow_leaks") or "nameko_like.containers" not in \
            sys.modules:
        yield
        return
    leaks = _leaks_module()
    before = leaks.running()
    yield
    threads, containers = leaks.leaks(before)
    if not (threads or containers):
        return
    lines = [f"container {container!r} still running" for container in containers]
    lines += [f"greenthread still running: {leaks.describe_thread(thread)}" for thread in threads]
    try:
        leaks.kill_all([*containers, *threads])
    except Exception:  # noqa: BLE001 - the leak report below matters more
        _log.exception("could not kill what the test left running")
    pytest.fail(
        "test left running:\n  " + "\n  ".join(lines) + "\n"
        "(kill or stop them before the test ends, or mark the test @pytest.mark.allow_leaks)",
        pytrace=False,
    )
