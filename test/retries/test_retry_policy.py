"""``Retry``: its delays, its checks, and the rounding of delays to queues."""

from __future__ import annotations

import random

import pytest

from nameko_like.messaging import consume
from nameko_like.retries import Retry, RetryConfigurationError, error_text
from nameko_like.retry_delays import delay_milliseconds, delay_queue


def test_exponential_back_off_with_a_cap():
    retry = Retry(backoff=1.0, multiplier=2, max_delay=5, jitter=0)
    assert [retry.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5, 5]
    assert Retry(multiplier=1, backoff=0.5, jitter=0).delay(7) == 0.5
    # no overflow for absurd attempt numbers
    assert Retry(max_delay=60, jitter=0).delay(100_000) == 60


def test_jitter_spreads_each_delay_within_its_fraction_and_under_the_cap():
    retry = Retry(backoff=10, multiplier=2, max_delay=30, jitter=0.2)
    rng = random.Random(7)
    firsts = [retry.delay(1, rng.uniform) for _ in range(2000)]
    assert 8.0 <= min(firsts) < 8.1 and 11.9 < max(firsts) <= 12.0
    capped = [retry.delay(3, rng.uniform) for _ in range(2000)]
    assert min(capped) >= 24.0 and max(capped) == 30  # never past max_delay
    # the draws differ: instances failing together don't retry together
    assert len({round(delay, 3) for delay in firsts}) > 1000


def test_applies_to_the_classes_given_and_their_subclasses():
    retry = Retry(on=(OSError, TimeoutError))
    assert retry.applies_to(ConnectionResetError())
    assert retry.applies_to(TimeoutError())
    assert not retry.applies_to(ValueError())
    assert Retry(on=KeyError).applies_to(KeyError("x"))
    assert Retry().applies_to(ValueError())  # default: any Exception


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"on": "IOError"}, r"exception classes, got 'IOError'"),
    ({"on": (OSError, 3)}, r"exception classes, got 3"),
    ({"attempts": 0}, r"at least 1 \(1 means no retry\)"),
    ({"attempts": 2.5}, r"an int of at least 1"),
    ({"attempts": True}, r"an int of at least 1"),
    ({"backoff": -1}, r"backoff=-1.*at least 0"),
    ({"max_delay": float("inf")}, r"max_delay=inf"),
    ({"multiplier": 0.5}, r"multiplier=0.5.*at least 1"),
    ({"jitter": 1.5}, r"jitter=1.5.*between 0 and 1"),
])
def test_bad_values_are_refused_naming_the_fix(kwargs, message):
    with pytest.raises(RetryConfigurationError, match=message):
        Retry(**kwargs)


def test_retry_must_be_a_retry():
    from kombu import Queue

    with pytest.raises(RetryConfigurationError, match=r"give a nameko_like.retries.Retry"):
        consume(Queue("q"), retry=3)(lambda self, body: None)


def test_delays_round_to_two_significant_figures():
    assert [delay_milliseconds(s) for s in (0, 0.0424, 0.099, 0.1234, 0.999, 1.049, 1.05,
                                            3.96, 59.94, 125.6)] == [
        0, 42, 99, 120, 1000, 1000, 1100, 4000, 60000, 130000]


def test_delay_queues_expire_messages_back_to_their_queue():
    queue = delay_queue("orders", 1500)
    assert queue.name == "orders.retry.1500ms"
    assert queue.exchange.name == "orders.retry" and queue.exchange.type == "headers"
    assert queue.queue_arguments == {"x-message-ttl": 1500, "x-dead-letter-exchange": ""}
    assert queue.binding_arguments == {"x-match": "all", "retry-delay-ms": "1500"}
    assert queue.durable and not queue.auto_delete


def test_error_text_is_capped():
    assert error_text(OSError("disk full")) == "OSError: disk full"
    assert len(error_text(ValueError("x" * 5000))) == 1003
