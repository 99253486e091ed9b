"""Eventlet green sockets, bypassed where that is safe: the OS socket under them.

An eventlet ``GreenSocket`` wraps a non-blocking OS socket; each of its
calls is several Python calls deep before the system call, and it makes a
time-out exception per call that has to wait. Hot paths (the AMQP writer,
the HTTP engine's reads and writes) try the OS socket first and leave to
the green socket only what has to wait.
"""

from __future__ import annotations

import _socket  # the C socket type: socket.socket is green once monkey-patched
import ssl
from typing import Any

from nameko_like._eventlet import eventlet  # noqa: F401 - silences eventlet's import warning first

from eventlet.greenio import GreenSocket

__all__ = ["raw_socket", "send_all"]


def raw_socket(sock: Any) -> Any:
    """The non-blocking OS socket under an eventlet green socket, or None.

    None for anything else (a TLS socket must go through its own layers: a
    partial TLS read or write raises errors only eventlet's green socket
    handles), so callers fall back to the green socket's own calls.
    """
    raw = sock.fd if isinstance(sock, GreenSocket) else None
    # (an ssl.SSLSocket is a _socket.socket too)
    if isinstance(raw, _socket.socket) and not isinstance(raw, ssl.SSLSocket) \
            and raw.gettimeout() == 0:
        return raw
    return None


def send_all(raw: Any, sock: Any, data: bytes | memoryview) -> None:
    """Send all of ``data``: on ``raw`` (from :func:`raw_socket`, or None) what
    it takes at once, the rest through the green ``sock``, which waits for
    the socket within its time-out as it always did."""
    if raw is not None:
        try:
            sent = raw.send(data)
        except BlockingIOError:
            sent = 0
        if sent == len(data):
            return
        data = memoryview(data)[sent:]
    sock.sendall(data)

