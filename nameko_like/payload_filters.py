"""Payload filters: the ``payload_filter=`` option of ``@event_handler``.

A handler may only care about some of the events of a type: orders over a
certain amount, users of one country. ``payload_filter`` says which, as

* a predicate, ``payload_filter=lambda order: order["total"] > 100``, or
* a dict of expected field values, ``payload_filter={"country": "SE"}``:
  the payload must be a dict holding every key with an equal value.

An event that does not pass is acknowledged and counted (the
``event_filtered`` hook of :mod:`nameko_like.instrumentation`; the
``nameko_like_events_filtered_total`` metric), and its handler never runs.
Filtering happens in the service, after the event was delivered: RabbitMQ
routes events by type only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from nameko_like.exceptions import ConfigurationError

#: What ``payload_filter=`` takes.
PayloadFilter = Callable[[Any], object] | Mapping[str, Any]

_MISSING = object()


class PayloadFilterError(ConfigurationError):
    """A ``payload_filter`` that is neither a predicate nor a dict."""


class FieldsFilter:
    """A predicate: the payload is a dict holding ``expected``'s keys with equal values."""

    def __init__(self, expected: Mapping[str, Any]) -> None:
        self.expected = dict(expected)

    def __call__(self, payload: Any) -> bool:
        """Whether ``payload`` has every expected field value."""
        if not isinstance(payload, Mapping):
            return False
        return all(payload.get(key, _MISSING) == value for key, value in self.expected.items())

    def __repr__(self) -> str:
        return f"FieldsFilter({self.expected!r})"


def as_predicate(payload_filter: PayloadFilter | None) -> Callable[[Any], object] | None:
    """``payload_filter`` as a predicate on the payload (None: no filter)."""
    if payload_filter is None:
        return None
    if isinstance(payload_filter, Mapping):
        if not all(isinstance(key, str) for key in payload_filter):
            raise PayloadFilterError(
                f"payload_filter={payload_filter!r}: a dict filter names payload fields by "
                "their string keys, e.g. payload_filter={'country': 'SE'}")
        return FieldsFilter(payload_filter)
    if callable(payload_filter):
        return payload_filter
    raise PayloadFilterError(
        f"payload_filter={payload_filter!r}: give a predicate taking the payload "
        "(payload_filter=lambda order: order['total'] > 100) or a dict of expected "
        "field values (payload_filter={'country': 'SE'})")
