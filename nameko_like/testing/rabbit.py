"""A small client for RabbitMQ's management HTTP API, for tests.

Tests use it to make an isolated vhost, inspect the queues, bindings and
consumers a service declared, publish raw messages and cut connections.

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
from urllib.parse import quote, urlsplit, urlunsplit

import requests

logger = logging.getLogger(__name__)

#: Where the management API listens with RabbitMQ's default credentials.
DEFAULT_MANAGEMENT_URL = "http://guest:guest@localhost:15672"

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


class RabbitManager:
    """Client for the RabbitMQ management API at ``base_url``.

    Credentials may be given in the URL (``http://user:pass@host:15672``).
    Failed requests raise :class:`requests.HTTPError` whose message includes
    the API's answer.
    """

    wait_for = staticmethod(wait_for)

    def __init__(self, base_url: str = DEFAULT_MANAGEMENT_URL,
                 timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        self.session = requests.Session()
        if parts.username is not None:
            self.session.auth = (parts.username, parts.password or "")
        netloc = parts.hostname or ""
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
        self.base_url = urlunsplit(
            (parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<RabbitManager {self.base_url}>"

    def close(self) -> None:
        """Release the HTTP connections."""
        self.session.close()

    def _request(self, method: str, *segments: str,
                 payload: Any = None) -> requests.Response:
        path = "/".join(_segment(segment) for segment in segments)
        url = f"{self.base_url}/api/{path}"
        response = self.session.request(method, url, json=payload,
                                        timeout=self.timeout)
        if not response.ok:
            raise requests.HTTPError(
                f"{method} {url} failed: {response.status_code} "
                f"{response.text.strip()}", response=response)
        return response

    def _get(self, *segments: str) -> Any:
        return self._request("GET", *segments).json()

    def _get_or_none(self, *segments: str) -> Any:
        try:
            return self._get(*segments)
        except requests.HTTPError as exc:
            if exc.response is not None and exc.response.status_code == 404:
                return None
            raise

    # --- broker -------------------------------------------------------------

    def overview(self) -> dict[str, Any]:
        """Return the broker overview (version, totals, listeners)."""
        return self._get("overview")

    # --- vhosts -------------------------------------------------------------

    def create_vhost(self, name: str) -> None:
        """Create the vhost ``name`` (no error if it exists)."""
        self._request("PUT", "vhosts", name)

    def delete_vhost(self, name: str) -> None:
        """Delete the vhost ``name`` with everything in it; a missing vhost
        is not an error, so cleanup can always call this."""
        try:
            self._request("DELETE", "vhosts", name)
        except requests.HTTPError as exc:
            if exc.response is None or exc.response.status_code != 404:
                raise

    def set_vhost_permissions(self, vhost: str, username: str,
                              configure: str = ".*", write: str = ".*",
                              read: str = ".*") -> None:
        """Grant ``username`` access to ``vhost`` (full access by default)."""
        self._request("PUT", "permissions", vhost, username, payload={
            "configure": configure, "write": write, "read": read})

    # --- queues and exchanges -----------------------------------------------

    def get_queues(self, vhost: str) -> list[dict[str, Any]]:
        """Return every queue of ``vhost``."""
        return self._get("queues", vhost)

    def get_queue(self, vhost: str, name: str) -> dict[str, Any] | None:
        """Return the queue ``name`` of ``vhost``, or None if it does not
        exist."""
        return self._get_or_none("queues", vhost, name)

    def get_queue_bindings(self, vhost: str,
                           name: str) -> list[dict[str, Any]]:
        """Return the bindings of queue ``name``, including the implicit one
        to the default exchange."""
        return self._get("queues", vhost, name, "bindings")

    def get_exchanges(self, vhost: str) -> list[dict[str, Any]]:
        """Return every exchange of ``vhost``, the built-in ones included."""
        return self._get("exchanges", vhost)

    # --- connections ----------------------------------------------------------

    def get_connections(self) -> list[dict[str, Any]]:
        """Return every open client connection, on all vhosts."""
        return self._get("connections")

    def delete_connection(self, name: str) -> None:
        """Force-close the connection called ``name`` (as in
        :meth:`get_connections`)."""
        self._request("DELETE", "connections", name)

    # --- publishing -----------------------------------------------------------

    def publish(self, vhost: str, exchange: str, routing_key: str,
                payload: str | bytes | dict | list,
                properties: dict[str, Any] | None = None) -> bool:
        """Publish one message and return whether the broker routed it.

        ``exchange`` ``""`` is the default exchange. A str payload is sent as
        is; bytes are sent base64 encoded (so any bytes survive); a dict or
        list is JSON-encoded with ``content_type`` ``application/json``
        unless ``properties`` sets one.
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
        response = self._request(
            "POST", "exchanges", vhost, exchange or "amq.default", "publish",
            payload={"properties": properties, "routing_key": routing_key,
                     "payload": body, "payload_encoding": encoding})
        return bool(response.json().get("routed"))
