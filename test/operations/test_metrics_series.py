"""nameko_like's own series are exposed exactly as prometheus-client's metrics are."""

from __future__ import annotations

import re
from collections.abc import Iterator

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from nameko_like import metrics_series
from nameko_like.metrics_series import (
    CounterFamily,
    GaugeFamily,
    HistogramFamily,
    created_samples_enabled,
)

BUCKETS = (0.001, 0.01, 0.1, 1.0)


def exposition(registry: CollectorRegistry) -> str:
    """``/metrics`` text with the creation timestamps (which differ by nature) masked."""
    text = generate_latest(registry).decode()
    return re.sub(r"(_created(\{[^}]*\})?) \S+", r"\1 <time>", text)


def both(labelnames: list[str]) -> tuple[tuple[CollectorRegistry, Counter, Gauge, Histogram],
                                         tuple[CollectorRegistry, CounterFamily, GaugeFamily,
                                               HistogramFamily]]:
    """The same three metrics made by prometheus-client and by metrics_series."""
    theirs_registry = CollectorRegistry(auto_describe=True)
    theirs = (theirs_registry,
              Counter("t_calls", "calls", labelnames, registry=theirs_registry),
              Gauge("t_busy", "busy", labelnames, registry=theirs_registry),
              Histogram("t_seconds", "seconds", labelnames, buckets=BUCKETS,
                        registry=theirs_registry))
    ours_registry = CollectorRegistry(auto_describe=True)
    ours = (ours_registry, CounterFamily("t_calls", "calls", labelnames),
            GaugeFamily("t_busy", "busy", labelnames),
            HistogramFamily("t_seconds", "seconds", labelnames, BUCKETS))
    for family in ours[1:]:
        ours_registry.register(family)  # type: ignore[arg-type]
    return theirs, ours


AMOUNTS = (0.0005, 0.001, 0.004, 0.5, 3.0, 0.1)


def test_labelled_series_are_exposed_as_prometheus_client_exposes_its_own() -> None:
    theirs, ours = both(["service", "method"])
    for _registry, counter, gauge, histogram in (theirs, ours):
        for amount in AMOUNTS:
            counter.labels("svc", "ping").inc()
            histogram.labels("svc", "ping").observe(amount)
        counter.labels("svc", "pong").inc()
        gauge.labels("svc", "ping").inc()
        gauge.labels("svc", "ping").inc()
        gauge.labels("svc", "ping").dec()
        gauge.labels("svc", "pong").inc()
        gauge.labels("svc", "pong").dec()
    assert exposition(ours[0]) == exposition(theirs[0])
    assert 'le="+Inf"' in exposition(ours[0])
    assert "t_calls_created{" in exposition(ours[0])


def test_unlabelled_series_are_exposed_as_prometheus_client_exposes_its_own() -> None:
    theirs, ours = both([])
    ours[1].labels()
    ours[2].labels()
    ours[3].labels()  # prometheus-client shows an unlabelled metric from the start
    assert exposition(ours[0]) == exposition(theirs[0])
    theirs[1].inc()
    ours[1].labels().inc()
    for amount in AMOUNTS:
        theirs[3].observe(amount)
        ours[3].labels().observe(amount)
    assert exposition(ours[0]) == exposition(theirs[0])


@pytest.fixture
def created_disabled() -> Iterator[None]:
    prometheus_client.disable_created_metrics()
    try:
        yield
    finally:
        prometheus_client.enable_created_metrics()


def test_created_samples_follow_prometheus_client(created_disabled: None) -> None:
    assert not created_samples_enabled()
    theirs, ours = both(["service"])
    for _registry, counter, _gauge, histogram in (theirs, ours):
        counter.labels("svc").inc()
        histogram.labels("svc").observe(0.2)
    assert exposition(ours[0]) == exposition(theirs[0])
    assert "_created" not in exposition(ours[0])


def test_a_series_is_kept_per_label_values() -> None:
    calls = CounterFamily("t_calls", "calls", ["service"])
    assert calls.labels("svc") is calls.labels("svc")
    assert calls.labels("svc") is not calls.labels("other")
    with pytest.raises(ValueError, match="takes labels"):
        calls.labels("svc", "extra")


def test_bucket_bounds_must_increase() -> None:
    with pytest.raises(ValueError, match="must increase"):
        HistogramFamily("t_seconds", "seconds", [], (1.0, 0.1))
    assert HistogramFamily("t_seconds", "seconds", [], (0.1, float("inf"))).bounds == (
        0.1, float("inf"))


def test_a_nan_observation_is_counted_as_prometheus_client_counts_it() -> None:
    theirs, ours = both(["service"])
    for _registry, _counter, _gauge, histogram in (theirs, ours):
        histogram.labels("svc").observe(0.2)
        histogram.labels("svc").observe(float("nan"))  # in the sum, in no bucket
    assert exposition(ours[0]) == exposition(theirs[0])


def test_an_update_made_while_an_update_holds_the_lock_goes_through() -> None:
    # What a finalizer run by the garbage collector in the middle of an
    # update does; a non-reentrant lock would hang the process here.
    calls = CounterFamily("t_calls", "calls", [])
    with metrics_series._LOCK:
        calls.labels().inc()
    assert calls.labels().value == 1
