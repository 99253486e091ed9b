"""Cost of validation on sequential RPC: validated vs unvalidated, in one run.

Two copies of one service (``@rpc book(journey: Journey, priority: int)
-> Booked``, a pydantic model with a list of dataclasses, and a TypedDict
result), one ``@validated`` and one not, called sequentially by a
``ClusterRpcProxy`` in the same process with the same JSON payload;
variants interleaved round by round so drift on a shared machine hits them
alike. Also ``typed``: the validated service called through a validating
typed client (client-side check and encoding too).

Reported: median calls/s of each variant and its ratio to ``plain``, and
the median CPU time of this process per call (client and service both run
here). Usage::

    python bench/bench_contracts.py [--rounds 5] [--calls 2000]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nameko_like._eventlet import eventlet

eventlet.monkey_patch()

from pydantic import BaseModel  # noqa: E402
from typing_extensions import TypedDict  # noqa: E402

from nameko_like.containers import ServiceContainer  # noqa: E402
from nameko_like.contracts import validated  # noqa: E402
from nameko_like.contracts.clients import typed  # noqa: E402
from nameko_like.rpc import rpc  # noqa: E402
from nameko_like.standalone.rpc import ClusterRpcProxy  # noqa: E402

API = "http://guest:guest@localhost:15672/api"


@dataclasses.dataclass
class Leg:
    origin: str
    destination: str
    minutes: int = 60


class Journey(BaseModel):
    traveller: str
    legs: list[Leg]


class Booked(TypedDict):
    reference: str
    legs: int


class Plain:
    name = "plain_bookings"

    @rpc
    def book(self, journey: Journey, priority: int = 0) -> Booked:
        legs = journey["legs"] if isinstance(journey, dict) else journey.legs
        return {"reference": "r", "legs": len(legs)}


@validated
class Checked(Plain):
    name = "checked_bookings"


PAYLOAD = {"traveller": "ann", "legs": [{"origin": "LHR", "destination": "JFK"},
                                        {"origin": "JFK", "destination": "SFO", "minutes": 90}]}


def make_vhost() -> str:
    name = f"bench-contracts-{uuid.uuid4().hex[:8]}"
    requests.put(f"{API}/vhosts/{name}", timeout=10).raise_for_status()
    requests.put(f"{API}/permissions/{name}/guest",
                 json={"configure": ".*", "write": ".*", "read": ".*"},
                 timeout=10).raise_for_status()
    return name


def run_variant(config: dict, variant: str, calls: int) -> tuple[float, float]:
    """``calls`` sequential calls; (calls per second, CPU microseconds per call)."""
    service = Plain if variant == "plain" else Checked
    container = ServiceContainer(service, config)
    container.start()
    try:
        with ClusterRpcProxy(config, timeout=10) as cluster:
            proxy = getattr(cluster, service.name)
            if variant == "typed":
                proxy = typed(proxy, Checked, validate=True)
                payload: object = Journey.model_validate(PAYLOAD)
            else:
                payload = PAYLOAD
            for _ in range(200):  # warm-up
                assert proxy.book(payload, 1)["legs"] == 2
            started, cpu_started = time.perf_counter(), time.process_time()
            for _ in range(calls):
                proxy.book(payload, 1)
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
    finally:
        container.stop()
    return calls / elapsed, cpu / calls * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    variants = ("plain", "validated", "typed")
    vhost = make_vhost()
    config = {"AMQP_URI": f"amqp://guest:guest@localhost:5672/{vhost}"}
    rates: dict[str, list[float]] = {name: [] for name in variants}
    cpus: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for round_no in range(1, args.rounds + 1):
            line = []
            for name in variants:
                rate, cpu = run_variant(config, name, args.calls)
                rates[name].append(rate)
                cpus[name].append(cpu)
                line.append(f"{name} {rate:,.0f}/s {cpu:.0f} us cpu")
            print(f"round {round_no}: " + ", ".join(line), flush=True)
    finally:
        requests.delete(f"{API}/vhosts/{vhost}", timeout=10)
    base = statistics.median(rates["plain"])
    base_cpu = statistics.median(cpus["plain"])
    print(f"\n{args.calls} sequential calls per run, medians of {args.rounds} rounds:")
    for name in variants:
        median = statistics.median(rates[name])
        cpu = statistics.median(cpus[name])
        print(f"  {name:10} {median:8,.0f} calls/s   ratio to plain {median / base:.3f}   "
              f"cpu {cpu:6.0f} us/call   ratio to plain {cpu / base_cpu:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
