"""Concurrent publishers and their confirms: 50 ``EventDispatcher`` users vs py-amqp.

Two sides publish the same persistent, ``mandatory``, confirmed events to a
durable topic exchange with one durable queue bound (nobody consumes it, so
only publishing is measured), each in a fresh vhost of the local RabbitMQ
and in a subprocess of its own, interleaved round by round:

* ``raw``: the minimal single-threaded py-amqp program, pipelined: it
  writes every publish, then reads the broker's ``basic.ack`` frames
  (``multiple`` ones included) until all are confirmed;
* ``nameko_like``: a service container (``max_workers`` 50) whose entrypoint
  dispatches events one after the other through an ``EventDispatcher``,
  each ``dispatch`` returning only once its event is confirmed, run by 50
  workers at once (``entrypoint_hook`` from 50 greenthreads).

The rate is events confirmed per second; the report gives medians and the
nameko_like / raw ratio. Usage::

    .venv/bin/python bench/bench_confirms.py [--rounds 3] [--events 10000] [--users 50]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
API = "http://guest:guest@localhost:15672/api"
EXCHANGE = "pinger.events"  # the exchange EventDispatcher uses for service "pinger"
ROUTING_KEY = "ping"
QUEUE = "bench-confirms"


def make_vhost() -> str:
    """A fresh vhost the guest user may use."""
    name = f"bench-confirms-{uuid.uuid4().hex[:8]}"
    requests.put(f"{API}/vhosts/{name}", timeout=10).raise_for_status()
    requests.put(f"{API}/permissions/{name}/guest",
                 json={"configure": ".*", "write": ".*", "read": ".*"},
                 timeout=10).raise_for_status()
    return name


def drop_vhost(name: str) -> None:
    """Delete ``name`` (and its queue full of events)."""
    requests.delete(f"{API}/vhosts/{name}", timeout=30)


def declare(vhost: str) -> None:
    """The exchange and one bound queue, so that mandatory events are routed."""
    import amqp

    connection = amqp.Connection(host="localhost:5672", userid="guest", password="guest",
                                 virtual_host=vhost)
    connection.connect()
    channel = connection.channel()
    channel.exchange_declare(EXCHANGE, "topic", durable=True, auto_delete=False)
    channel.queue_declare(QUEUE, durable=True, auto_delete=False)
    channel.queue_bind(QUEUE, EXCHANGE, ROUTING_KEY)
    connection.close()


def cpu_seconds() -> float:
    """CPU time (user + system) this process has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def raw_side(vhost: str, count: int) -> tuple[float, float]:
    """Minimal py-amqp program: publish ``count`` events pipelined, wait for every confirm."""
    import json

    import amqp

    connection = amqp.Connection(host="localhost:5672", userid="guest", password="guest",
                                 virtual_host=vhost)
    connection.connect()
    channel = connection.channel()
    channel.confirm_select()
    state = {"confirmed": 0, "returned": 0}

    def on_ack(tag: int, multiple: bool) -> None:
        state["confirmed"] = tag if multiple else state["confirmed"] + 1

    channel.events["basic_ack"].add(on_ack)
    channel.events["basic_return"].add(lambda *args: state.__setitem__("returned", 1))
    start, cpu = time.perf_counter(), cpu_seconds()
    for i in range(count):
        message = amqp.Message(json.dumps({"i": i}), content_type="application/json",
                               delivery_mode=2)
        channel.basic_publish(message, EXCHANGE, ROUTING_KEY, mandatory=True)
    while state["confirmed"] < count:
        connection.drain_events()
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    connection.close()
    assert not state["returned"]
    return count / elapsed, cpu / count


def nameko_like_side(vhost: str, count: int, users: int) -> tuple[float, float]:
    """``users`` workers of one container dispatching ``count`` events between them."""
    from nameko_like._eventlet import eventlet

    eventlet.monkey_patch()

    from nameko_like.containers import ServiceContainer
    from nameko_like.events import EventDispatcher
    from nameko_like.testing.services import entrypoint_hook
    from nameko_like.timer import timer

    class Pinger:
        name = "pinger"
        dispatch = EventDispatcher()

        @timer(interval=3600)  # an entrypoint to hook; it never fires in the run
        def fire(self, n: int = 0) -> None:
            for i in range(n):
                self.dispatch(ROUTING_KEY, {"i": i})

    config = {"AMQP_URI": f"amqp://guest:guest@localhost:5672/{vhost}", "max_workers": users}
    container = ServiceContainer(Pinger, config)
    container.start()
    try:
        with entrypoint_hook(container, "fire", timeout=300) as fire:
            fire(1)  # warm up: connection, exchange declared
            per_user = count // users
            pool = eventlet.GreenPool(users)
            start, cpu = time.perf_counter(), cpu_seconds()
            for _ in pool.imap(fire, [per_user] * users):
                pass
            elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    finally:
        container.stop()
    return per_user * users / elapsed, cpu / (per_user * users)


def run_side(side: str, count: int, users: int) -> tuple[float, float]:
    """One measured run of ``side`` in a fresh vhost, in a subprocess:
    events per second, and the publishing process's CPU seconds per event."""
    vhost = make_vhost()
    try:
        declare(vhost)
        env = dict(os.environ, PYTHONPATH=str(HERE.parent))
        out = subprocess.run([sys.executable, __file__, "--side", side, "--vhost", vhost,
                              "--events", str(count), "--users", str(users)],
                             capture_output=True, text=True, env=env, timeout=600)
        if out.returncode:
            raise RuntimeError(f"{side} failed: {out.stderr[-2000:]}")
        rate, cpu = out.stdout.strip().splitlines()[-1].split()
        return float(rate), float(cpu)
    finally:
        drop_vhost(vhost)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--side", choices=("raw", "nameko_like"), help=argparse.SUPPRESS)
    parser.add_argument("--vhost", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.side == "raw":
        print(*raw_side(options.vhost, options.events))
        return
    if options.side == "nameko_like":
        print(*nameko_like_side(options.vhost, options.events, options.users))
        return
    runs: dict[str, list[tuple[float, float]]] = {"raw": [], "nameko_like": []}
    for round_ in range(options.rounds):
        for side, results in runs.items():
            results.append(run_side(side, options.events, options.users))
        print(f"round {round_ + 1}: raw {runs['raw'][-1][0]:.0f}/s, "
              f"nameko_like {runs['nameko_like'][-1][0]:.0f}/s", flush=True)
    raw, ours = (statistics.median(rate for rate, _ in runs[side]) for side in runs)
    raw_cpu, our_cpu = (statistics.median(cpu for _, cpu in runs[side]) * 1e6 for side in runs)
    print(f"{'side':40} {'events/s':>10} {'CPU/event':>10}")
    print(f"{'raw py-amqp, pipelined':40} {raw:10.0f} {raw_cpu:8.0f}us")
    print(f"{f'nameko_like, {options.users} EventDispatcher users':40} {ours:10.0f} "
          f"{our_cpu:8.0f}us")
    print(f"{'ratio':40} {ours / raw:10.2f}")


if __name__ == "__main__":
    main()
