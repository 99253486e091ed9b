"""The backdoor ``nameko_like run --backdoor-port`` serves.

A Python prompt inside the running process, one per connection, built on
eventlet's backdoor console. Imported only after eventlet has monkey-patched
the standard library.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from typing import Any, NamedTuple

from nameko_like._eventlet import eventlet
from nameko_like.exceptions import CommandError

# After the line above, which imports eventlet itself with its notice filtered.
from eventlet import backdoor as eventlet_backdoor  # isort: skip

_log = logging.getLogger(__name__)

#: Set to ``1`` to let the backdoor listen on a non-loopback address.
ALLOW_REMOTE_ENV = "NAMEKO_LIKE_BACKDOOR_ALLOW_REMOTE"


class _SocketStream:
    """Reads and writes a connection through separate buffers.

    eventlet's console is normally handed one ``"rw"`` text file; such a
    file drops its read-ahead whenever it is written to, so lines that
    arrive together (piped input, a pasted block) would be lost after the
    first one.
    """

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        self._reader = conn.makefile("r")
        self._writer = conn.makefile("w")

    def readline(self, *args: int) -> str:
        """The next line the client sent ('' at its end)."""
        return self._reader.readline(*args)

    def write(self, text: str) -> int:
        """Send ``text`` (buffered until :meth:`flush`)."""
        return self._writer.write(text)

    def flush(self) -> None:
        """Send what was written."""
        self._writer.flush()

    def fileno(self) -> int:
        """The connection's descriptor (``input()`` asks, to rule out a terminal)."""
        return self._conn.fileno()

    def close(self) -> None:
        """Close both buffers and the connection."""
        for stream in (self._reader, self._writer, self._conn):
            try:
                stream.close()
            except OSError:
                pass  # the client may have gone first


# eventlet ships no type information: its console class is Any to mypy.
class _Console(eventlet_backdoor.SocketConsole):  # type: ignore[misc]
    """eventlet's console, closing its connection and logging instead of printing."""

    def __init__(self, stream: _SocketStream, address: tuple[Any, ...],
                 namespace: dict[str, Any]) -> None:
        super().__init__(stream, address, namespace)
        self._stream = stream

    def finalize(self) -> None:
        """Called by eventlet when the console has ended."""
        self.desc = None
        self._stream.close()
        _log.info("backdoor connection from %s:%s closed", *self.hostport[:2])


def _refuse_exit(*args: object) -> None:
    raise RuntimeError("exit() here would stop the services, not the backdoor; "
                       "leave the backdoor with Ctrl-D")


class Backdoor(NamedTuple):
    """A backdoor being served: its greenthread and the address it really listens on."""

    thread: Any  # eventlet's GreenThread (eventlet ships no types)
    address: tuple[str, int]


def _is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback one."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False  # eventlet.listen will say what is wrong with it
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0]).partition("%")[0]).is_loopback for info in infos)


def start_backdoor(address: tuple[str, int], namespace: dict[str, Any]) -> Backdoor:
    """Listen on ``address`` and serve a console per connection.

    ``namespace`` is what the consoles see (plus an ``exit``/``quit`` that
    refuse: they would end the whole process).

    Raises:
        CommandError: the address cannot be bound, or is not a loopback
            address and :data:`ALLOW_REMOTE_ENV` is not set.
    """
    host, port = address
    if not _is_loopback(host):
        if os.environ.get(ALLOW_REMOTE_ENV) != "1":
            raise CommandError(
                f"refusing to open the backdoor on {host}:{port}: not a loopback address, "
                f"and whoever reaches it gets a Python prompt inside the services. "
                f"Use 127.0.0.1 (reach it from elsewhere with `ssh -L`), or set "
                f"{ALLOW_REMOTE_ENV}=1 to expose it anyway")
        _log.warning("the backdoor listens on %s:%s, beyond this machine (%s=1)",
                     host, port, ALLOW_REMOTE_ENV)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = eventlet.listen((host, port), family=family)
    except OSError as exc:
        raise CommandError(f"cannot open the backdoor on {host}:{port}: "
                           f"{exc.strerror or exc}") from None
    bound_host, bound_port = sock.getsockname()[:2]
    _log.info("backdoor listening on %s:%s", bound_host, bound_port)
    namespace = {**namespace, "exit": _refuse_exit, "quit": _refuse_exit}
    return Backdoor(eventlet.spawn(_serve, sock, namespace), (bound_host, bound_port))


def _serve(sock: Any, namespace: dict[str, Any]) -> None:
    hub = eventlet.hubs.get_hub()
    try:
        while True:
            conn, addr = sock.accept()
            _log.info("backdoor connection from %s:%s", addr[0], addr[1])
            # A copy each, so one session's variables do not leak into the next.
            console = _Console(_SocketStream(conn), addr, dict(namespace))
            # The console is a greenlet that swaps sys.stdin/stdout/stderr
            # for the connection while it runs; the hub starts it.
            hub.schedule_call_global(0, console.switch)
    finally:
        sock.close()
