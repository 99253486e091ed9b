"""Overhead of metrics (and tracing) on sequential RPC, measured in one run.

One service process (``@rpc ping``) per variant, called sequentially by a
``ClusterRpcProxy`` in the same process, variants interleaved round by round
so drift on a shared machine hits them alike:

- ``off``: no observer registered (the framework's hooks cost one tuple test);
- ``metrics``: ``METRICS_ADDRESS`` set (Prometheus metrics kept, endpoint up);
- ``tracing``: ``TRACING`` set (OpenTelemetry spans, SDK provider, no exporter);
- ``both``: metrics and tracing;
- ``both 10%``: metrics and tracing, the SDK sampling 1 trace in 10
  (``ParentBased(TraceIdRatioBased(0.1))``, as production tracing usually runs).

Reported: the median calls/s of each variant and its ratio to ``off``, and
the median CPU time of this process per call (client and service run here;
the broker does not): on a shared machine wall-clock rates swing with the
neighbours' load, CPU time much less.
Tracing variants are skipped when opentelemetry-sdk is missing.

With tracing on, the OpenTelemetry SDK's own work (two spans per round trip,
context injected and extracted) is a cost any instrumentation pays. To tell
it from ours, ``--spans`` times, without a broker, what tracing adds to one
round trip (the hooks, driven as the framework drives them, SDK included)
beside the SDK alone making an equivalent span pair: the same names, kinds,
attributes and propagation.

``--callgrind N`` counts instructions instead (``valgrind --tool=callgrind``,
which the neighbours of a shared machine do not disturb): each variant runs
in a process of its own under valgrind, whose counters are zeroed after the
warm-up and dumped after ``N`` sequential calls (``bench_zone``); reported
is the count per round trip, client and service together. ``--before DIR``
adds the same variants run on the nameko_like of another checkout (e.g. a
``git worktree`` of main), in the same run. ``--sampled RATIO`` sets the
sampling ratio of the ``both`` sampled variant (default 0.1). Usage::

    python bench/bench_operations.py [--rounds 5] [--calls 2000]
    python bench/bench_operations.py --callgrind 500 [--before /tmp/main] [--only off,both]
    python bench/bench_operations.py --spans [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# --tree (the --callgrind child measuring another checkout): that
# checkout's nameko_like, found before this one's
if "--tree" in sys.argv:
    sys.path.insert(0, sys.argv[sys.argv.index("--tree") + 1])

import bench_zone  # noqa: E402 - beside this file

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


#: The process's TracerProvider (a provider is set once per process), whose
#: sampler variants switch; None without the SDK.
PROVIDER: Any = None


def tracing_available() -> bool:
    """Set up a TracerProvider (no exporter); tell whether opentelemetry-sdk is installed."""
    global PROVIDER
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider, sampling

        from nameko_like import tracing  # noqa: F401
    except ImportError:
        return False
    if PROVIDER is None:
        PROVIDER = TracerProvider(sampler=sampling.ALWAYS_ON)
        trace.set_tracer_provider(PROVIDER)
    return True


def set_sampling(ratio: float | None) -> None:
    """Every span recorded, or the production choice: ParentBased(TraceIdRatioBased(ratio)).

    The provider hands its sampler to the tracers it makes, and keeps one
    tracer per instrumentation scope: nameko_like's made by an earlier
    variant is handed out again, so its sampler is set too. Spans meet the
    sampler itself, as in production, not a switching wrapper.
    """
    from opentelemetry.sdk.trace import sampling

    from nameko_like import __version__

    sampler = (sampling.ALWAYS_ON if ratio is None else
               sampling.ParentBased(sampling.TraceIdRatioBased(ratio)))
    PROVIDER.sampler = sampler
    PROVIDER.get_tracer("nameko_like", __version__).sampler = sampler


def run_variant(vhost: str, extra: dict, calls: int) -> tuple[float, float]:
    """Start the service with ``extra`` config, make ``calls`` sequential calls.

    Returns (calls per second, CPU microseconds of this process per call).
    Under ``--callgrind`` the calls are the zone whose instructions count.
    """
    extra = dict(extra)
    sampled = extra.pop("sampled", None)
    if PROVIDER is not None:
        set_sampling(sampled)
    config = {"AMQP_URI": f"amqp://guest:guest@localhost:5672/{vhost}", **extra}
    container = ServiceContainer(Pinged, config)
    container.start()
    try:
        with ClusterRpcProxy(config, timeout=10) as cluster:
            for _ in range(200):  # warm-up
                cluster.pinged.ping()
            bench_zone.measure_start()
            started, cpu_started = time.perf_counter(), time.process_time()
            for _ in range(calls):
                cluster.pinged.ping()
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            bench_zone.measure_stop()
    finally:
        container.stop()
        if extra.get("TRACING"):
            from nameko_like import tracing

            tracing.disable()
    assert instrumentation.observers == (), instrumentation.observers
    return calls / elapsed, cpu / calls * 1e6


class _Delivered:
    """What the RPC entrypoint hands ``worker_spawned``: a delivered request's fields."""

    def __init__(self, headers: dict) -> None:
        self.headers = headers
        self.delivery_info = {"exchange": "nameko-rpc", "routing_key": "pinged.ping",
                              "delivery_tag": 7}
        self.properties = {"correlation_id": CORRELATION_ID, "reply_to": "rpc.reply-x"}
        self.body = b'{"args": [], "kwargs": {}}'


CORRELATION_ID = "5f1c0a6e-7a3e-4a0e-9e0e-1b2c3d4e5f60"


def span_pair_costs(repeat: int, number: int = 20_000) -> tuple[float, float]:
    """Microseconds per round trip: (tracing's hooks, the SDK's equivalent span pair).

    The hooks are run as the framework runs them for one RPC round trip
    (the caller's publish, the callee's worker spawned, started, finished),
    less the same steps with no observer; the bare pair does only what any
    instrumentation must: start and end a PRODUCER span, inject its context,
    extract it, start, attach, detach and end the CONSUMER span, with the
    attributes our spans get.
    """
    import timeit

    from opentelemetry import context, propagate, trace
    from opentelemetry.trace import SpanKind

    from nameko_like import tracing
    from nameko_like.rpc import wire
    from nameko_like.worker_context import WorkerContext

    config = {"AMQP_URI": "amqp://guest:guest@localhost:5672/"}
    container = ServiceContainer(Pinged, config)  # never started: no broker needed
    (entrypoint,) = container.entrypoints
    entrypoint.rpc_consumer.queue = wire.service_queue(config, Pinged.name)

    def round_trip(observed: bool) -> None:
        headers = {"nameko.call_id_stack": ["standalone_rpc_proxy.call.0"]}
        worker_ctx = WorkerContext(container, None, entrypoint, (), {}, data={})
        if observed:
            with instrumentation.publishing("nameko-rpc", "pinged.ping", headers,
                                            CORRELATION_ID):
                pass
            instrumentation.emit("worker_spawned", worker_ctx, _Delivered(headers))
            instrumentation.emit("worker_started", worker_ctx)
            instrumentation.emit("worker_finished", worker_ctx, instrumentation.OK, 0.001)

    producer_attributes = {
        "messaging.system": "rabbitmq", "messaging.operation.type": "send",
        "messaging.operation.name": "publish", "messaging.destination.name":
        "nameko-rpc:pinged.ping", "messaging.rabbitmq.destination.routing_key": "pinged.ping",
        "messaging.message.conversation_id": CORRELATION_ID}
    consumer_attributes = {
        **producer_attributes, "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": "nameko-rpc:pinged.ping:rpc-pinged",
        "messaging.rabbitmq.message.delivery_tag": 7, "messaging.message.body.size": 26,
        "nameko.service": "pinged", "nameko.entrypoint": "ping",
        "nameko.call_id": "pinged.ping.0"}
    tracer = trace.get_tracer("bench")

    def bare_pair() -> None:
        parent = context.get_current()
        span = tracer.start_span("publish nameko-rpc:pinged.ping", parent, SpanKind.PRODUCER,
                                 producer_attributes)
        headers: dict = {}
        propagate.inject(headers, context=trace.set_span_in_context(span, parent))
        span.end()
        remote = propagate.extract(headers)
        span = tracer.start_span("process nameko-rpc:pinged.ping:rpc-pinged", remote,
                                 SpanKind.CONSUMER, consumer_attributes)
        token = context.attach(trace.set_span_in_context(span, remote))
        context.detach(token)
        span.end()

    def best(fn: Callable[[], None]) -> float:
        return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6

    unobserved = best(lambda: round_trip(False))
    tracing.enable()
    try:
        hooks = best(lambda: round_trip(True)) - unobserved
    finally:
        tracing.disable()
    return hooks, best(bare_pair)


def variants_to_run(sampled: float) -> dict[str, dict]:
    """The variants by name: the config each adds (``sampled``: the sampling ratio)."""
    variants: dict[str, dict] = {"off": {}, "metrics": {"METRICS_ADDRESS": "127.0.0.1:0"}}
    if tracing_available():
        variants["tracing"] = {"TRACING": True}
        variants["both"] = {"METRICS_ADDRESS": "127.0.0.1:0", "TRACING": True}
        # what production runs: 1 trace in 10 (say) kept, the others not recorded
        variants[f"both {sampled:.0%}"] = {"METRICS_ADDRESS": "127.0.0.1:0", "TRACING": True,
                                           "sampled": sampled}
    return variants


def callgrind_child(variant: str, calls: int, sampled: float) -> int:
    """Run one variant in this process, which runs under valgrind (``--child``)."""
    vhost = make_vhost()
    try:
        run_variant(vhost, variants_to_run(sampled)[variant], calls)
    finally:
        requests.delete(f"{API}/vhosts/{vhost}", timeout=10)
    return 0


def callgrind_instructions(variant: str, calls: int, sampled: float, tree: str | None) -> float:
    """Instructions per round trip of ``variant`` (on the nameko_like of ``tree``, if given)."""
    with tempfile.TemporaryDirectory(prefix="bench-ops-cg-") as out_dir:
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_dir}/cg",
                   sys.executable, __file__, "--child", variant, "--calls", str(calls),
                   "--sampled", str(sampled), *(["--tree", tree] if tree else [])]
        subprocess.run(command, check=True, capture_output=True, timeout=1800,
                       env={**os.environ, "BENCH_CALLGRIND_PID": "self"})
        for line in Path(out_dir, "cg.1").read_text().splitlines():
            if line.startswith("totals:"):
                return int(line.split()[1]) / calls
    raise RuntimeError(f"no totals in the dump of {variant}")


def callgrind_table(calls: int, sampled: float, before: str | None, only: list[str]) -> int:
    """Print instructions per round trip of each variant (and of ``before``'s)."""
    names = [name for name in variants_to_run(sampled) if not only or name in only]
    trees: dict[str, str | None] = {"after": None}
    if before:
        trees = {"before": before, **trees}
    counts: dict[str, dict[str, float]] = {tree: {} for tree in trees}
    for name in names:  # interleaved: the trees' runs of a variant side by side
        for label, tree in trees.items():
            counts[label][name] = callgrind_instructions(name, calls, sampled, tree)
            print(f"{label:6} {name:9} {counts[label][name] / 1e6:.3f} M", flush=True)
    print(f"\ninstructions per sequential RPC round trip ({calls} calls, callgrind):")
    print(f"  {'variant':9}" + "".join(f"  {label:>16}" for label in trees))
    for name in names:
        cells = []
        for label in trees:
            off = counts[label].get("off")
            ratio = f" {counts[label][name] / off:.3f}x" if off else ""
            cells.append(f"  {counts[label][name] / 1e6:8.3f} M{ratio:7}")
        print(f"  {name:9}" + "".join(cells))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--spans", action="store_true",
                        help="tracing's hooks vs the SDK's bare span pair, no broker")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--sampled", type=float, default=0.1,
                        help="sampling ratio of the sampled variant (default 0.1)")
    parser.add_argument("--callgrind", type=int, metavar="N", default=0,
                        help="count instructions per round trip over N calls per variant")
    parser.add_argument("--before", metavar="DIR",
                        help="with --callgrind: also measure the nameko_like of checkout DIR")
    parser.add_argument("--only", default="",
                        help="with --callgrind: comma-separated variants to run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        return callgrind_child(args.child, args.calls, args.sampled)
    if args.callgrind:
        return callgrind_table(args.callgrind, args.sampled, args.before,
                               [name for name in args.only.split(",") if name])

    if args.spans:
        if not tracing_available():
            print("--spans needs opentelemetry-sdk", file=sys.stderr)
            return 1
        hooks, bare = span_pair_costs(args.repeat)
        print(f"per RPC round trip: tracing's hooks {hooks:.1f} us, the SDK's bare span "
              f"pair {bare:.1f} us, ours beyond the SDK {hooks - bare:.1f} us")
        return 0

    variants = variants_to_run(args.sampled)
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
        print(f"  {name:9} {median:8,.0f} calls/s   ratio to off {median / base:.3f}   "
              f"cpu {cpu:6.0f} us/call   ratio to off {cpu / base_cpu:.3f}")
    print(f"hooks with no observer: {check * 1e9:.0f} ns per call site, 8 sites = "
          f"{8 * check / (1 / base) * 100:.4f}% of a call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
