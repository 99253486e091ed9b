"""Cost of an ``async def`` handler against a sync one, in one run, on the asyncio hub.

One service with the same method twice, ``def`` and ``async def``; the
variants interleave round by round so drift on a shared machine hits them
alike:

- ``worker``: workers spawned straight on the container (no broker), one at
  a time, each awaited: what the worker itself costs;
- ``rpc``: sequential calls through a ``ClusterRpcProxy`` in this process to
  the service on the local RabbitMQ: what a caller sees.

Each round also runs the sync handlers in a child process on eventlet's
default hub (``--no-default-hub`` skips it): the cost of step 1 of
docs/migrating_off_eventlet.rst, moving to the asyncio hub at all.

Reported: the median CPU microseconds of this process per call (client and
service run here; the broker does not) and per-call wall time, with the
async / sync ratio. CPU time swings far less with the neighbours' load than
wall time. Usage::

    EVENTLET_HUB=asyncio python bench/bench_async.py [--rounds 5] [--calls 1000]

(the script sets ``EVENTLET_HUB=asyncio`` itself when it is not set).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

if "--default-hub-child" not in sys.argv:  # the child measures the default hub
    os.environ.setdefault("EVENTLET_HUB", "asyncio")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nameko_like._eventlet import eventlet

eventlet.monkey_patch()

from nameko_like.amqp.publish_channel import get_publish_channel  # noqa: E402
from nameko_like.asyncio_support import is_asyncio_hub  # noqa: E402
from nameko_like.containers import ServiceContainer  # noqa: E402
from nameko_like.rpc import Rpc, rpc  # noqa: E402
from nameko_like.standalone.rpc import ClusterRpcProxy  # noqa: E402
from nameko_like.testing.utils import get_extension  # noqa: E402

API = "http://guest:guest@localhost:15672/api"


class Both:
    name = "bench_async"

    @rpc
    def sync_ping(self) -> str:
        return "pong"

    @rpc
    async def async_ping(self) -> str:
        return "pong"


class SyncOnly:
    """What the default-hub child runs: it would refuse ``Both``."""

    name = "bench_async"

    @rpc
    def sync_ping(self) -> str:
        return "pong"


def make_vhost() -> str:
    name = f"bench-async-{uuid.uuid4().hex[:8]}"
    requests.put(f"{API}/vhosts/{name}", timeout=10).raise_for_status()
    requests.put(f"{API}/permissions/{name}/guest",
                 json={"configure": ".*", "write": ".*", "read": ".*"},
                 timeout=10).raise_for_status()
    return name


def measure(run_one, calls: int) -> tuple[float, float]:
    """(CPU us per call, wall us per call) of ``calls`` runs of ``run_one``."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        run_one()
    return ((time.process_time() - cpu) / calls * 1e6,
            (time.perf_counter() - wall) / calls * 1e6)


def worker_runner(container: ServiceContainer, method: str):
    entrypoint = get_extension(container, Rpc, method_name=method)

    def run_one() -> None:
        done = eventlet.event.Event()

        def handle_result(worker_ctx, result, exc_info):
            done.send(result)
            return result, exc_info

        container.spawn_worker(entrypoint, (), {}, handle_result=handle_result)
        done.wait()

    return run_one


KINDS = {"sync": "sync_ping", "async": "async_ping"}
#: the child process's label: sync handlers on eventlet's default hub
DEFAULT_HUB = "sync, default hub"


def run_rounds(rounds: int, kinds: list[str], calls: int, workers: int,
               between_rounds=None) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """Measure ``kinds`` of handler, interleaved, ``rounds`` times."""
    vhost = make_vhost()
    config = {"AMQP_URI": f"amqp://guest:guest@localhost:5672/{vhost}"}
    container = ServiceContainer(Both if "async" in kinds else SyncOnly, config)
    container.start()
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    try:
        with ClusterRpcProxy(config, timeout=10) as cluster:
            service = cluster.bench_async
            runners = {}
            for workload in ("worker", "rpc"):
                for kind in kinds:
                    runners[(workload, kind)] = (
                        (worker_runner(container, KINDS[kind]), workers) if workload == "worker"
                        else (getattr(service, KINDS[kind]), calls))
            for run_one, _ in runners.values():  # warm up: connections, queues
                for _ in range(50):
                    run_one()
            for number in range(1, rounds + 1):
                for key, (run_one, count) in runners.items():
                    cpu, wall = measure(run_one, count)
                    samples.setdefault(key, []).append((cpu, wall))
                    print(f"round {number} {key[0]:6} {key[1]:5}: "
                          f"{cpu:8.1f} us CPU/call, {wall:8.1f} us wall/call",
                          flush=True, file=sys.stderr)
                if between_rounds is not None:
                    between_rounds(samples)
    finally:
        container.stop()
        get_publish_channel(config).close()  # before its vhost goes
        requests.delete(f"{API}/vhosts/{vhost}", timeout=10)
    return samples


def default_hub_round(args: argparse.Namespace, samples: dict) -> None:
    """One round of sync handlers in a child process on eventlet's default hub."""
    env = {name: value for name, value in os.environ.items() if name != "EVENTLET_HUB"}
    out = subprocess.run(
        [sys.executable, __file__, "--default-hub-child", "--calls", str(args.calls),
         "--workers", str(args.workers)],
        capture_output=True, text=True, env=env, timeout=600, check=True)
    for workload, (cpu, wall) in json.loads(out.stdout.splitlines()[-1]).items():
        samples.setdefault((workload, DEFAULT_HUB), []).append((cpu, wall))
        print(f"        {workload:6} {DEFAULT_HUB}: {cpu:8.1f} us CPU/call, "
              f"{wall:8.1f} us wall/call", flush=True, file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1000, help="RPC calls per round and variant")
    parser.add_argument("--workers", type=int, default=10000,
                        help="bare workers per round and variant")
    parser.add_argument("--no-default-hub", action="store_true",
                        help="skip the sync handlers on the default hub (a child process)")
    parser.add_argument("--default-hub-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.default_hub_child:
        samples = run_rounds(1, ["sync"], args.calls, args.workers)
        print(json.dumps({workload: values[0] for (workload, _), values in samples.items()}))
        return
    if not is_asyncio_hub():
        sys.exit("bench_async.py needs eventlet's asyncio hub: run with EVENTLET_HUB=asyncio")

    between = None if args.no_default_hub else (lambda samples: default_hub_round(args, samples))
    samples = run_rounds(args.rounds, ["sync", "async"], args.calls, args.workers, between)

    print(f"medians of {args.rounds} rounds (Python {sys.version.split()[0]}, "
          f"eventlet {eventlet.__version__}); 'sync'/'async' on the asyncio hub:")
    print(f"{'workload':8} {'handler':20} {'CPU us/call':>12} {'wall us/call':>13}")
    for workload in ("worker", "rpc"):
        medians = {}
        for kind in ("sync", "async", DEFAULT_HUB):
            if (workload, kind) not in samples:
                continue
            cpus, walls = zip(*samples[(workload, kind)], strict=True)
            medians[kind] = (statistics.median(cpus), statistics.median(walls))
            print(f"{workload:8} {kind:20} {medians[kind][0]:12.1f} {medians[kind][1]:13.1f}")
        print(f"{workload:8} {'async / sync':20} {medians['async'][0] / medians['sync'][0]:12.2f} "
              f"{medians['async'][1] / medians['sync'][1]:13.2f}")
        if DEFAULT_HUB in medians:
            base = medians[DEFAULT_HUB]
            print(f"{workload:8} {'sync, asyncio/default':20} "
                  f"{medians['sync'][0] / base[0]:12.2f} {medians['sync'][1] / base[1]:13.2f}")


if __name__ == "__main__":
    main()
