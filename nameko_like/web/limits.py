"""Which client connections the web server takes, and how much of a request.

:class:`RequestLimits` bounds each request (size, time, head limits).

:class:`ConnectionLimits` is the web server's book of open connections:

* at most ``max_connections`` HTTP connections at once; when all are taken,
  the longest-idle one (waiting for a request, not in one) is closed to make
  room, so idle clients never keep a new one waiting;
* websockets counted apart, at most ``max_websockets``: a connection that
  upgrades leaves the HTTP count, so idle websockets never crowd out HTTP
  requests;
* at most ``max_per_client`` connections of either kind from one client
  address; more are closed on arrival.
"""

from __future__ import annotations

import logging
import socket
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nameko_like._eventlet import eventlet
from nameko_like.constants import (
    DEFAULT_WEB_IDLE_TIMEOUT,
    DEFAULT_WEB_MAX_CONNECTIONS,
    DEFAULT_WEB_MAX_CONNECTIONS_PER_CLIENT,
    DEFAULT_WEB_MAX_CONTENT_LENGTH,
    DEFAULT_WEB_MAX_REQUEST_CHUNKS,
    DEFAULT_WEB_MAX_WEBSOCKETS,
    DEFAULT_WEB_SOCKET_TIMEOUT,
    WEB_IDLE_TIMEOUT_CONFIG_KEY,
    WEB_MAX_CONNECTIONS_CONFIG_KEY,
    WEB_MAX_CONNECTIONS_PER_CLIENT_CONFIG_KEY,
    WEB_MAX_CONTENT_LENGTH_CONFIG_KEY,
    WEB_MAX_REQUEST_CHUNKS_CONFIG_KEY,
    WEB_MAX_WEBSOCKETS_CONFIG_KEY,
    WEB_SOCKET_TIMEOUT_CONFIG_KEY,
)

import eventlet.wsgi  # after _eventlet silenced its import warning

_log = logging.getLogger(__name__)


def client_host(address: Any) -> str:
    """The host part of a peer address (the whole of it for a Unix socket)."""
    if isinstance(address, tuple) and address:
        return str(address[0])
    return str(address)


class ConnectionLimits:
    """Admits client connections within the configured limits.

    Args:
        max_connections: HTTP connections served at once.
        max_websockets: websockets open at once.
        max_per_client: connections from one client address (0: no cap).

    Each admitted connection has eventlet's state list
    ``[address, socket, STATE_*]`` (see :attr:`connections`).
    """

    def __init__(self, max_connections: int, max_websockets: int, max_per_client: int) -> None:
        self.max_connections = max_connections
        self.max_websockets = max_websockets
        self.max_per_client = max_per_client
        #: ``{socket: [address, socket, state]}`` of every open connection,
        #: oldest first.
        self.connections: dict[socket.socket, list[Any]] = {}
        #: The sockets of the connections that became websockets.
        self.websockets: set[socket.socket] = set()
        self._http_slots: Any = eventlet.semaphore.Semaphore(max_connections)
        self._per_client: Counter[str] = Counter()

    @classmethod
    def from_config(cls, config: Mapping[str, Any], max_workers: int) -> ConnectionLimits:
        """The limits a service's config sets."""
        # Idle and slow connections cost a greenthread each, not a worker,
        # and must never crowd the workers out.
        max_connections = config.get(WEB_MAX_CONNECTIONS_CONFIG_KEY) or max(
            DEFAULT_WEB_MAX_CONNECTIONS, 4 * max_workers
        )
        return cls(
            max_connections,
            config.get(WEB_MAX_WEBSOCKETS_CONFIG_KEY, DEFAULT_WEB_MAX_WEBSOCKETS),
            config.get(WEB_MAX_CONNECTIONS_PER_CLIENT_CONFIG_KEY,
                       DEFAULT_WEB_MAX_CONNECTIONS_PER_CLIENT),
        )

    def admit(self, client: socket.socket, address: Any) -> list[Any] | None:
        """Book a new connection; its state list, or None if it must be closed.

        Waits while every HTTP slot is taken by a connection in a request
        (idle ones are closed to make room first).
        """
        host = client_host(address)
        if self.max_per_client and self._per_client[host] >= self.max_per_client:
            _log.debug("closing a connection from %s: it has %d open already",
                       host, self.max_per_client)
            return None
        if self._http_slots.locked():
            self._reclaim_idle()
        # Connections that were in a request when we looked may be idle now.
        while not self._http_slots.acquire(timeout=0.5):
            self._reclaim_idle()
        self._per_client[host] += 1
        state = [address, client, eventlet.wsgi.STATE_IDLE]
        self.connections[client] = state
        return state

    def upgrade(self, client: socket.socket) -> bool:
        """Count ``client``'s connection as a websocket from now on.

        Returns False (and changes nothing) if ``max_websockets`` are open,
        or if the connection is not one of ours.
        """
        if client not in self.connections or client in self.websockets:
            return False
        if len(self.websockets) >= self.max_websockets:
            return False
        self.websockets.add(client)
        self._http_slots.release()
        return True

    def release(self, state: list[Any]) -> None:
        """Forget a connection that ended (once; later calls do nothing)."""
        client = state[1]
        if self.connections.pop(client, None) is None:
            return
        host = client_host(state[0])
        self._per_client[host] -= 1
        if self._per_client[host] <= 0:
            del self._per_client[host]
        if client in self.websockets:
            self.websockets.discard(client)
        else:
            self._http_slots.release()

    def _reclaim_idle(self) -> None:
        # The oldest connection waiting for a request gives way; shutting
        # it down ends its read, so its greenthread ends and frees the slot.
        for client, state in self.connections.items():
            if state[2] == eventlet.wsgi.STATE_IDLE and client not in self.websockets:
                _log.debug("closing an idle connection from %s to make room",
                           client_host(state[0]))
                state[2] = eventlet.wsgi.STATE_CLOSE
                try:
                    client.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return


@dataclass(frozen=True)
class RequestLimits:
    """How large and how slow one request may be (see :mod:`nameko_like.web.parser`).

    Only the body limit and the time-outs come from the config; the head
    limits are those of common servers and proxies.
    """

    #: Largest request body, in bytes (larger: 413), all chunks counted.
    max_content_length: int = DEFAULT_WEB_MAX_CONTENT_LENGTH
    #: Seconds a client has to send a request head once it began, and the
    #: longest any one read of its body or write of the response may block.
    request_timeout: float = DEFAULT_WEB_SOCKET_TIMEOUT
    #: Seconds a connection may wait for a request to begin.
    idle_timeout: float = DEFAULT_WEB_IDLE_TIMEOUT
    #: Most chunks in a chunked body (more: 413).
    max_chunks: int = DEFAULT_WEB_MAX_REQUEST_CHUNKS
    #: Longest request target, in bytes (longer: 414).
    max_request_line: int = 8192
    #: Longest single header line, in bytes (longer: 431).
    max_header_line: int = 8192
    #: Most header fields in one request, trailers included (more: 431).
    max_header_count: int = 100
    #: Largest request head, in bytes (larger: 431).
    max_head_size: int = 65536
    #: Seconds spent draining a rejected upload so the client reads our answer.
    linger_seconds: float = 2.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RequestLimits:
        """The limits a service's config sets."""
        request_timeout = config.get(WEB_SOCKET_TIMEOUT_CONFIG_KEY, DEFAULT_WEB_SOCKET_TIMEOUT)
        return cls(
            max_content_length=config.get(
                WEB_MAX_CONTENT_LENGTH_CONFIG_KEY, DEFAULT_WEB_MAX_CONTENT_LENGTH),
            request_timeout=request_timeout,
            idle_timeout=config.get(WEB_IDLE_TIMEOUT_CONFIG_KEY, DEFAULT_WEB_IDLE_TIMEOUT),
            max_chunks=config.get(
                WEB_MAX_REQUEST_CHUNKS_CONFIG_KEY, DEFAULT_WEB_MAX_REQUEST_CHUNKS),
        )
