"""Host name resolution for ``nameko_like run`` that leaves the hub running.

eventlet normally resolves names with its green DNS resolver, built on
dnspython. Importing it is most of eventlet's import time and about 7 MB of
a service's resident memory. With ``EVENTLET_NO_GREENDNS=yes`` eventlet
skips it and hands out the standard library's ``getaddrinfo``, which blocks
the whole process (every greenthread) while the operating system looks a
name up.

So the commands that monkey-patch (``run``, ``test``) import eventlet with
its green DNS off unless the environment says otherwise, and
:func:`install` replaces the blocking look-ups with ones that run the
operating system's resolver on one of eventlet's native threads
(``eventlet.tpool``): the calling greenthread waits, the others keep
running. Names then resolve exactly as every other program on the host
resolves them (``/etc/hosts``, ``nsswitch.conf``, the system's DNS
settings). ``EVENTLET_NO_GREENDNS=no`` in the environment keeps eventlet's
green resolver instead.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

#: eventlet reads this when it is first imported; ``yes`` skips its green DNS.
NO_GREENDNS_ENV = "EVENTLET_NO_GREENDNS"
#: The resolver functions eventlet's green socket module provides.
RESOLVER_NAMES = ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "getnameinfo")

_F = TypeVar("_F", bound=Callable[..., Any])

#: Set in a forked child: eventlet's thread pool has no fork handling (it
#: believes its threads exist, but they stayed in the parent), so a child
#: resolves in place rather than queue look-ups no thread will answer.
_forked = False


def _after_fork_in_child() -> None:
    global _forked
    _forked = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def import_eventlet() -> Any:
    """Import eventlet, with its green DNS resolver off unless the environment chose.

    The environment decides when it sets :data:`NO_GREENDNS_ENV` (to
    anything), and nothing changes when eventlet was imported already. The
    variable is set only while eventlet imports, so programs the service
    starts see the environment it was given.
    """
    if NO_GREENDNS_ENV in os.environ or "eventlet" in sys.modules:
        from nameko_like._eventlet import eventlet

        return eventlet
    os.environ[NO_GREENDNS_ENV] = "yes"
    try:
        from nameko_like._eventlet import eventlet
    finally:
        del os.environ[NO_GREENDNS_ENV]
    return eventlet


def _is_ip_literal(host: object) -> bool:
    """Whether ``host`` needs no look-up (an address the resolver only parses)."""
    import socket

    if isinstance(host, bytes):
        try:
            host = host.decode("ascii")
        except UnicodeDecodeError:
            return False
    if not isinstance(host, str):
        return False
    for family, text in ((socket.AF_INET, host), (socket.AF_INET6, host.partition("%")[0])):
        try:
            socket.inet_pton(family, text)
        except OSError:
            continue
        return True
    return False


def _needs_no_lookup(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether a call of resolver ``name`` returns without asking anyone."""
    import socket

    if name == "getnameinfo":
        flags = args[1] if len(args) > 1 else kwargs.get("flags", 0)
        return bool(flags & socket.NI_NUMERICHOST)
    host = args[0] if args else kwargs.get("host")
    if name == "getaddrinfo":
        flags = args[5] if len(args) > 5 else kwargs.get("flags", 0)
        if host is None or flags & socket.AI_NUMERICHOST:
            return True
    return _is_ip_literal(host)


def off_hub(name: str, blocking: _F) -> _F:
    """``blocking`` (the resolver function ``name``) run on a native thread.

    Called from a greenthread of the hub's thread, the calling greenthread
    waits on ``eventlet.tpool`` while the hub runs the others. Called with
    an IP address (nothing to look up), from any other native thread (which
    may block), from the hub's own greenlet (a timer callback, which cannot
    wait on the hub) or in a forked child (whose thread pool stayed in the
    parent), it calls ``blocking`` directly.
    """
    from eventlet import greenthread, hubs, patcher, tpool

    get_ident = patcher.original("_thread").get_ident
    hub_thread = get_ident()

    @functools.wraps(blocking)
    def resolve(*args: Any, **kwargs: Any) -> Any:
        if (_forked or get_ident() != hub_thread or _needs_no_lookup(name, args, kwargs)
                or greenthread.getcurrent() is hubs.get_hub().greenlet):
            return blocking(*args, **kwargs)
        return tpool.execute(blocking, *args, **kwargs)

    resolve.__wrapped_blocking__ = blocking  # type: ignore[attr-defined]
    return resolve  # type: ignore[return-value]


def install() -> bool:
    """Make eventlet's blocking resolver functions wait off the hub; whether it did.

    Does nothing (returns False) when eventlet uses its green DNS resolver
    (it does not block) or the functions were replaced already. Call it
    before ``eventlet.monkey_patch()``, which copies them into the
    standard library's ``socket`` module, or after it: then they are
    replaced there as well.
    """
    import socket

    from eventlet import patcher
    from eventlet.green import socket as green_socket

    installed = False
    for name in RESOLVER_NAMES:
        current = getattr(green_socket, name)
        if hasattr(current, "__wrapped_blocking__"):
            continue  # installed already
        # Only the standard library's own (blocking) functions are replaced
        # (getaddrinfo is socket's, the others _socket's): greendns's, or
        # one a program installed, is left alone.
        if getattr(current, "__module__", None) not in ("socket", "_socket"):
            continue
        replacement = off_hub(name, current)
        setattr(green_socket, name, replacement)
        if patcher.is_monkey_patched("socket") and getattr(socket, name) is current:
            setattr(socket, name, replacement)
        installed = True
    return installed
