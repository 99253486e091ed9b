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
``runner_factory`` and ``predictable_call_ids`` (defined in
:mod:`nameko_like.testing.container_fixtures`), ``rabbit_manager``,
``rabbit_config``, ``rabbit_ssl_config``, ``amqp_uri`` and
``get_message_from_queue`` (:mod:`nameko_like.testing.rabbit_fixtures`), all
imported here so that pytest registers them with this plugin; and the HTTP
fixtures of :mod:`nameko_like.testing.web_fixtures` (``web_config``,
``web_session``, ``websocket``). The RabbitMQ and HTTP fixtures need the
``testing`` extra (``pip install 'nameko_like[testing]'``); without it they
fail naming it, and the rest of the plugin works.

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

import importlib.util
import logging
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from nameko_like.constants import DEFAULT_AMQP_URI
from nameko_like.testing import DEFAULT_MANAGEMENT_URL, patching
from nameko_like.testing.container_fixtures import (
    container_factory,
    empty_config,
    leaks_module,
    mock_container,
    predictable_call_ids,
    runner_factory,
)
from nameko_like.testing.rabbit_fixtures import (
    TESTING_EXTRA_HINT,
    amqp_uri,
    get_message_from_queue,
    rabbit_config,
    rabbit_manager,
    rabbit_ssl_config,
)

_log = logging.getLogger(__name__)

# The fixtures are imported for pytest to find them here, on the plugin.
__all__ = [
    "TESTING_EXTRA_HINT",
    "WEB_FIXTURES",
    "amqp_uri",
    "container_factory",
    "empty_config",
    "get_message_from_queue",
    "mock_container",
    "nameko_like_leak_check",
    "predictable_call_ids",
    "pytest_addoption",
    "pytest_collection_finish",
    "pytest_configure",
    "pytest_load_initial_conftests",
    "rabbit_config",
    "rabbit_manager",
    "rabbit_ssl_config",
    "runner_factory",
]

#: The HTTP fixtures' module; it needs ``requests`` (the ``testing`` extra).
WEB_FIXTURES = "nameko_like.testing.web_fixtures"


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
    patching.choose_hub(early_config)
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
    leaks = leaks_module()
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
