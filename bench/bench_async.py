"""Cost of an ``async def`` handler against a sync one, in one run, on the asyncio hub.

One service with the same method twice, ``def`` and ``async def``; the
variants interleave round by round so drift on a shared machine hits them
alike:

- ``worker``: workers spawned straight on the container (no broker), one at
  a time, each awaited: what the worker itself costs;
- ``rpc``: sequential calls through a ``ClusterRpcProxy`` in this process to
  the service on the local RabbitMQ: what a caller sees.

Reported: the median CPU microseconds of this process per call (client and
service run here; the broker does not) and per-call wall time, with the
async / sync ratio. CPU time swings far less with the neighbours' load than
wall time. Usage::

    EVENTLET_HUB=asyncio python bench/bench_async.py [--rounds 5] [--calls 1000]

(the script sets ``EVENTLET_HUB=asyncio`` itself when it is not set).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import requests

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1000, help="RPC calls per round and variant")
    parser.add_argument("--workers", type=int, default=10000,
                        help="bare workers per round and variant")
    args = parser.parse_args()
    if not is_asyncio_hub():
        sys.exit("bench_async.py needs eventlet's asyncio hub: run with EVENTLET_HUB=asyncio")

    vhost = make_vhost()
    config = {"AMQP_URI": f"amqp://guest:guest@localhost:5672/{vhost}"}
    container = ServiceContainer(Both, config)
    container.start()
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    try:
        with ClusterRpcProxy(config, timeout=10) as cluster:
            service = cluster.bench_async
            runners = {
                ("worker", "sync"): (worker_runner(container, "sync_ping"), args.workers),
                ("worker", "async"): (worker_runner(container, "async_ping"), args.workers),
                ("rpc", "sync"): (service.sync_ping, args.calls),
                ("rpc", "async"): (service.async_ping, args.calls),
            }
            for run_one, _ in runners.values():  # warm up: connections, queues
                for _ in range(50):
                    run_one()
            for number in range(1, args.rounds + 1):
                for key, (run_one, calls) in runners.items():
                    cpu, wall = measure(run_one, calls)
                    samples.setdefault(key, []).append((cpu, wall))
                    print(f"round {number} {key[0]:6} {key[1]:5}: "
                          f"{cpu:8.1f} us CPU/call, {wall:8.1f} us wall/call", flush=True)
    finally:
        container.stop()
        get_publish_channel(config).close()  # before its vhost goes
        requests.delete(f"{API}/vhosts/{vhost}", timeout=10)

    print(f"\nmedians of {args.rounds} rounds (asyncio hub, Python "
          f"{sys.version.split()[0]}, eventlet {eventlet.__version__}):")
    print(f"{'workload':8} {'handler':7} {'CPU us/call':>12} {'wall us/call':>13}")
    for workload in ("worker", "rpc"):
        medians = {}
        for kind in ("sync", "async"):
            cpus, walls = zip(*samples[(workload, kind)], strict=True)
            medians[kind] = (statistics.median(cpus), statistics.median(walls))
            print(f"{workload:8} {kind:7} {medians[kind][0]:12.1f} {medians[kind][1]:13.1f}")
        print(f"{workload:8} {'ratio':7} {medians['async'][0] / medians['sync'][0]:12.2f} "
              f"{medians['async'][1] / medians['sync'][1]:13.2f}")


if __name__ == "__main__":
    main()
