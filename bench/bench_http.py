"""HTTP benchmark: nameko_like ``GET /ping`` against a bare eventlet.wsgi app.

Both servers run as subprocesses on loopback, started in the same run, and
are loaded in turn with ``wrk`` (interleaved rounds, so drift on a shared
machine hits both alike). Reported: the median req/s and p99 latency of each,
and nameko_like's share of the bare server's rate.

    python bench/bench_http.py                 # 3 rounds x 5 s, 50 connections
    python bench/bench_http.py --rounds 5 --duration 10 --connections 100
    python bench/bench_http.py --access-log    # also nameko_like with its INFO access log

``wrk`` must be installed (Debian/Ubuntu: ``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def serve_bare(port: int) -> None:
    """The baseline: a hello-world WSGI function on eventlet.wsgi, no logging."""
    from nameko_like._eventlet import eventlet
    import eventlet.wsgi

    def app(environ: dict, start_response: object) -> list:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        return [b"pong"]

    sock = eventlet.listen(("127.0.0.1", port), backlog=1024)
    eventlet.wsgi.server(sock, app, log_output=False)


def serve_nameko_like(port: int, access_log: bool = False) -> None:
    """A service with one ``@http`` entrypoint, default config otherwise.

    With ``access_log``, logging is set up as ``nameko_like run`` does by
    default (INFO, its format) but written to /dev/null: the access log's
    cost without the terminal's.
    """
    from nameko_like._eventlet import eventlet

    if access_log:
        import logging

        from nameko_like.cli.run import DEFAULT_LOG_FORMAT

        logging.basicConfig(level=logging.INFO, format=DEFAULT_LOG_FORMAT,
                            stream=open(os.devnull, "w"))  # noqa: SIM115 - lives with the process

    # As `nameko_like run` does: patch first, then import the framework.
    eventlet.monkey_patch()
    from nameko_like.containers import ServiceContainer
    from nameko_like.web.handlers import http

    class Bench:
        name = "bench"

        @http("GET", "/ping")
        def ping(self, request: object) -> str:
            return "pong"

    container = ServiceContainer(Bench, {"WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"})
    container.start()
    container.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(kind: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port)], env=env
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"{kind} server exited with {proc.returncode}")
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{kind} server did not start listening within 15 s")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def run_wrk(port: int, duration: int, connections: int) -> tuple[float, float]:
    """Return (requests per second, p99 latency in ms) of one wrk run."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
         f"http://127.0.0.1:{port}/ping"],
        capture_output=True, text=True, check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out).groups()
    if re.search(r"Non-2xx or 3xx responses|Socket errors", out):
        print("  wrk reported errors:\n" + out, file=sys.stderr)
    return rate, float(value) * _UNITS[unit]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--access-log", action="store_true",
                        help="also run nameko_like with logging at INFO (access log on)")
    parser.add_argument("--serve", choices=["bare", "nameko_like", "access_log"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve == "bare":
        serve_bare(args.port)
        return 0
    if args.serve == "nameko_like":
        serve_nameko_like(args.port)
        return 0
    if args.serve == "access_log":
        serve_nameko_like(args.port, access_log=True)
        return 0

    if shutil.which("wrk") is None:
        print("wrk is not installed; on Debian/Ubuntu: sudo apt-get install wrk", file=sys.stderr)
        return 2

    kinds = ("bare", "nameko_like", "access_log") if args.access_log else ("bare", "nameko_like")
    servers = {kind: start(kind) for kind in kinds}
    results: dict[str, list[tuple[float, float]]] = {kind: [] for kind in servers}
    try:
        for kind, (_, port) in servers.items():
            run_wrk(port, 1, args.connections)  # warm-up
        for number in range(1, args.rounds + 1):
            for kind, (_, port) in servers.items():
                rate, p99 = run_wrk(port, args.duration, args.connections)
                results[kind].append((rate, p99))
                print(f"round {number}  {kind:12s} {rate:9.0f} req/s  p99 {p99:7.2f} ms")
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)

    medians = {
        kind: (statistics.median(r for r, _ in runs), statistics.median(p for _, p in runs))
        for kind, runs in results.items()
    }
    print(f"\nwrk -t1 -c{args.connections}, {args.rounds} interleaved rounds of "
          f"{args.duration} s, medians:")
    for kind, (rate, p99) in medians.items():
        print(f"  {kind:12s} {rate:9.0f} req/s  p99 {p99:7.2f} ms")
    ratio = medians["nameko_like"][0] / medians["bare"][0]
    print(f"  nameko_like / bare eventlet.wsgi: {ratio:.2f}")
    if "access_log" in medians:
        cost = medians["access_log"][0] / medians["nameko_like"][0]
        print(f"  with the access log at INFO / without: {cost:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
