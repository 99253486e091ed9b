"""Clients for RabbitMQ's management HTTP API, for tests.

:class:`Client` is Nameko's ``nameko.testing.rabbit.Client`` (same methods,
arguments and return values): the ``rabbit_manager`` fixture is one. Tests
use it to make an isolated vhost, inspect the queues, bindings and
connections a service declared, publish raw messages and cut connections.
Failed requests raise :class:`requests.HTTPError` (re-exported here as
:data:`HTTPError`, as Nameko does), whose message includes the API's answer.

:class:`RabbitManager` is the same client with friendlier answers for
nameko_like's own tests: ``get_queue`` gives None for a missing queue,
``publish`` returns whether the message was routed, and deleting a missing
vhost is not an error.

The management API refreshes its statistics (message and consumer counts)
only every few seconds, so assertions on them should poll with
:func:`wait_for` rather than read once.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import requests
from requests import HTTPError

from nameko_like.testing import DEFAULT_MANAGEMENT_URL

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_MANAGEMENT_URL", "Client", "HTTPError", "RabbitManager", "wait_for"]


_T = TypeVar("_T")


def wait_for(predicate: Callable[[], _T], timeout: float = 10.0,
             interval: float = 0.2) -> _T:
    """Call ``predicate`` until it returns a truthy value, and return that.

    Raises:
        TimeoutError: ``predicate`` stayed falsy for ``timeout`` seconds; the
            message holds its last result.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"condition not met within {timeout}s (last result: "
                f"{result!r})")
        time.sleep(interval)


def _segment(value: str) -> str:
    # Vhost "/" and names such as connection names ("a:1 -> b:2") must reach
    # the API as single, fully escaped path segments.
    return quote(value, safe="")


def _status(exc: HTTPError) -> int | None:
    return exc.response.status_code if exc.response is not None else None


class Client:
    """Client for the RabbitMQ management API at ``uri``, as Nameko's.

    Credentials may be given in the URI (``http://user:pass@host:15672``,
    percent-encoded). Like Nameko's, the constructor checks that the API
    answers (pass ``verify=False`` to skip that) and fails naming the fix.
    Methods return the API's decoded JSON answer, or None when it has none.
    """

    wait_for = staticmethod(wait_for)

    def __init__(self, uri: str = DEFAULT_MANAGEMENT_URL, timeout: float = 10.0,
                 verify: bool = True) -> None:
        parts = urlsplit(uri)
        self.session = requests.Session()
        if parts.username is not None:
            self.session.auth = (unquote(parts.username), unquote(parts.password or ""))
        netloc = parts.hostname or ""
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
        #: The API's root URL, without credentials and without ``/api``.
        self.base_url = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.timeout = timeout
        if verify:
            self._verify_api_connection()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url}>"

    def close(self) -> None:
        """Release the HTTP connections."""
        self.session.close()

    def _request(self, method: str, *segments: str, payload: Any = None) -> Any:
        """Send one request; return the decoded answer, or None if it is empty."""
        path = "/".join(_segment(segment) for segment in segments)
        url = f"{self.base_url}/api/{path}"
        try:
            response = self.session.request(method, url, json=payload, timeout=self.timeout)
        except requests.ConnectionError as exc:
            raise ConnectionError(
                f"cannot reach the RabbitMQ management API at {url}: is the "
                "rabbitmq_management plugin enabled (`rabbitmq-plugins enable "
                "rabbitmq_management`) and the URI (--rabbit-api-uri) right?") from exc
        if not response.ok:
            raise HTTPError(
                f"{method} {url} failed: {response.status_code} {response.text.strip()}",
                response=response)
        return response.json() if response.content else None

    def _request_object(self, method: str, *segments: str,
                        payload: Any = None) -> dict[str, Any]:
        """:meth:`_request` for an endpoint that answers a JSON object."""
        answer = self._request(method, *segments, payload=payload)
        if not isinstance(answer, dict):
            raise TypeError(f"{method} /api/{'/'.join(segments)}: expected a JSON object "
                            f"from the management API, got {answer!r}")
        return answer

    def _request_list(self, method: str, *segments: str,
                      payload: Any = None) -> list[dict[str, Any]]:
        """:meth:`_request` for an endpoint that answers a JSON list of objects."""
        answer = self._request(method, *segments, payload=payload)
        if not isinstance(answer, list):
            raise TypeError(f"{method} /api/{'/'.join(segments)}: expected a JSON list "
                            f"from the management API, got {answer!r}")
        return answer

    def _verify_api_connection(self) -> None:
        self.overview()

    # --- broker and vhosts -------------------------------------------------

    def overview(self) -> dict[str, Any]:
        """Return the broker overview (version, totals, listeners)."""
        return self._request_object("GET", "overview")

    def get_all_vhosts(self) -> list[dict[str, Any]]:
        """Return every vhost of the broker."""
        return self._request_list("GET", "vhosts")

    def create_vhost(self, vhost: str) -> None:
        """Create the vhost ``vhost`` (no error if it exists)."""
        self._request("PUT", "vhosts", vhost)

    def delete_vhost(self, vhost: str) -> None:
        """Delete the vhost ``vhost`` with everything in it.

        Raises:
            HTTPError: with status 404 if there is no such vhost.
        """
        self._request("DELETE", "vhosts", vhost)

    def set_vhost_permissions(self, vhost: str, username: str, configure: str = ".*",
                              read: str = ".*", write: str = ".*") -> None:
        """Grant ``username`` access to ``vhost`` (full access by default).

        The permission arguments come in Nameko's order: configure, read, write.
        """
        self._request("PUT", "permissions", vhost, username,
                      payload={"configure": configure, "read": read, "write": write})

    # --- queues, exchanges and bindings -----------------------------------------

    def get_queues(self, vhost: str) -> list[dict[str, Any]]:
        """Return every queue of ``vhost``."""
        return self._request_list("GET", "queues", vhost)

    def get_queue(self, vhost: str, name: str) -> dict[str, Any]:
        """Return the queue ``name`` of ``vhost``.

        Raises:
            HTTPError: with status 404 if there is no such queue.
        """
        return self._request_object("GET", "queues", vhost, name)

    def create_queue(self, vhost: str, name: str, **properties: Any) -> None:
        """Declare the queue ``name``; ``properties`` as the API takes them
        (``durable``, ``auto_delete``, ``arguments``)."""
        self._request("PUT", "queues", vhost, name, payload=properties)

    def get_queue_bindings(self, vhost: str, name: str) -> list[dict[str, Any]]:
        """Return the bindings of queue ``name``, including the implicit one
        to the default exchange."""
        return self._request_list("GET", "queues", vhost, name, "bindings")

    def create_queue_binding(self, vhost: str, exchange: str, queue: str,
                             routing_key: str) -> None:
        """Bind ``queue`` to ``exchange`` with ``routing_key``."""
        self._request("POST", "bindings", vhost, "e", exchange, "q", queue,
                      payload={"routing_key": routing_key})

    def get_exchanges(self, vhost: str) -> list[dict[str, Any]]:
        """Return every exchange of ``vhost``, the built-in ones included."""
        return self._request_list("GET", "exchanges", vhost)

    # --- connections ----------------------------------------------------------

    def get_connections(self) -> list[dict[str, Any]]:
        """Return every open client connection, on all vhosts."""
        return self._request_list("GET", "connections")

    def delete_connection(self, name: str) -> None:
        """Force-close the connection called ``name`` (as in
        :meth:`get_connections`)."""
        self._request("DELETE", "connections", name)

    # --- messages -------------------------------------------------------------

    def publish(self, vhost: str, name: str, routing_key: str,
                payload: str | bytes | dict[str, Any] | list[Any],
                properties: dict[str, Any] | None = None) -> dict[str, Any]:
        """Publish one message to exchange ``name``; return the API's answer,
        ``{"routed": <bool>}``.

        ``name`` ``""`` is the default exchange. A str payload is sent as is
        (as Nameko does); bytes are sent base64 encoded, so any bytes
        survive; a dict or list is JSON-encoded with ``content_type``
        ``application/json`` unless ``properties`` sets one.
        """
        properties = dict(properties or {})
        encoding = "string"
        if isinstance(payload, bytes):
            body = base64.b64encode(payload).decode("ascii")
            encoding = "base64"
        elif isinstance(payload, str):
            body = payload
        else:
            body = json.dumps(payload)
            properties.setdefault("content_type", "application/json")
        # The API names the default exchange "amq.default".
        return self._request_object(
            "POST", "exchanges", vhost, name or "amq.default", "publish",
            payload={"properties": properties, "routing_key": routing_key,
                     "payload": body, "payload_encoding": encoding})

    def get_messages(self, vhost: str, name: str, count: int = 1,
                     requeue: bool = False) -> list[dict[str, Any]]:
        """Take up to ``count`` messages from queue ``name``; with ``requeue``
        they stay on the queue.

        Each has ``payload`` (text, or base64 when not UTF-8: see
        ``payload_encoding``), ``properties``, ``routing_key`` and
        ``redelivered``.
        """
        # RabbitMQ 3.7+ wants "ackmode"; older brokers read "requeue".
        ackmode = "ack_requeue_true" if requeue else "ack_requeue_false"
        return self._request_list("POST", "queues", vhost, name, "get", payload={
            "count": count, "encoding": "auto", "requeue": requeue, "ackmode": ackmode})


class RabbitManager(Client):
    """:class:`Client` with the answers nameko_like's own tests expect.

    It does not check the API when made; ``get_queue`` returns None for a
    missing queue; ``publish`` returns whether the broker routed the
    message; ``delete_vhost`` of a missing vhost does nothing, so cleanup
    can always call it.
    """

    def __init__(self, base_url: str = DEFAULT_MANAGEMENT_URL, timeout: float = 10.0) -> None:
        super().__init__(base_url, timeout=timeout, verify=False)

    # Narrows Client's answers on purpose (None for a missing queue, a bool
    # for publish): this class is for nameko_like's own tests, not a drop-in.
    def get_queue(self, vhost: str, name: str) -> dict[str, Any] | None:  # type: ignore[override]
        """Return the queue ``name`` of ``vhost``, or None if it does not exist."""
        try:
            return super().get_queue(vhost, name)
        except HTTPError as exc:
            if _status(exc) == 404:
                return None
            raise

    def delete_vhost(self, vhost: str) -> None:
        """Delete the vhost ``vhost`` with everything in it; a missing vhost
        is not an error."""
        try:
            super().delete_vhost(vhost)
        except HTTPError as exc:
            if _status(exc) != 404:
                raise

    def publish(self, vhost: str, name: str, routing_key: str,  # type: ignore[override]
                payload: str | bytes | dict[str, Any] | list[Any],
                properties: dict[str, Any] | None = None) -> bool:
        """Publish one message (see :meth:`Client.publish`); return whether
        the broker routed it."""
        answer = super().publish(vhost, name, routing_key, payload, properties)
        return bool(answer.get("routed"))
