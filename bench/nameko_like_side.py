"""nameko_like's side of the benchmarks: the same workloads as raw_baseline.py.

``serve-rpc`` runs an echo service, ``serve-events`` an event handler that
prints a count and timestamp every 1,000 events; the RPC client commands
print a JSON line with the rate and the client's CPU time per call.
``bench/run.py`` drives them (and, for the start-up row, runs ``Echo``
through ``python -m nameko_like run nameko_like_side:Echo``).
"""

from __future__ import annotations

import sys

from nameko_like._eventlet import eventlet

# Services always run monkey-patched; clients run as the plain scripts
# Nameko's standalone proxies are documented for, except the 50 green-thread
# callers, which need the patch to be concurrent at all.
# (Only when run as a script: ``nameko_like run nameko_like_side:Echo``
# imports this module for the start-up measurement, and patches by itself.)
if __name__ == "__main__" and (sys.argv[1].startswith("serve") or sys.argv[1] == "rpc-callers"):
    eventlet.monkey_patch()

import json  # noqa: E402
import time  # noqa: E402

from bench_zone import measure_start, measure_stop  # noqa: E402

from nameko_like.containers import ServiceContainer  # noqa: E402
from nameko_like.events import event_handler  # noqa: E402
from nameko_like.rpc import rpc  # noqa: E402
from nameko_like.standalone.events import event_dispatcher  # noqa: E402
from nameko_like.standalone.rpc import ClusterRpcProxy  # noqa: E402


class Echo:
    """Answers echo calls."""

    name = "echo"

    @rpc
    def echo(self, value):
        return value


class Listener:
    """Counts ping events."""

    name = "listener"
    seen = 0

    @event_handler("pinger", "ping")
    def on_ping(self, payload):
        Listener.seen += 1
        if Listener.seen % 1000 == 0:
            print(Listener.seen, time.time(), flush=True)


def config_for(vhost: str) -> dict:
    return {"AMQP_URI": f"amqp://guest:guest@localhost:5672/{vhost.lstrip('/')}" if vhost != "/" else
            "amqp://guest:guest@localhost:5672//"}


def serve(service: type, vhost: str) -> None:
    container = ServiceContainer(service, config_for(vhost))
    container.start()
    print("ready", flush=True)
    container.wait()


WARM_UP_CALLS = 20


def rpc_client(vhost: str, count: int, mode: str, callers: int = 50) -> dict:
    with ClusterRpcProxy(config_for(vhost)) as cluster:
        echo = cluster.echo.echo
        for i in range(WARM_UP_CALLS):  # connection, reply queue, first-use imports
            echo(i)
        start = time.perf_counter()
        cpu_start = time.process_time()
        if mode == "seq":
            measure_start()
            for i in range(count):
                echo(i)
            measure_stop()
        elif mode == "async":
            replies = [echo.call_async(i) for i in range(count)]
            for reply in replies:
                reply.result()
        else:
            per_caller = count // callers
            pool = eventlet.GreenPool(callers)
            for _ in pool.imap(lambda n: [echo(i) for i in range(n)], [per_caller] * callers):
                pass
            count = per_caller * callers
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        return {"rate": count / elapsed, "client_cpu_us": cpu / count * 1e6}


def events_client(vhost: str, count: int) -> None:
    dispatch = event_dispatcher(config_for(vhost))
    outcomes = [dispatch.dispatch_async("pinger", "ping", {"i": i}) for i in range(count)]
    for outcome in outcomes:
        dispatch.wait(outcome, 30)


if __name__ == "__main__":
    command, vhost = sys.argv[1], sys.argv[2]
    if command == "serve-rpc":
        serve(Echo, vhost)
    elif command == "serve-events":
        serve(Listener, vhost)
    elif command == "rpc-seq":
        print(json.dumps(rpc_client(vhost, int(sys.argv[3]), "seq")))
    elif command == "rpc-async":
        print(json.dumps(rpc_client(vhost, int(sys.argv[3]), "async")))
    elif command == "rpc-callers":
        print(json.dumps(rpc_client(vhost, int(sys.argv[3]), "callers", int(sys.argv[4]))))
    elif command == "events":
        events_client(vhost, int(sys.argv[3]))
