"""Dispatch events from code that is not a service."""

from __future__ import annotations

from typing import Any

from nameko_like.amqp.outcome import PublishOutcome
from nameko_like.events import dispatch_options, event_publisher
from nameko_like.messaging import encode_context_headers


class StandaloneEventDispatcher:
    """``dispatch(service_name, event_type, event_data)`` as a callable object.

    Calling it returns once the broker has confirmed the event.
    ``dispatch_async`` returns at once with a
    :class:`~nameko_like.amqp.outcome.PublishOutcome`, so that a program
    sending many events shares confirm round trips; ``wait`` on each
    outcome before relying on them.

    The dispatcher owns its connection: ``close()`` it (or use it as a
    context manager) when done; one that is garbage collected closes it too.
    Keep one dispatcher for many events rather than one per event.
    """

    def __init__(self, config: dict[str, Any], headers: dict[str, Any] | None = None,
                 **publisher_options: Any) -> None:
        self.config = config
        self.headers = dict(headers or {})
        self.publisher = event_publisher(config, **publisher_options)

    def __enter__(self) -> StandaloneEventDispatcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the dispatcher's connection; events not yet confirmed fail."""
        self.publisher.close()

    def __call__(self, service_name: str, event_type: str, event_data: Any, **kwargs: Any) -> None:
        """Dispatch one event and wait for the broker's confirm."""
        self.publisher.publish(event_data, **self._options(service_name, event_type, kwargs))

    def dispatch_async(self, service_name: str, event_type: str, event_data: Any,
                       **kwargs: Any) -> PublishOutcome:
        """Dispatch one event without waiting; return its outcome."""
        return self.publisher.publish_async(
            event_data, **self._options(service_name, event_type, kwargs))

    def wait(self, outcome: PublishOutcome, timeout: float | None = None) -> None:
        """Wait until ``outcome`` is confirmed; raise if the broker refused it, or
        ``PublishConfirmTimeout`` (a ``DeliveryError``) after ``timeout`` seconds."""
        self.publisher.channel.wait(outcome, timeout)

    def _options(self, service_name: str, event_type: str,
                 kwargs: dict[str, Any]) -> dict[str, Any]:
        options = dispatch_options(self.config, service_name, event_type)
        options.update(kwargs)
        headers = dict(self.headers)
        headers.update(options.pop("headers", None) or {})
        options["headers"] = headers
        return options


def event_dispatcher(
    config: dict[str, Any], context_data: dict[str, Any] | None = None,
    headers: dict[str, Any] | None = None, **kwargs: Any,
) -> StandaloneEventDispatcher:
    """Return a dispatcher: ``dispatch(service_name, event_type, event_data)``.

    ``context_data`` travels with every event as ``nameko.*`` headers, next
    to any other ``headers`` given. Publisher options (``delivery_mode``,
    ``priority``, ...) apply to every dispatch, as the keywords Nameko's
    ``event_dispatcher`` passes to its publisher do.
    """
    merged = dict(headers or {})
    merged.update(encode_context_headers(context_data or {}))
    return StandaloneEventDispatcher(config, headers=merged, **kwargs)
