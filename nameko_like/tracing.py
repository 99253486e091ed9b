"""Distributed tracing with OpenTelemetry: the switch.

With the ``TRACING`` config key set (or after :func:`enable`), nameko_like
makes OpenTelemetry spans for the workers it runs (RPC, events,
``@consume``, HTTP, websocket RPC, timers), for the messages it publishes
(RPC requests, events, ``Publisher``) and for the HTTP requests it serves,
and carries W3C trace context (``traceparent``, ``tracestate``, and
``baggage``) in plain AMQP headers, as opentelemetry-instrumentation-aio-pika
and FastStream do. Spans go to whatever ``TracerProvider`` the program set
up with the OpenTelemetry SDK; without one, trace context still passes
through unchanged.

It needs ``opentelemetry-api`` (``pip install 'nameko_like[tracing]'``).
This module imports nothing of it until tracing is switched on: a process
without tracing pays nothing. Tracing is per process: it is on once any
container (or standalone proxy) with ``TRACING`` set has started.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Final

from nameko_like import instrumentation
from nameko_like.constants import TRACING_CONFIG_KEY
from nameko_like.exceptions import ConfigurationError

_log = logging.getLogger(__name__)

__all__ = ["TRACE_CONTEXT_HEADERS", "disable", "enable", "enabled", "setup"]

#: Message headers that carry trace context, never context data: W3C Trace
#: Context and W3C Baggage. A worker sends the *current* span's context on,
#: never the one it received.
TRACE_CONTEXT_HEADERS: Final = frozenset({"traceparent", "tracestate", "baggage"})

_observer: instrumentation.Observer | None = None
_lock = threading.Lock()


def enable() -> None:
    """Switch tracing on for this process (doing it again does nothing).

    Raises ``ConfigurationError`` naming the extra to install when
    opentelemetry-api is missing.
    """
    global _observer
    with _lock:
        if _observer is not None:
            return
        try:
            import opentelemetry.trace  # noqa: F401 - only to tell whether it is installed
        except ImportError:
            raise ConfigurationError(
                f"{TRACING_CONFIG_KEY} is on but opentelemetry-api is not installed: "
                "pip install 'nameko_like[tracing]' (or set TRACING: false)"
            ) from None
        # imported here: it imports opentelemetry, which only tracing needs
        from nameko_like.tracing_observer import TracingObserver

        _observer = TracingObserver()
        instrumentation.register(_observer)
        _log.debug("tracing enabled")


def disable() -> None:
    """Switch tracing off: no more spans, trace headers are no longer added."""
    global _observer
    with _lock:
        if _observer is not None:
            instrumentation.unregister(_observer)
            _observer = None


def enabled() -> bool:
    """Whether tracing is on in this process."""
    return _observer is not None


def setup(config: dict[str, Any]) -> None:
    """Switch tracing on if ``config`` sets ``TRACING``; otherwise leave it as it is."""
    if config.get(TRACING_CONFIG_KEY) and _observer is None:
        enable()
