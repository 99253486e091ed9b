"""Publisher: publish messages with Nameko's options and safe defaults."""

from __future__ import annotations

import time
from typing import Any

from kombu import Exchange

from nameko_like.amqp.connection import Declarable
from nameko_like.amqp.outcome import PublishOutcome
from nameko_like.amqp.publish_channel import (
    DEFAULT_RETRY_POLICY,
    PublishChannel,
    PublishConnectionLost,
)
from nameko_like.amqp.publish_pool import PublishPool, close_when_collected
from nameko_like.amqp.retry import retry_seconds
from nameko_like.exceptions import PublishConfirmTimeout

#: Seconds between checks, while waiting for a confirm, whether the broker
#: blocked publishing.
BLOCKED_CHECK = 0.25

#: delivery_mode values
PERSISTENT = 2
TRANSIENT = 1


class Publisher:
    """Publishes messages to one broker.

    Defaults: publisher confirms on, persistent delivery, retries on
    connection errors. Every option can be overridden per ``publish`` call.

    Args:
        amqp_uri: the broker URI.
        config: a full config dict (SSL, heartbeat, transport options);
            ``amqp_uri`` wins over its ``AMQP_URI`` when both are given.
        pool: the :class:`~nameko_like.amqp.publish_pool.PublishPool` to
            publish through (an extension passes its container's). Without
            one the publisher has its own, closed by ``close()`` (or the
            end of a ``with`` block, or once the publisher is collected).
    """

    use_confirms = True
    delivery_mode = PERSISTENT
    mandatory = False
    priority = 0
    expiration: float | None = None
    serializer = "json"
    compression: str | None = None
    retry = True
    retry_policy: dict[str, Any] = DEFAULT_RETRY_POLICY

    def __init__(
        self,
        amqp_uri: str | None = None,
        use_confirms: bool | None = None,
        serializer: str | None = None,
        compression: str | None = None,
        delivery_mode: int | None = None,
        mandatory: bool | None = None,
        priority: int | None = None,
        expiration: float | None = None,
        declare: list[Declarable] | None = None,
        retry: bool | None = None,
        retry_policy: dict[str, Any] | None = None,
        ssl: bool | dict[str, Any] | None = None,
        login_method: str | None = None,
        config: dict[str, Any] | None = None,
        pool: PublishPool | None = None,
        **publish_kwargs: Any,
    ) -> None:
        config = dict(config or {})
        if amqp_uri:
            config["AMQP_URI"] = amqp_uri
        if ssl is not None:
            config["AMQP_SSL"] = ssl
        if login_method is not None:
            config["LOGIN_METHOD"] = login_method
        self.config = config
        for name, value in (
            ("use_confirms", use_confirms), ("serializer", serializer),
            ("compression", compression), ("delivery_mode", delivery_mode),
            ("mandatory", mandatory), ("priority", priority),
            ("expiration", expiration), ("retry", retry), ("retry_policy", retry_policy),
        ):
            if value is not None:
                setattr(self, name, value)
        self.declare = list(declare or [])
        self.publish_kwargs = publish_kwargs
        #: seconds a publish with the publisher's own retry options may take
        self._retry_seconds: float | None = None
        self._owns_pool = pool is None
        self.pool = PublishPool() if pool is None else pool
        if self._owns_pool:
            close_when_collected(self, self.pool)

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the publisher's own connection (not a pool it was given)."""
        if self._owns_pool:
            self.pool.close()

    @property
    def channel(self) -> PublishChannel:
        """The PublishChannel of this publisher's pool for its broker."""
        return self.pool.get(self.config)

    def publish_async(self, payload: Any, **kwargs: Any) -> PublishOutcome:
        """Publish without waiting; return the outcome to wait on later."""
        options = self._options(kwargs)
        return self.channel.publish(payload, **options)

    def publish(self, payload: Any, **kwargs: Any) -> None:
        """Publish ``payload``; with confirms on, return once the broker has it.

        Raises ``UndeliverableMessage`` for a ``mandatory`` message no queue
        takes, ``ConnectionError`` when the broker can't be reached
        within the retry policy, and ``PublishConfirmTimeout`` when a
        ``timeout`` passed before the broker confirmed (all of them
        ``DeliveryError``). As in Nameko, a publish whose connection
        dropped before the broker confirmed it is sent again (so it may
        arrive twice) for as long as the policy allows.
        """
        use_confirms = kwargs.pop("use_confirms", self.use_confirms)
        timeout = kwargs.pop("timeout", None)
        options = self._options(kwargs)
        deadline = time.monotonic() + self._seconds_to_retry(options["retry"],
                                                             options["retry_policy"])
        timeout_at = None if timeout is None else time.monotonic() + timeout
        if timeout_at is not None:
            deadline = min(deadline, timeout_at)
        channel = self.channel
        while True:
            outcome = channel.publish(payload, deadline=deadline, **options)
            if not use_confirms:
                return
            try:
                self._wait(channel, outcome, deadline, timeout_at)
            except PublishConnectionLost:
                if not options["retry"] or time.monotonic() >= deadline:
                    raise
                continue
            return

    def _seconds_to_retry(self, retry: bool, retry_policy: dict[str, Any]) -> float:
        """How long a publish may keep trying; worked out once for the defaults."""
        if retry is self.retry and retry_policy is self.retry_policy:
            if self._retry_seconds is None:
                self._retry_seconds = retry_seconds(retry, retry_policy)
            return self._retry_seconds
        return retry_seconds(retry, retry_policy)

    @staticmethod
    def _wait(channel: PublishChannel, outcome: PublishOutcome, deadline: float,
              timeout_at: float | None) -> None:
        """Wait for the confirm: until ``timeout_at``, or for ever unless the
        broker blocks publishing (an alarm), then until ``deadline``."""
        while True:
            if timeout_at is None and channel.has_reader and not channel.blocked:
                # The common case, with no timer to set and cancel per wait:
                # the reader settles the outcome, or wakes it if the broker
                # blocks publishing (then the loop below polls).
                outcome.wait_or_wake()
                if not outcome.settled:
                    continue
                outcome.wait(0)  # raises the publish's error, if any
                return
            now = time.monotonic()
            step = BLOCKED_CHECK if timeout_at is None else min(BLOCKED_CHECK, timeout_at - now)
            try:
                channel.wait(outcome, max(step, 0.0))
                return
            except PublishConfirmTimeout:
                now = time.monotonic()
                if channel.blocked and now >= deadline:
                    raise channel.unavailable() from None
                if timeout_at is not None and now >= timeout_at:
                    if channel.blocked:
                        raise channel.unavailable() from None
                    raise

    def _options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        headers = dict(self.publish_kwargs.get("headers") or {})
        headers.update(kwargs.pop("headers", None) or {})
        extra_declare = kwargs.pop("declare", None) or []
        options: dict[str, Any] = {
            "delivery_mode": self.delivery_mode,
            "mandatory": self.mandatory,
            "priority": self.priority,
            "expiration": self.expiration,
            "serializer": self.serializer,
            "compression": self.compression,
            "retry": self.retry,
            "retry_policy": self.retry_policy,
        }
        options.update({k: v for k, v in self.publish_kwargs.items() if k != "headers"})
        options.update(kwargs)
        options["headers"] = headers
        options["declare"] = tuple(self.declare) + tuple(extra_declare)
        exchange = options.get("exchange")
        if isinstance(exchange, Exchange):
            options["exchange"] = exchange.name
        if options["expiration"] is None:
            del options["expiration"]
        return options

