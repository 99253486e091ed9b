"""Structured logs: a JSON formatter whose records carry the call being served.

Every record emitted inside a worker (by the service, its dependencies or
the framework) gets ``service``, ``entrypoint``, ``call_id`` and
``call_id_stack``, and, when OpenTelemetry is importable and a span is
current, ``trace_id`` and ``span_id``: nobody passes anything. Use it from a
``LOGGING`` dictConfig::

    formatters:
      json:
        (): nameko_like.logging_json.JsonFormatter

or with ``LOG_FORMAT: json`` in the config of ``nameko_like run``.

Which worker is current is kept in a context variable (each eventlet
greenthread has its own) by an instrumentation observer, registered when the
first :class:`JsonFormatter` is made: a process logging plain text pays
nothing.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

from nameko_like import instrumentation

if TYPE_CHECKING:
    from nameko_like.worker_context import WorkerContext

_otel_trace: Any
try:
    from opentelemetry import trace as _otel_trace
except ImportError:  # opentelemetry is optional: no trace ids then
    _otel_trace = None

__all__ = ["JsonFormatter", "configure_json_logging", "current_worker", "worker_fields"]

_worker: contextvars.ContextVar[WorkerContext | None] = contextvars.ContextVar(
    "nameko_like_log_worker", default=None)

#: Attributes every LogRecord has: not copied as extra fields.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}


class _WorkerTracker(instrumentation.Observer):
    """Keeps the current worker in a context variable while it runs."""

    def worker_started(self, worker_ctx: WorkerContext) -> None:
        """Make ``worker_ctx`` current in its greenthread."""
        _worker.set(worker_ctx)

    def worker_finished(self, worker_ctx: WorkerContext, outcome: str, duration: float) -> None:
        """Nothing current any more in this greenthread."""
        _worker.set(None)


_tracker = _WorkerTracker()


def current_worker() -> WorkerContext | None:
    """The worker running in this greenthread, while JSON logging is on."""
    return _worker.get()


def _trace_fields() -> dict[str, str]:
    if _otel_trace is None:
        return {}
    context = _otel_trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


def worker_fields() -> dict[str, Any]:
    """The fields describing the current call (empty outside a worker and a span)."""
    fields: dict[str, Any] = {}
    worker_ctx = _worker.get()
    if worker_ctx is not None:
        fields["service"] = worker_ctx.container.service_name
        fields["entrypoint"] = worker_ctx.entrypoint.method_name
        fields["call_id"] = worker_ctx.call_id
        fields["call_id_stack"] = worker_ctx.call_id_stack
    fields.update(_trace_fields())
    return fields


class JsonFormatter(logging.Formatter):
    """Formats each record as one line of JSON.

    Keys: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, the
    call's fields (see :func:`worker_fields`), ``exception`` (the formatted
    traceback) when there is one, and whatever was passed as ``extra=``.
    Values JSON cannot hold are written as their ``str()``.

    Args:
        fmt, datefmt, style: accepted for dictConfig compatibility, unused.
    """

    def __init__(self, fmt: str | None = None, datefmt: str | None = None,
                 style: Any = "%", **kwargs: Any) -> None:
        super().__init__(fmt, datefmt, style, **kwargs)
        instrumentation.register(_tracker)

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON object on one line."""
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
            .isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(worker_fields())
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in entry:
                entry[key] = value
        return json.dumps(entry, default=str)


def configure_json_logging(level: int = logging.INFO) -> None:
    """Log ``level`` and above to stderr as JSON (what ``LOG_FORMAT: json`` does)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
