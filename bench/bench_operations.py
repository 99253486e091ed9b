"""Overhead of metrics (and tracing) on sequential RPC, measured in one run.

One service process (``@rpc ping``) per variant, called sequentially by a
``ClusterRpcProxy`` in the same process, variants interleaved round by round
so drift on a shared machine hits them alike:

- ``off``: no observer registered (the framework's hooks cost one tuple test);
- ``metrics``: ``METRICS_ADDRESS`` set (Prometheus metrics kept, endpoint up);
- ``tracing``: ``TRACING`` set (OpenTelemetry spans, SDK provider, no exporter);
- ``both``: metrics and tracing.

Reported: the median calls/s of each variant and its ratio to ``off``, and
the median CPU time of this process per call (client and service run here;
the broker does not): on a shared machine wall-clock rates swing with the
neighbours' load, CPU time much less.
Tracing variants are skipped when opentelemetry-sdk is missing. Usage::

    python bench/bench_operations.py [--rounds 5] [--calls 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nameko_like._eventlet import eventlet

eventlet.monkey_patch()

from nameko_like import instrumentation  # noqa: E402
from nameko_like.containers import ServiceContainer  # noqa: E402
from nameko_like.rpc import rpc  # noqa: E402
from nameko_like.standalone.rpc import ClusterRpcProxy  # noqa: E402

API = "http://guest:guest@localhost:15672/api"


class Pinged:
    name = "pinged"

    @rpc
    def ping(self) -> str:
        return "pong"


def make_vhost() -> str:
    name = f"bench-ops-{uuid.uuid4().hex[:8]}"
    requests.put(f"{API}/vhosts/{name}", timeout=10).raise_for_status()
    requests.put(f"{API}/permissions/{name}/guest",
                 json={"configure": ".*", "write": ".*", "read": ".*"},
                 timeout=10).raise_for_status()
    return name


def tracing_available() -> bool:
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        from nameko_like import tracing  # noqa: F401
    except ImportError:
        return False
    trace.set_tracer_provider(TracerProvider())
    return True


def run_variant(vhost: str, extra: dict, calls: int) -> tuple[float, float]:
    """Start the service with ``extra`` config, make ``calls`` sequential calls.

    Returns (calls per second, CPU microseconds of this process per call).
    """
    config = {"AMQP_URI": f"amqp://guest:guest@localhost:5672/{vhost}", **extra}
    container = ServiceContainer(Pinged, config)
    container.start()
    try:
        with ClusterRpcProxy(config, timeout=10) as cluster:
            for _ in range(200):  # warm-up
                cluster.pinged.ping()
            started, cpu_started = time.perf_counter(), time.process_time()
            for _ in range(calls):
                cluster.pinged.ping()
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
    finally:
        container.stop()
        if extra.get("TRACING"):
            from nameko_like import tracing

            tracing.disable()
    assert instrumentation.observers == (), instrumentation.observers
    return calls / elapsed, cpu / calls * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()

    variants = {"off": {}, "metrics": {"METRICS_ADDRESS": "127.0.0.1:0"}}
    if tracing_available():
        variants["tracing"] = {"TRACING": True}
        variants["both"] = {"METRICS_ADDRESS": "127.0.0.1:0", "TRACING": True}
    vhost = make_vhost()
    rates: dict[str, list[float]] = {name: [] for name in variants}
    cpus: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for round_no in range(1, args.rounds + 1):
            line = []
            for name, extra in variants.items():
                rate, cpu = run_variant(vhost, extra, args.calls)
                rates[name].append(rate)
                cpus[name].append(cpu)
                line.append(f"{name} {rate:,.0f}/s {cpu:.0f} us cpu")
            print(f"round {round_no}: " + ", ".join(line), flush=True)
    finally:
        requests.delete(f"{API}/vhosts/{vhost}", timeout=10)
    import timeit

    # what the hooks cost with no observer: a module attribute read and a
    # truth test per call site (about 8 sites on one RPC round trip)
    check = min(timeit.repeat("if instrumentation.observers: pass", number=1_000_000, repeat=5,
                              globals={"instrumentation": instrumentation})) / 1_000_000
    base = statistics.median(rates["off"])
    base_cpu = statistics.median(cpus["off"])
    print(f"\n{args.calls} sequential calls per run, medians of {args.rounds} rounds:")
    for name, values in rates.items():
        median = statistics.median(values)
        cpu = statistics.median(cpus[name])
        print(f"  {name:8} {median:8,.0f} calls/s   ratio to off {median / base:.3f}   "
              f"cpu {cpu:6.0f} us/call   ratio to off {cpu / base_cpu:.3f}")
    print(f"hooks with no observer: {check * 1e9:.0f} ns per call site, 8 sites = "
          f"{8 * check / (1 / base) * 100:.4f}% of a call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
