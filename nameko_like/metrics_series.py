"""Counters, gauges and histograms cheap enough to update on every call.

prometheus-client guards each value with a ``threading.Lock``. Under
eventlet's monkey-patching that is a green lock, a semaphore written in
Python whose take and release cost several times the update they guard;
an RPC round trip updates a dozen values. The series :class:`Metrics
<nameko_like.metrics.Metrics>` updates on every call are kept here
instead: plain numbers behind one *native* lock (an update never yields,
so a greenthread never waits on it with the lock taken), turned into
prometheus-client metric families when ``/metrics`` is scraped. They are
exposed exactly as prometheus-client's own ``Counter``, ``Gauge`` and
``Histogram`` expose theirs: same samples, same ``le`` labels, ``_created``
samples when prometheus-client writes them.

Only the public collector interface of prometheus-client is used: each
family is a collector registered on a ``CollectorRegistry``.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

from nameko_like._eventlet import eventlet

import eventlet.patcher  # after _eventlet silenced its import warning

if TYPE_CHECKING:
    from prometheus_client import Metric

__all__ = ["CounterFamily", "GaugeFamily", "HistogramFamily", "created_samples_enabled"]

#: One lock for every series: the real thread module's, never eventlet's
#: green one (see the module docstring). Taken only around an update.
#: Re-entrant: a finalizer run by the garbage collector while an update
#: holds it may update a series too (it would hang a plain lock for good).
_LOCK = eventlet.patcher.original("threading").RLock()


def created_samples_enabled() -> bool:
    """Whether prometheus-client writes ``_created`` samples now.

    ``PROMETHEUS_DISABLE_CREATED_SERIES`` and ``disable_created_metrics()``
    apply to these series as to prometheus-client's own. Read from the
    switch those set (``prometheus_client.metrics._use_created``, private:
    a probe counter would do without it, but in multiprocess mode every
    counter made writes a file, and the probe would be exposed); should a
    release drop it, a throwaway counter's samples tell. Called per
    scrape, not per update.
    """
    from prometheus_client import metrics

    switch = getattr(metrics, "_use_created", None)
    if isinstance(switch, bool):
        return switch
    (family,) = metrics.Counter("nameko_like_probe", "probe", registry=None).collect()
    return any(sample.name.endswith("_created") for sample in family.samples)


class _Count:
    """One counter or gauge series: a number and when it was created."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount``."""
        with _LOCK:
            self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        """Take ``amount`` away."""
        with _LOCK:
            self.value -= amount


class _Buckets:
    """One histogram series: observations per bucket, their sum, creation time."""

    __slots__ = ("bounds", "counts", "created", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, amount: float) -> None:
        """Count ``amount`` in the first bucket whose bound is at least ``amount``."""
        if amount != amount:  # NaN: in no bucket but in the sum, as prometheus-client does
            with _LOCK:
                self.sum += amount
            return
        index = bisect_left(self.bounds, amount)  # the last bound is +Inf
        with _LOCK:
            self.counts[index] += 1
            self.sum += amount


_ChildT = TypeVar("_ChildT", _Count, _Buckets)


class _Family(Generic[_ChildT]):
    """A metric's series by label values; a prometheus-client collector."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], _ChildT] = {}

    def _new_child(self) -> _ChildT:
        raise NotImplementedError

    def labels(self, *values: str) -> _ChildT:
        """The series of these label values (made on first use); keep it to update it."""
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
        key = tuple(str(value) for value in values)
        child = self._children.get(key)
        if child is None:
            with _LOCK:
                child = self._children.setdefault(key, self._new_child())
        return child

    def _series(self) -> list[tuple[dict[str, str], _ChildT]]:
        return [(dict(zip(self.labelnames, key, strict=True)), child)
                for key, child in list(self._children.items())]

    def describe(self) -> list[Metric]:
        """The family with no samples (what the registry checks names against)."""
        return [self._family()]

    def _family(self) -> Metric:
        raise NotImplementedError


class CounterFamily(_Family[_Count]):
    """A counter, exposed as prometheus-client's ``Counter`` is."""

    def _new_child(self) -> _Count:
        return _Count()

    def _family(self) -> Metric:
        from prometheus_client.core import CounterMetricFamily

        return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        """Yield the family: ``_total`` (and ``_created``) per series."""
        family = self._family()
        created = created_samples_enabled()
        for labels, child in self._series():
            family.add_sample(self.name + "_total", labels, child.value)
            if created:
                family.add_sample(self.name + "_created", labels, child.created)
        yield family


class GaugeFamily(_Family[_Count]):
    """A gauge, exposed as prometheus-client's ``Gauge`` is."""

    def _new_child(self) -> _Count:
        return _Count()

    def _family(self) -> Metric:
        from prometheus_client.core import GaugeMetricFamily

        return GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        """Yield the family: one sample per series."""
        family = self._family()
        for labels, child in self._series():
            family.add_sample(self.name, labels, child.value)
        yield family


class HistogramFamily(_Family[_Buckets]):
    """A histogram, exposed as prometheus-client's ``Histogram`` is.

    Args:
        buckets: the finite upper bounds, in increasing order (``+Inf`` is added).
    """

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 buckets: Sequence[float]) -> None:
        super().__init__(name, documentation, labelnames)
        bounds = [float(bound) for bound in buckets]
        if bounds != sorted(bounds):
            raise ValueError(f"{name}: bucket bounds must increase, got {buckets}")
        if not bounds or bounds[-1] != float("inf"):
            bounds.append(float("inf"))
        self.bounds = tuple(bounds)
        from prometheus_client.utils import floatToGoString

        #: the ``le`` label of each bucket, written as prometheus-client writes it
        self._le: tuple[str, ...] = tuple(
            floatToGoString(bound) for bound in bounds)  # type: ignore[no-untyped-call]

    def _new_child(self) -> _Buckets:
        return _Buckets(self.bounds)

    def _family(self) -> Metric:
        from prometheus_client.core import HistogramMetricFamily

        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        """Yield the family: cumulative ``_bucket`` samples, ``_count``, ``_sum``
        (and ``_created``) per series."""
        family = self._family()
        created = created_samples_enabled()
        for labels, child in self._series():
            with _LOCK:  # one consistent snapshot: count and sum of the same observations
                counts, total = list(child.counts), child.sum
            cumulative = 0
            for le, count in zip(self._le, counts, strict=True):
                cumulative += count
                family.add_sample(self.name + "_bucket", {**labels, "le": le}, cumulative)
            family.add_sample(self.name + "_count", labels, cumulative)
            family.add_sample(self.name + "_sum", labels, total)
            if created:
                family.add_sample(self.name + "_created", labels, child.created)
        yield family
