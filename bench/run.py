"""Run the AMQP benchmarks: nameko_like beside a raw py-amqp baseline, in one run.

Each workload runs ``--rounds`` times, raw and nameko_like interleaved, each
run in a fresh vhost against the local RabbitMQ; the report gives medians and
the nameko_like / raw ratio. Usage::

    python bench/run.py [--rounds 3] [--quick]

Results are also written as JSON to ``bench/results/amqp.json``.
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

HERE = Path(__file__).resolve().parent
API = "http://guest:guest@localhost:15672/api"
SIDES = {"raw": HERE / "raw_baseline.py", "nameko_like": HERE / "nameko_like_side.py"}


def make_vhost() -> str:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    requests.put(f"{API}/vhosts/{name}", timeout=10).raise_for_status()
    requests.put(f"{API}/permissions/{name}/guest", json={"configure": ".*", "write": ".*", "read": ".*"},
                 timeout=10).raise_for_status()
    return name


def drop_vhost(name: str) -> None:
    requests.delete(f"{API}/vhosts/{name}", timeout=10)


def python(script: Path, *args: str) -> list[str]:
    return [sys.executable, str(script), *args]


def start_server(side: str, command: str, vhost: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    proc = subprocess.Popen(python(SIDES[side], command, vhost), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"{side} {command} did not start: {line!r}")
    return proc


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_client(side: str, args: list[str]) -> float:
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    out = subprocess.run(python(SIDES[side], *args), capture_output=True, text=True, env=env, timeout=300)
    if out.returncode:
        raise RuntimeError(f"{side} {args} failed: {out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def rpc_run(side: str, client_args: list[str]) -> dict:
    vhost = make_vhost()
    server = start_server(side, "serve-rpc", vhost)
    try:
        before = cpu_seconds(server.pid)
        rate = run_client(side, [client_args[0], vhost, *client_args[1:]])
        used = cpu_seconds(server.pid) - before
        return {"rate": rate, "server_cpu_s": used}
    finally:
        server.kill()
        server.wait()
        drop_vhost(vhost)


def events_run(side: str, count: int) -> dict:
    vhost = make_vhost()
    server = start_server(side, "serve-events", vhost)
    try:
        start = time.time()
        env = dict(os.environ, PYTHONPATH=str(HERE.parent))
        client = subprocess.Popen(python(SIDES[side], "events", vhost, str(count)), env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        last = None
        deadline = time.time() + 120
        while time.time() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            seen, stamp = line.split()
            if int(seen) >= count:
                last = float(stamp)
                break
        client.wait(timeout=60)
        if last is None:
            raise RuntimeError(f"{side} events: handler did not see {count} events")
        return {"rate": count / (last - start)}
    finally:
        server.kill()
        server.wait()
        drop_vhost(vhost)


def workloads(quick: bool) -> dict:
    n = 500 if quick else 2000
    burst = 1000 if quick else 5000
    events = 2000 if quick else 10000
    return {
        "sequential RPC (calls/s)": lambda side: rpc_run(side, ["rpc-seq", str(n)]),
        f"{burst} call_async then result (calls/s)": lambda side: rpc_run(side, ["rpc-async", str(burst)]),
        # The raw side of this one is its pipelined burst: a single-threaded
        # py-amqp client has no callers to speak of, and its best concurrent
        # rate is the fairest (strictest) yardstick.
        "50 concurrent callers (calls/s)": lambda side: rpc_run(
            side, ["rpc-callers", str(burst), "50"] if side == "nameko_like" else ["rpc-async", str(burst)]),
        "events end to end (events/s)": lambda side: events_run(side, events),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a smoke run")
    parser.add_argument("--only", help="run only workloads whose name contains this text")
    options = parser.parse_args()
    results: dict[str, dict[str, list[dict]]] = {}
    for name, run in workloads(options.quick).items():
        if options.only and options.only not in name:
            continue
        results[name] = {"raw": [], "nameko_like": []}
        for _ in range(options.rounds):
            for side in ("raw", "nameko_like"):
                results[name][side].append(run(side))
    print(f"{'workload':45} {'raw':>10} {'nameko_like':>12} {'ratio':>7}")
    summary = {}
    for name, sides in results.items():
        raw = statistics.median(r["rate"] for r in sides["raw"])
        ours = statistics.median(r["rate"] for r in sides["nameko_like"])
        summary[name] = {"raw": raw, "nameko_like": ours, "ratio": ours / raw}
        print(f"{name:45} {raw:10.0f} {ours:12.0f} {ours / raw:7.2f}")
        if "server_cpu_s" in sides["raw"][0] and name.startswith("sequential"):
            count = 500 if options.quick else 2000
            raw_cpu = statistics.median(r["server_cpu_s"] for r in sides["raw"]) / count * 1e6
            our_cpu = statistics.median(r["server_cpu_s"] for r in sides["nameko_like"]) / count * 1e6
            summary["service CPU per sequential RPC (us)"] = {"raw": raw_cpu, "nameko_like": our_cpu}
            print(f"{'  service CPU per sequential call (us)':45} {raw_cpu:10.0f} {our_cpu:12.0f}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "amqp.json").write_text(json.dumps({"rounds": options.rounds, "summary": summary,
                                                "runs": results}, indent=2))


if __name__ == "__main__":
    main()
