"""Delayed retries with exponential back-off: the ``retry=`` option of entrypoints.

``@rpc``, ``@event_handler`` and ``@consume`` take ``retry=Retry(...)``.
When the method raises one of ``Retry.on``, the message is not handled
again at once: it waits in the service's delay topology on the broker
(:mod:`nameko_like.retry_delays`) and comes back to its queue after a delay
that grows exponentially with each failed attempt. Past the last attempt it
is dead-lettered, with the attempt count and the last error in its headers.

Attempts are counted in the message itself (the :data:`ATTEMPT_HEADER`
header), so the count survives service and broker restarts and holds
across the instances of a service.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from nameko_like import retry_delays
from nameko_like.amqp import dead_letter as dead_letters
from nameko_like.exceptions import ConfigurationError
from nameko_like.protocols import DeliveredMessage

if TYPE_CHECKING:
    from nameko_like.messaging import QueueConsumer

_log = logging.getLogger(__name__)

#: header of a message waiting for, or back from, a retry: how many attempts
#: have failed so far
ATTEMPT_HEADER = "x-retry-attempt"
#: header of a message dead-lettered after its retries: attempts made
ATTEMPTS_HEADER = "x-retry-attempts"
#: header of a message dead-lettered after its retries: the last error
LAST_ERROR_HEADER = "x-retry-last-error"

#: Longest error text kept in :data:`LAST_ERROR_HEADER`, in characters.
ERROR_TEXT_LIMIT = 1000


class RetryConfigurationError(ConfigurationError, ValueError):
    """A ``Retry`` was given values that can't work."""


def _exception_classes(on: Any) -> tuple[type[BaseException], ...]:
    classes = on if isinstance(on, tuple) else (on,)
    for cls in classes:
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise RetryConfigurationError(
                f"Retry(on=...) takes exception classes, got {cls!r}: "
                "write e.g. Retry(on=(IOError, TimeoutError))")
    return classes


@dataclass(frozen=True)
class Retry:
    """When and how often to retry a message whose handler raised.

    The delay after failed attempt ``n`` (1, 2, ...) is
    ``min(backoff * multiplier ** (n - 1), max_delay)``, then spread by up to
    ``jitter`` of itself either way (so instances failing together don't
    retry together), and never more than ``max_delay``. Delays are rounded to
    two significant figures, which keeps the number of delay queues small.

    Args:
        on: exception class(es) worth retrying; others are handled as without
            ``retry`` (RPC callers get the error at once).
        attempts: how many times the method runs at most, the first included.
        backoff: seconds to wait after the first failed attempt.
        multiplier: how much longer each next wait is.
        max_delay: the longest wait, in seconds.
        jitter: fraction (0 to 1) of each wait added or taken at random.

    Example::

        @event_handler("orders", "placed", retry=Retry(on=IOError, attempts=5))
        def ship(self, order):
            ...
    """

    on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,)
    attempts: int = 3
    backoff: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.1
    _classes: tuple[type[BaseException], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_classes", _exception_classes(self.on))
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) \
                or self.attempts < 1:
            raise RetryConfigurationError(
                f"Retry(attempts={self.attempts!r}): give the most times the method may run, "
                "an int of at least 1 (1 means no retry)")
        for name in ("backoff", "max_delay"):
            value = getattr(self, name)
            if not _finite(value) or value < 0:
                raise RetryConfigurationError(
                    f"Retry({name}={value!r}): give seconds, a number of at least 0")
        if not _finite(self.multiplier) or self.multiplier < 1:
            raise RetryConfigurationError(
                f"Retry(multiplier={self.multiplier!r}): give a number of at least 1 "
                "(1 waits backoff seconds every time)")
        if not _finite(self.jitter) or not 0 <= self.jitter <= 1:
            raise RetryConfigurationError(
                f"Retry(jitter={self.jitter!r}): give a fraction between 0 and 1")

    def applies_to(self, error: BaseException) -> bool:
        """Whether ``error`` is one this policy retries."""
        return isinstance(error, self._classes)

    def delay(self, failed_attempt: int, uniform: Any = random.uniform) -> float:
        """Seconds to wait after attempt ``failed_attempt`` (1-based) failed.

        ``uniform(a, b)`` draws the jitter (``random.uniform`` by default).
        """
        exponent = max(failed_attempt - 1, 0)
        try:
            base = min(self.backoff * self.multiplier ** exponent, self.max_delay)
        except OverflowError:  # a huge exponent: the cap applies anyway
            base = self.max_delay
        spread = base * self.jitter
        jittered = base + uniform(-spread, spread) if spread else base
        return min(max(jittered, 0.0), self.max_delay)


def _finite(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def as_retry(value: Any) -> Retry | None:
    """Check an entrypoint's ``retry=`` argument: a ``Retry`` or None."""
    if value is None or isinstance(value, Retry):
        return value
    raise RetryConfigurationError(
        f"retry={value!r}: give a nameko_like.retries.Retry, "
        "e.g. retry=Retry(on=IOError, attempts=3)")


def failed_attempts(message: DeliveredMessage) -> int:
    """How many attempts at ``message`` failed before this delivery."""
    try:
        return max(int((message.headers or {}).get(ATTEMPT_HEADER, 0)), 0)
    except (TypeError, ValueError):
        return 0


def routing_key_of(message: DeliveredMessage) -> str:
    """The routing key ``message`` was first published with.

    A message back from a delay (or a requeue) arrives through the default
    exchange, keyed by its queue's name; its ``x-original-routing-key``
    header still holds the key it was sent with (``<service>.<method>``
    for an RPC request).
    """
    info = message.delivery_info or {}
    original = (message.headers or {}).get(dead_letters.ORIGINAL_ROUTING_KEY_HEADER)
    if not info.get("exchange") and isinstance(original, str) and original:
        return original
    return str(info.get("routing_key") or "")


class Outcome(Enum):
    """What :func:`after_failure` did with a failed message."""

    #: ``retry`` does not apply: settle the message as without it
    NOT_RETRIED = "not_retried"
    #: the message waits for its next attempt (and is settled)
    RETRYING = "retrying"
    #: the last attempt failed: the message is dead-lettered
    EXHAUSTED = "exhausted"


def error_text(error: BaseException) -> str:
    """``error`` as ``Type: message``, capped at :data:`ERROR_TEXT_LIMIT`."""
    text = f"{type(error).__name__}: {error}"
    if len(text) > ERROR_TEXT_LIMIT:
        text = text[:ERROR_TEXT_LIMIT] + "..."
    return text


def after_failure(queue_consumer: QueueConsumer, message: DeliveredMessage, queue_name: str,
                  retry: Retry | None, error: BaseException) -> Outcome:
    """Settle ``message``, whose handler raised ``error``, as ``retry`` says.

    Either it goes to the delay topology for another attempt, or (past the
    last attempt) to the dead-letter queue; if ``retry`` doesn't cover
    ``error`` nothing is done and the caller settles it.
    """
    if retry is None or not retry.applies_to(error):
        return Outcome.NOT_RETRIED
    attempt = failed_attempts(message) + 1
    if attempt >= retry.attempts:
        headers = {ATTEMPTS_HEADER: attempt, LAST_ERROR_HEADER: error_text(error)}
        # The waiting bookkeeping goes: replayed from the dead-letter queue,
        # the message starts again at its first attempt.
        queue_consumer.dead_letter(
            message, f"failed {attempt} attempt(s), the last with {error_text(error)}", headers,
            drop_headers=(ATTEMPT_HEADER, retry_delays.DELAY_HEADER, *retry_delays.DEATH_HEADERS))
        return Outcome.EXHAUSTED
    delay = retry.delay(attempt)
    _log.info("attempt %d of %d at a message on %s failed (%s); next attempt in %.3fs",
              attempt, retry.attempts, queue_name, type(error).__name__, delay)
    headers = dead_letters.origin_headers(message)
    headers[ATTEMPT_HEADER] = attempt
    queue_consumer.delay(message, queue_name, delay, headers)
    return Outcome.RETRYING
