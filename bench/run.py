"""Run the AMQP benchmarks: nameko_like beside a raw py-amqp baseline, in one run.

Each workload runs ``--rounds`` times, raw and nameko_like interleaved, each
run in a fresh vhost against the local RabbitMQ; the report gives medians,
the nameko_like / raw ratio and the goal of each row (issue 17). Usage::

    python bench/run.py [--rounds 3] [--quick] [--only TEXT] [--callgrind] [--callgrind-keep DIR]

``--callgrind`` adds instruction counts per sequential call, service side and
client side, measured under ``valgrind --tool=callgrind`` (stable on a busy
machine, unlike wall-clock rates); ``--only callgrind`` runs just those.
Results are also written as JSON to ``bench/results/amqp.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable

import requests

HERE = Path(__file__).resolve().parent
API = "http://guest:guest@localhost:15672/api"
SIDES = {"raw": HERE / "raw_baseline.py", "nameko_like": HERE / "nameko_like_side.py"}
RPC_EXCHANGES = {"raw": "bench-raw-rpc", "nameko_like": "nameko-rpc"}
ENV = dict(os.environ, PYTHONPATH=str(HERE.parent))
# (kind, bound): "ratio" rows compare nameko_like / raw, "absolute" rows nameko_like alone.
GOALS: dict[str, tuple[str, str, float]] = {
    "sequential RPC (calls/s)": ("ratio", ">=", 0.85),
    "  service CPU per sequential call (us)": ("ratio", "<=", 1.5),
    "  client CPU per sequential call (us)": ("ratio", "<=", 1.3),
    "call_async then result (calls/s)": ("ratio", ">=", 0.8),
    "50 concurrent callers (calls/s)": ("ratio", ">=", 0.7),
    "start to first answer (s)": ("absolute", "<=", 0.25),
    "idle RSS of the service (MB)": ("absolute", "<=", 40.0),
}


def make_vhost() -> str:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    requests.put(f"{API}/vhosts/{name}", timeout=10).raise_for_status()
    requests.put(f"{API}/permissions/{name}/guest", json={"configure": ".*", "write": ".*", "read": ".*"},
                 timeout=10).raise_for_status()
    return name


def drop_vhost(name: str) -> None:
    requests.delete(f"{API}/vhosts/{name}", timeout=10)


def broker_uri(vhost: str) -> str:
    return f"amqp://guest:guest@localhost:5672/{vhost}"


def python(script: Path, *args: str) -> list[str]:
    return [sys.executable, str(script), *args]


def callgrind(out_dir: str) -> list[str]:
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_dir}/cg.%p"]


def start_server(side: str, command: str, vhost: str, prefix: list[str] | None = None) -> subprocess.Popen:
    proc = subprocess.Popen([*(prefix or []), *python(SIDES[side], command, vhost)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=ENV)
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"{side} {command} did not start: {line!r}")
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def run_client(side: str, args: list[str], prefix: list[str] | None = None, env: dict | None = None) -> dict:
    out = subprocess.run([*(prefix or []), *python(SIDES[side], *args)], capture_output=True, text=True,
                         env={**ENV, **(env or {})}, timeout=900)
    if out.returncode:
        raise RuntimeError(f"{side} {args} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def rpc_run(side: str, client_args: list[str]) -> dict:
    vhost = make_vhost()
    server = start_server(side, "serve-rpc", vhost)
    try:
        before = cpu_seconds(server.pid)
        result = run_client(side, [client_args[0], vhost, *client_args[1:]])
        result["server_cpu_s"] = cpu_seconds(server.pid) - before
        return result
    finally:
        stop(server)
        drop_vhost(vhost)


def events_run(side: str, count: int) -> dict:
    vhost = make_vhost()
    server = start_server(side, "serve-events", vhost)
    try:
        start = time.time()
        client = subprocess.Popen(python(SIDES[side], "events", vhost, str(count)), env=ENV,
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
        stop(server)
        drop_vhost(vhost)


def compile_bytecode() -> None:
    """Byte-compile nameko_like and the bench's modules, as installing a package does.

    An editable checkout run with ``PYTHONDONTWRITEBYTECODE`` set (as
    development shells often are) would otherwise compile every nameko_like
    module from source at each start, which no installed service does.
    """
    import compileall

    for directory in (HERE.parent / "nameko_like", HERE):
        compileall.compile_dir(directory, quiet=1)


def startup_run(side: str) -> dict:
    """Seconds from starting the service process to its first RPC reply, then its idle RSS.

    nameko_like runs as operators run it, ``python -m nameko_like run``; a
    probe, connected beforehand, publishes a request until the broker routes
    it and stamps the reply. The service's CPU time up to then is read too:
    unlike the wall-clock time, it hardly depends on what else the machine
    runs.
    """
    compile_bytecode()
    vhost = make_vhost()
    probe = subprocess.Popen(python(SIDES["raw"], "probe", vhost, RPC_EXCHANGES[side]), env=ENV, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    service = None
    try:
        if probe.stdout.readline().strip() != "ready":
            raise RuntimeError("first-answer probe did not start")
        if side == "raw":
            command = python(SIDES["raw"], "serve-rpc", vhost)
        else:
            command = [sys.executable, "-m", "nameko_like", "run", "nameko_like_side:Echo",
                       "--broker", broker_uri(vhost)]
        started = time.time()
        service = subprocess.Popen(command, cwd=HERE, env=ENV, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        probe.stdin.write("go\n")
        probe.stdin.flush()
        deadline = time.time() + 60
        while not select.select([probe.stdout], [], [], 0.5)[0]:
            if service.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{side} service exited ({service.poll()}) or never answered")
        answered = float(probe.stdout.readline())
        cpu_to_answer = cpu_seconds(service.pid)
        time.sleep(2)  # idle: connections up, nothing to do
        return {"first_answer_s": answered - started, "cpu_to_first_answer_s": cpu_to_answer,
                "idle_rss_mb": rss_mb(service.pid)}
    finally:
        for proc in (probe, service):
            if proc is not None:
                stop(proc)
        drop_vhost(vhost)


def callgrind_run(side: str, measured: str, calls: int, keep: str | None = None) -> dict:
    """Instructions per sequential call in the service (``measured="service"``) or the client.

    With ``keep`` (a directory), the dump is copied there as
    ``<side>-<measured>.callgrind`` for ``callgrind_annotate``.
    """
    vhost = make_vhost()
    with tempfile.TemporaryDirectory(prefix="bench-cg-") as out_dir:
        prefix = callgrind(out_dir)
        server = start_server(side, "serve-rpc", vhost, prefix if measured == "service" else None)
        try:
            if measured == "service":
                run_client(side, ["rpc-seq", vhost, str(calls)], env={"BENCH_CALLGRIND_PID": str(server.pid)})
            else:
                run_client(side, ["rpc-seq", vhost, str(calls)], prefix, env={"BENCH_CALLGRIND_PID": "self"})
        finally:
            stop(server)
            drop_vhost(vhost)
        dumps = list(Path(out_dir).glob("cg.*.1"))
        if len(dumps) != 1:
            raise RuntimeError(f"expected one callgrind dump, found {dumps}")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(dumps[0], Path(keep) / f"{side}-{measured}.callgrind")
        for line in dumps[0].read_text().splitlines():
            if line.startswith("totals:"):
                return {"instructions_per_call": int(line.split()[1]) / calls}
    raise RuntimeError(f"no totals in {dumps[0]}")


def workloads(quick: bool, with_callgrind: bool, cg_calls: int, cg_keep: str | None = None) -> dict[str, Callable[[str], dict]]:
    n = 500 if quick else 2000
    burst = 1000 if quick else 5000
    events = 2000 if quick else 10000
    chosen: dict[str, Callable[[str], dict]] = {
        "sequential RPC (calls/s)": lambda side: rpc_run(side, ["rpc-seq", str(n)]),
        "call_async then result (calls/s)": lambda side: rpc_run(side, ["rpc-async", str(burst)]),
        # The raw side of this one is its pipelined burst: a single-threaded
        # py-amqp client has no callers to speak of, and its best concurrent
        # rate is the fairest (strictest) yardstick.
        "50 concurrent callers (calls/s)": lambda side: rpc_run(
            side, ["rpc-callers", str(burst), "50"] if side == "nameko_like" else ["rpc-async", str(burst)]),
        "events end to end (events/s)": lambda side: events_run(side, events),
        "start-up and idle memory": startup_run,
    }
    if with_callgrind:
        chosen["callgrind: service instructions per call"] = lambda side: callgrind_run(side, "service", cg_calls, cg_keep)
        chosen["callgrind: client instructions per call"] = lambda side: callgrind_run(side, "client", cg_calls, cg_keep)
    return chosen


def rows_of(name: str, sides: dict[str, list[dict]], seq_calls: int) -> list[tuple[str, float, float]]:
    """The report rows of one workload: (row name, raw median, nameko_like median)."""
    def median(side: str, key: str) -> float:
        return statistics.median(r[key] for r in sides[side])

    if name.startswith("start-up"):
        return [("start to first answer (s)", median("raw", "first_answer_s"), median("nameko_like", "first_answer_s")),
                ("  service CPU to first answer (s)", median("raw", "cpu_to_first_answer_s"),
                 median("nameko_like", "cpu_to_first_answer_s")),
                ("idle RSS of the service (MB)", median("raw", "idle_rss_mb"), median("nameko_like", "idle_rss_mb"))]
    if name.startswith("callgrind"):
        return [(name, median("raw", "instructions_per_call"), median("nameko_like", "instructions_per_call"))]
    rows = [(name, median("raw", "rate"), median("nameko_like", "rate"))]
    if name.startswith("sequential"):
        rows.append(("  service CPU per sequential call (us)", median("raw", "server_cpu_s") / seq_calls * 1e6,
                     median("nameko_like", "server_cpu_s") / seq_calls * 1e6))
        rows.append(("  client CPU per sequential call (us)", median("raw", "client_cpu_us"),
                     median("nameko_like", "client_cpu_us")))
    return rows


def verdict(row: str, raw: float, ours: float) -> str:
    if row not in GOALS:
        return ""
    kind, op, bound = GOALS[row]
    value = ours / raw if kind == "ratio" else ours
    met = value >= bound if op == ">=" else value <= bound
    return f"{'ratio' if kind == 'ratio' else 'value'} {op} {bound:g}: {'met' if met else 'NOT met'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a smoke run")
    parser.add_argument("--only", help="run only workloads whose name contains this text")
    parser.add_argument("--callgrind", action="store_true",
                        help="also count instructions per sequential call under valgrind's callgrind")
    parser.add_argument("--callgrind-calls", type=int, default=200, help="calls counted under callgrind")
    parser.add_argument("--callgrind-keep", metavar="DIR",
                        help="keep the callgrind dumps in DIR (for callgrind_annotate)")
    options = parser.parse_args()
    with_callgrind = options.callgrind or (options.only is not None and "callgrind" in options.only)
    results: dict[str, dict[str, list[dict]]] = {}
    for name, run in workloads(options.quick, with_callgrind, options.callgrind_calls,
                                   options.callgrind_keep).items():
        if options.only and options.only not in name:
            continue
        results[name] = {"raw": [], "nameko_like": []}
        # Instruction counts hardly vary: one round is enough.
        for _ in range(1 if name.startswith("callgrind") else options.rounds):
            for side in ("raw", "nameko_like"):
                results[name][side].append(run(side))
    seq_calls = 500 if options.quick else 2000
    print(f"{'workload':45} {'raw':>12} {'nameko_like':>12} {'ratio':>7}  goal")
    summary = {}
    for name, sides in results.items():
        for row, raw, ours in rows_of(name, sides, seq_calls):
            summary[row.strip()] = {"raw": raw, "nameko_like": ours, "ratio": ours / raw}
            precision = 2 if row.strip().startswith(("start", "service CPU to")) else 0
            print(f"{row:45} {raw:12,.{precision}f} {ours:12,.{precision}f} {ours / raw:7.2f}  "
                  f"{verdict(row, raw, ours)}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "amqp.json").write_text(json.dumps({"rounds": options.rounds, "summary": summary,
                                                "runs": results}, indent=2))


if __name__ == "__main__":
    main()
