"""A looping reader's ``drain_events``, without py-amqp's layers around each frame.

py-amqp's ``Connection.drain_events`` reads frames until one completes a
method, each through ``blocking_read``: the ``transport`` property twice, a
``having_timeout`` scope (three calls on our
:class:`~nameko_like.amqp.socket_timeouts.ReadTimeout`), the frame read,
then the connection's frame handler. A service's reader greenthreads do that
four times per RPC call (the request's three frames, the reply's confirm).
For a connection tuned by
:func:`~nameko_like.amqp.transport_tuning.tune_connection`,
:func:`method_reader` does the same with the transport's frame reader and
the frame handler looked up once per connection.

py-amqp internals relied on: ``Connection._transport`` and
``Connection._on_inbound_frame``, behind its ``transport`` and
``on_inbound_frame`` properties (which would connect a closed connection
again): the transport, and the frame handler made at connect, which
``blocking_read`` hands each frame to and which returns true once a method
is complete. ``test/amqp/test_frame_pump.py`` fails if they change.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

import amqp

from nameko_like.amqp.transport_tuning import _BufferedReader

__all__ = ["method_reader"]


def method_reader(connection: Any) -> Callable[[], None] | None:
    """A function reading ``connection``'s frames until one method was handled.

    ``connection`` is a kombu connection over py-amqp, tuned and connected;
    None if it is not (read it with ``drain_events`` then). The function
    blocks as ``drain_events(timeout=None)`` does, and raises what it raises.
    """
    raw = getattr(connection, "_connection", None)
    if not isinstance(raw, amqp.Connection):
        return None
    reader = getattr(getattr(raw, "_transport", None), "_read", None)
    on_frame = getattr(raw, "_on_inbound_frame", None)
    if not isinstance(reader, _BufferedReader) or reader.timeouts is None or on_frame is None:
        return None
    timeouts, read_frame = reader.timeouts, reader.read_frame

    def read_method() -> None:
        while True:
            # ReadTimeout's scope (py-amqp's having_timeout(None)), inlined:
            # the read waits without a time-out, writers meanwhile too
            timeouts.wanted = None
            timeouts.active = True
            try:
                frame = read_frame()
            except OSError as exc:
                if exc.errno == errno.EWOULDBLOCK:
                    raise TimeoutError() from None
                raise
            finally:
                timeouts.active = False
            # outside the scope, as in py-amqp's blocking_read: handlers write
            if on_frame(frame):
                return

    return read_method
