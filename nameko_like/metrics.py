"""Prometheus metrics: an instrumentation observer writing prometheus-client metrics.

:class:`Metrics` turns the framework's hooks (see
:mod:`nameko_like.instrumentation`) into counters, gauges and histograms
on its own ``CollectorRegistry``; the operations server
(:mod:`nameko_like.operations`) serves it at ``/metrics`` when
``METRICS_ADDRESS`` is set. Every label value comes from code, never from
a request: service and method names, entrypoint classes, route templates,
HTTP status codes. So the number of series stays bounded whatever clients
send.

prometheus-client is the ``metrics`` extra (``pip install
'nameko_like[metrics]'``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from nameko_like import instrumentation
from nameko_like.exceptions import ConfigurationError
from nameko_like.metrics_series import CounterFamily, GaugeFamily, HistogramFamily

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
    from prometheus_client.core import GaugeMetricFamily
except ImportError:  # pragma: no cover - checked by require_prometheus_client
    prometheus_client_missing = True
else:
    prometheus_client_missing = False

if TYPE_CHECKING:
    from prometheus_client import Metric

    from nameko_like.worker_context import WorkerContext

__all__ = ["Metrics", "require_prometheus_client"]

#: Prefix of every metric name.
PREFIX = "nameko_like"

#: Bucket bounds (seconds) of the duration histograms: from a fast in-memory
#: call (~100 us) to a slow request (10 s).
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                    2.5, 5.0, 10.0)
#: Bucket bounds (seconds) of the publish confirm latency histogram.
CONFIRM_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 1.0)


def require_prometheus_client() -> None:
    """Raise a ConfigurationError naming the extra to install if it is missing."""
    if prometheus_client_missing:
        raise ConfigurationError(
            "METRICS_ADDRESS is set but prometheus-client is not installed: "
            "pip install 'nameko_like[metrics]' (or unset METRICS_ADDRESS)")


def entrypoint_kind(entrypoint: object) -> str:
    """The ``entrypoint`` label: the entrypoint's class name (``Rpc``, ``EventHandler``...)."""
    return type(entrypoint).__name__


class _PoolCollector:
    """Worker pool size and busy workers, read from the containers at scrape time."""

    def __init__(self, containers: Callable[[], Iterable[Any]]) -> None:
        self._containers = containers

    def collect(self) -> Iterator[Metric]:
        """Yield the two gauge families, one sample per service."""
        size = GaugeMetricFamily(f"{PREFIX}_worker_pool_size",
                                 "Size of the worker pool (max_workers) of each service",
                                 labels=["service"])
        busy = GaugeMetricFamily(f"{PREFIX}_workers_busy",
                                 "Workers running now in each service", labels=["service"])
        for container in self._containers():
            size.add_metric([container.service_name], container.max_workers)
            busy.add_metric([container.service_name],
                            container.max_workers - container.free_worker_slots)
        yield size
        yield busy


class _DefaultRegistryBridge:
    """Also exposes what user code registered on prometheus-client's default registry."""

    def collect(self) -> Iterator[Metric]:
        """Yield every metric of the default registry."""
        yield from REGISTRY.collect()


class Metrics(instrumentation.Observer):
    """The observer that keeps nameko_like's Prometheus metrics.

    Args:
        containers: returns the containers to report pool gauges for.
        include_default_registry: also expose prometheus-client's default
            registry (metrics user code defined with the module-level API).
    """

    def __init__(self, containers: Callable[[], Iterable[Any]] = tuple,
                 include_default_registry: bool = True) -> None:
        require_prometheus_client()
        #: the registry ``/metrics`` serves
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        entry = ["service", "method", "entrypoint"]
        # updated on every call: nameko_like's own series (metrics_series),
        # registered in the same order as the others
        self.calls = CounterFamily(f"{PREFIX}_entrypoint_calls", "Entrypoint calls by outcome",
                                   [*entry, "outcome"])
        reg.register(self.calls)
        self.duration = HistogramFamily(f"{PREFIX}_entrypoint_duration_seconds",
                                        "Time a worker ran, set-up and teardown included",
                                        entry, DURATION_BUCKETS)
        reg.register(self.duration)
        self.in_flight = GaugeFamily(f"{PREFIX}_entrypoint_in_flight", "Workers running now",
                                     entry)
        reg.register(self.in_flight)
        self.dead_lettered = Counter(f"{PREFIX}_messages_dead_lettered",
                                     "Messages moved to the service's dead-letter queue",
                                     ["service"], registry=reg)
        self.redelivered = Counter(f"{PREFIX}_messages_redelivered",
                                   "Messages given another attempt (by: broker or requeue)",
                                   ["service", "queue", "by"], registry=reg)
        self.retried = Counter(f"{PREFIX}_messages_retried",
                               "Messages sent to wait for another attempt (retry=)",
                               ["service", "queue"], registry=reg)
        self.filtered = Counter(f"{PREFIX}_events_filtered",
                                "Events acknowledged unhandled by a payload_filter",
                                ["service", "method"], registry=reg)
        self.confirm_latency = HistogramFamily(
            f"{PREFIX}_publish_confirm_latency_seconds",
            "Time from writing a publish to the broker's confirm", [], CONFIRM_BUCKETS)
        reg.register(self.confirm_latency)
        self._confirms = self.confirm_latency.labels()  # unlabelled: exposed from the start
        self.reconnects = Counter(f"{PREFIX}_broker_reconnects",
                                  "Connections to the broker re-established after a loss",
                                  ["role"], registry=reg)
        target = ["target_service", "target_method"]
        self.rpc_calls = CounterFamily(f"{PREFIX}_rpc_client_calls", "RPC requests sent",
                                       target)
        reg.register(self.rpc_calls)
        self.rpc_duration = HistogramFamily(f"{PREFIX}_rpc_client_duration_seconds",
                                            "Time from sending an RPC request to its reply",
                                            target, DURATION_BUCKETS)
        reg.register(self.rpc_duration)
        self.rpc_timeouts = Counter(f"{PREFIX}_rpc_client_timeouts",
                                    "RPC calls that got no reply within their timeout", target,
                                    registry=reg)
        self.rpc_errors = Counter(f"{PREFIX}_rpc_client_errors",
                                  "RPC calls that failed without a reply (unknown service, "
                                  "connection lost)", target, registry=reg)
        http = ["service", "route", "method"]
        self.http_requests = CounterFamily(f"{PREFIX}_http_requests", "HTTP requests answered",
                                           [*http, "status"])
        reg.register(self.http_requests)
        self.http_duration = HistogramFamily(f"{PREFIX}_http_request_duration_seconds",
                                             "Time to answer an HTTP request (body streaming "
                                             "excluded)", http, DURATION_BUCKETS)
        reg.register(self.http_duration)
        self.health_check = Gauge(f"{PREFIX}_health_check_ok",
                                  "1 while a service's health check passes, 0 while degraded",
                                  ["service", "check"], registry=reg)
        reg.register(_PoolCollector(containers))
        if include_default_registry:
            reg.register(_DefaultRegistryBridge())
        # labelled children per entrypoint: .labels() costs more than the update
        self._children: dict[object, tuple[dict[str, Any], Any, Any]] = {}
        # and per RPC target: (calls sent, round-trip histogram)
        self._rpc_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        # and per route and status: (requests answered, duration histogram)
        self._http_children: dict[tuple[str, str, str, int], tuple[Any, Any]] = {}

    def _rpc_target(self, service_name: str, method_name: str) -> tuple[Any, Any]:
        key = (service_name, method_name)
        children = self._rpc_children.get(key)
        if children is None:
            children = (self.rpc_calls.labels(service_name, method_name),
                        self.rpc_duration.labels(service_name, method_name))
            self._rpc_children[key] = children
        return children

    def _entry_children(self, worker_ctx: WorkerContext) -> tuple[dict[str, Any], Any, Any]:
        entrypoint = worker_ctx.entrypoint
        children = self._children.get(entrypoint)
        if children is None:
            labels = (worker_ctx.container.service_name, entrypoint.method_name,
                      entrypoint_kind(entrypoint))
            outcomes = {outcome: self.calls.labels(*labels, outcome)
                        for outcome in (instrumentation.OK, instrumentation.EXPECTED_ERROR,
                                        instrumentation.ERROR)}
            children = (outcomes, self.duration.labels(*labels), self.in_flight.labels(*labels))
            self._children[entrypoint] = children
        return children

    # -- hooks ---------------------------------------------------------------------

    def container_stopped(self, container: Any) -> None:
        """Forget the stopped container's entrypoints (their series stay).

        The cached children are keyed by entrypoint, which refers to its
        container: kept, they would keep a stopped container alive for as
        long as the metrics server serves others.
        """
        for entrypoint in container.entrypoints:
            self._children.pop(entrypoint, None)

    def worker_started(self, worker_ctx: WorkerContext) -> None:
        """Count the worker in flight."""
        self._entry_children(worker_ctx)[2].inc()

    def worker_finished(self, worker_ctx: WorkerContext, outcome: str, duration: float) -> None:
        """Count the call by outcome and observe its duration."""
        outcomes, histogram, gauge = self._entry_children(worker_ctx)
        gauge.dec()
        outcomes[outcome].inc()
        histogram.observe(duration)

    def rpc_call_sent(self, service_name: str, method_name: str) -> None:
        """Count a request sent."""
        self._rpc_target(service_name, method_name)[0].inc()

    def rpc_call_replied(self, service_name: str, method_name: str, duration: float) -> None:
        """Observe the round trip."""
        self._rpc_target(service_name, method_name)[1].observe(duration)

    def rpc_call_timed_out(self, service_name: str, method_name: str) -> None:
        """Count a timeout."""
        self.rpc_timeouts.labels(service_name, method_name).inc()

    def rpc_call_errored(self, service_name: str, method_name: str, error: BaseException) -> None:
        """Count a call failed without a reply."""
        self.rpc_errors.labels(service_name, method_name).inc()

    def message_dead_lettered(self, service_name: str, reason: str) -> None:
        """Count a dead-lettered message (the reason is free text: not a label)."""
        self.dead_lettered.labels(service_name).inc()

    def message_redelivered(self, service_name: str, queue_name: str, by_broker: bool) -> None:
        """Count a redelivery."""
        self.redelivered.labels(service_name, queue_name,
                                "broker" if by_broker else "requeue").inc()

    def message_retry_scheduled(self, service_name: str, queue_name: str, delay: float) -> None:
        """Count a message sent to wait for its next attempt."""
        self.retried.labels(service_name, queue_name).inc()

    def event_filtered(self, service_name: str, method_name: str) -> None:
        """Count an event a payload filter left unhandled."""
        self.filtered.labels(service_name, method_name).inc()

    def publish_confirmed(self, latency: float) -> None:
        """Observe a confirm's latency."""
        self._confirms.observe(latency)

    def broker_reconnected(self, role: str) -> None:
        """Count a reconnect."""
        self.reconnects.labels(role).inc()

    def http_request_done(self, service_name: str, route: str, method: str, status: int,
                          duration: float) -> None:
        """Count the request by route template and status; observe its duration."""
        key = (service_name, route, method, status)
        children = self._http_children.get(key)
        if children is None:  # bounded: route templates, methods and statuses come from code
            children = (self.http_requests.labels(service_name, route, method, str(status)),
                        self.http_duration.labels(service_name, route, method))
            self._http_children[key] = children
        children[0].inc()
        children[1].observe(duration)
