"""The pytest plugin's RabbitMQ fixtures.

``rabbit_manager``, ``rabbit_config``, ``rabbit_ssl_config``, ``amqp_uri``
and ``get_message_from_queue``, as Nameko's plugin has them. They are
registered by :mod:`nameko_like.testing.pytest`, which imports them into its
namespace. They read the plugin's ``--rabbit-api-uri``, ``--amqp-uri``,
``--amqp-ssl-port`` and ``--amqp-ssl-option`` options.

The management API client needs ``requests`` (the ``testing`` extra); it is
imported when a test asks for a fixture, and its absence fails that test
naming the extra. Nothing here imports eventlet, kombu or nameko_like's core
at load time (see :mod:`nameko_like.testing.patching`).
"""

from __future__ import annotations

import importlib
import logging
import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pytest

from nameko_like.constants import AMQP_URI_CONFIG_KEY

if TYPE_CHECKING:
    from kombu.message import Message

    from nameko_like.testing.rabbit import Client

_log = logging.getLogger(__name__)

__all__ = [
    "TESTING_EXTRA_HINT",
    "GetMessageFromQueue",
    "amqp_uri",
    "get_message_from_queue",
    "rabbit_config",
    "rabbit_manager",
    "rabbit_ssl_config",
]

#: What to install for the fixtures that need more than nameko_like.
TESTING_EXTRA_HINT = "pip install 'nameko_like[testing]'"


class GetMessageFromQueue(Protocol):
    """The ``get_message_from_queue`` fixture's value."""

    def __call__(self, queue_name: str, ack: bool = True, block: bool = True,
                 timeout: float = 1, accept: list[str] | None = None) -> Message:
        """Take one message from ``queue_name`` (see the fixture)."""


def _rabbit_module() -> ModuleType:
    try:
        rabbit = importlib.import_module("nameko_like.testing.rabbit")
    except ImportError as exc:
        pytest.fail(f"the RabbitMQ fixtures need {exc.name}: {TESTING_EXTRA_HINT}", pytrace=False)
    return rabbit


@pytest.fixture(scope="session")
def rabbit_manager(request: pytest.FixtureRequest) -> Iterator[Client]:
    """A :class:`nameko_like.testing.rabbit.Client` for the management API at
    ``--rabbit-api-uri``.

    Fails at once, naming the fix, if the API does not answer.
    """
    rabbit = _rabbit_module()
    try:
        client: Client = rabbit.Client(request.config.getoption("RABBIT_API_URI"))
    except ConnectionError as exc:
        pytest.fail(f"{exc} (or pass --rabbit-api-uri)", pytrace=False)
    yield client
    client.close()


@pytest.fixture
def rabbit_config(
    request: pytest.FixtureRequest, rabbit_manager: Client
) -> Iterator[dict[str, Any]]:
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
def rabbit_ssl_config(
    request: pytest.FixtureRequest, rabbit_config: dict[str, Any]
) -> dict[str, Any]:
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
def amqp_uri(rabbit_config: dict[str, Any]) -> str:
    """The AMQP URI of this test's vhost."""
    uri: str = rabbit_config[AMQP_URI_CONFIG_KEY]
    return uri


@pytest.fixture
def get_message_from_queue(amqp_uri: str) -> GetMessageFromQueue:
    """``get(queue_name, ack=True, block=True, timeout=1, accept=None)``: take
    one message from a queue of this test's vhost, as Nameko's fixture does.

    The queue is declared as kombu's ``SimpleQueue`` declares it. The message
    is acknowledged, or with ``ack=False`` put back; ``accept`` lists the
    content types to decode. Raises ``queue.Empty`` if none arrives in
    ``timeout`` seconds (with ``block``).
    """
    from kombu import Connection

    def get(queue_name: str, ack: bool = True, block: bool = True, timeout: float = 1,
            accept: list[str] | None = None) -> Message:
        with Connection(amqp_uri) as connection:
            queue = connection.SimpleQueue(queue_name)
            if accept is not None:
                # SimpleQueue takes no `accept`; its consumer does.
                queue.consumer.accept = accept
            try:
                message: Message = queue.get(block=block, timeout=timeout)
                if ack:
                    message.ack()
                else:
                    message.requeue()
            finally:
                queue.close()
        return message

    return get
