"""Reading trace context from AMQP headers and WSGI environs.

Extraction and injection are the OpenTelemetry propagator's (whatever
``opentelemetry.propagate`` is set up with: W3C Trace Context and Baggage
by default); this module only tells it where the fields are. Writing uses
the propagator's default setter: plain headers named as the propagator
names them (``traceparent``), as other AMQP instrumentations write them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter

from nameko_like.constants import HEADER_PREFIX

_PREFIX = HEADER_PREFIX + "."


def _as_strings(value: Any) -> list[str] | None:
    if value is None:
        return None
    if type(value) is str:  # the usual case, first
        return [value]
    if isinstance(value, (bytes, bytearray)):
        # py-amqp hands over header values published as AMQP byte strings
        return [bytes(value).decode("latin-1")]
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return [str(value)]


class AmqpHeadersGetter(Getter[Mapping[str, Any]]):
    """Finds ``<field>`` in message headers, else ``nameko.<field>``.

    The plain header is what opentelemetry-instrumentation-aio-pika,
    FastStream and nameko_like write; ``nameko.traceparent`` is what
    opentelemetry-instrumentation-nameko writes (as context data).
    """

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        """The values of header ``key`` (or ``nameko.<key>``), if present."""
        value = carrier.get(key)
        if value is None:
            value = carrier.get(_PREFIX + key)
        return _as_strings(value)

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        """Header names, ``nameko.`` prefixes removed."""
        return [key[len(_PREFIX):] if key.startswith(_PREFIX) else key for key in carrier]


class WsgiEnvironGetter(Getter[Mapping[str, Any]]):
    """Finds HTTP request headers in a WSGI environ (``HTTP_TRACEPARENT``)."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        """The value of request header ``key``, if present."""
        return _as_strings(carrier.get("HTTP_" + key.upper().replace("-", "_")))

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        """Request header names, lower case."""
        return [key[5:].lower().replace("_", "-") for key in carrier if key.startswith("HTTP_")]


AMQP_HEADERS = AmqpHeadersGetter()
WSGI_ENVIRON = WsgiEnvironGetter()


def extract_from_headers(headers: Mapping[str, Any] | None) -> Context:
    """The trace context a message's headers carry (an empty one if none)."""
    return propagate.extract(headers or {}, getter=AMQP_HEADERS, context=Context())


def extract_from_environ(environ: Mapping[str, Any]) -> Context:
    """The trace context an HTTP request's headers carry (an empty one if none)."""
    return propagate.extract(environ, getter=WSGI_ENVIRON, context=Context())


def inject_into_headers(headers: dict[str, Any], context: Context) -> None:
    """Write ``context``'s trace context into message ``headers``."""
    propagate.inject(headers, context=context)
