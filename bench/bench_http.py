"""HTTP benchmark: nameko_like ``@http`` against bare eventlet.wsgi, aiohttp and Kontiki.

Four servers run as subprocesses on loopback, started in the same run: a
service with ``@http`` entrypoints, a bare eventlet.wsgi hello-world (the
minimal program), an aiohttp app (a stand-in for aiohttp-based peers) and a
Kontiki service (an aiohttp-based peer framework; left out if not installed).
Each is loaded with ``wrk`` on ``GET /ping`` and ``POST /echo`` (a 1 kB
body echoed back), in interleaved rounds so drift on a shared machine hits
all alike. Reported: each server's median req/s and p99 latency, and
nameko_like's rate as a share of the others', and the server's CPU time
per request (stable on a busy machine, where rates and p99 are not).

    python bench/bench_http.py                 # 3 rounds x 5 s, 50 connections
    python bench/bench_http.py --rounds 5 --duration 10 --connections 100
    python bench/bench_http.py --access-log    # also nameko_like with its INFO access log
    python bench/bench_http.py --engine-fallback   # also WEB_ENGINE=eventlet
    python bench/bench_http.py --before /tmp/old   # also nameko_like from another source tree
    python bench/bench_http.py --engine-only   # also the WSGI function on our engine alone
    python bench/bench_http.py --skip-peers --before /tmp/old   # before/after only
    python bench/bench_http.py --callgrind 1000 --skip-peers --before /tmp/old

``wrk`` must be installed (Debian/Ubuntu: ``apt-get install wrk``), and
aiohttp and Kontiki (``pip install 'nameko_like[bench]'``).
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
import tempfile
import time

ROOT = os.path.dirname(os.path.abspath(os.path.dirname(__file__)))
ECHO_BODY = "x" * 1024
#: Requests of each kind sent before the ones counted by --callgrind.
WARM_UP_REQUESTS = 50
PATHS = ("/ping", "/echo")


def hello_app(environ: dict, start_response: object) -> list:
    """The WSGI function of the minimal programs: ``/ping`` and ``/echo``."""
    if environ["PATH_INFO"] == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
    else:
        body = b"pong"
    start_response("200 OK", [("Content-Type", "text/plain"),  # type: ignore[operator]
                              ("Content-Length", str(len(body)))])
    return [body]


def serve_bare(port: int) -> None:
    """The minimal program: the WSGI function on eventlet.wsgi, no logging."""
    from nameko_like._eventlet import eventlet
    import eventlet.wsgi

    sock = eventlet.listen(("127.0.0.1", port), backlog=1024)
    eventlet.wsgi.server(sock, hello_app, log_output=False)


def serve_engine(port: int) -> None:
    """The same WSGI function on nameko_like's HTTP engine alone (no service)."""
    from nameko_like._eventlet import eventlet
    import eventlet.wsgi

    from nameko_like.web.engine import HttpEngine
    from nameko_like.web.limits import RequestLimits

    sock = eventlet.listen(("127.0.0.1", port), backlog=1024)
    engine = HttpEngine(sock, hello_app, RequestLimits())
    pool = eventlet.GreenPool(10000)
    while True:
        client, address = sock.accept()
        pool.spawn_n(engine.process_request, [address, client, eventlet.wsgi.STATE_IDLE])


def serve_aiohttp(port: int) -> None:
    """An aiohttp app with the same two routes, default settings, no access log."""
    from aiohttp import web

    async def ping(request: web.Request) -> web.Response:
        return web.Response(text="pong")

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    app = web.Application()
    app.add_routes([web.get("/ping", ping), web.post("/echo", echo)])
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def serve_kontiki(port: int) -> None:
    """The same two routes as a Kontiki service (an aiohttp-based peer), AMQP off.

    Kontiki's default logging config is kept, its handler at WARNING and
    writing to /dev/null, as nameko_like's logging is quiet here (its
    default config writes no access line: the one aiohttp would log is
    disabled by it).
    """
    import asyncio
    import copy

    from aiohttp import web
    from kontiki.configuration.configuration import DEFAULT_LOGGING_CONFIGURATION
    from kontiki.container import ServiceContainer
    from kontiki.web.web import http

    class Bench:
        name = "bench"

        @http("/ping", "GET")
        async def ping(self, request: web.Request) -> web.Response:
            return web.Response(text="pong")

        @http("/echo", "POST")
        async def echo(self, request: web.Request) -> web.Response:
            return web.Response(body=await request.read())

    logging_config = copy.deepcopy(DEFAULT_LOGGING_CONFIGURATION)
    handler = logging_config["handlers"]["console"]
    # (Kontiki deep-copies its logging config: a file name, not a stream)
    handler.update({"class": "logging.FileHandler", "filename": os.devnull,
                    "level": "WARNING"})
    config = {
        "kontiki": {"amqp": {"disable": True},
                    "http": {"address": "127.0.0.1", "port": port}},
        "logging": logging_config,
    }

    async def run() -> None:
        container = ServiceContainer(Bench, "1.0", None, True, config=config)
        await container.setup()
        await container.start()
        await asyncio.Event().wait()

    asyncio.run(run())


def serve_nameko_like(port: int, access_log: bool = False, engine: str | None = None) -> None:
    """A service with two ``@http`` entrypoints, default config otherwise.

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

        @http("POST", "/echo")
        def echo(self, request: object) -> bytes:
            return request.get_data()  # type: ignore[attr-defined, no-any-return]

    config = {"WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"}
    if engine:
        config["WEB_ENGINE"] = engine
    container = ServiceContainer(Bench, config)
    container.start()
    container.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(kind: str, source: str = ROOT) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=source + os.pathsep + os.environ.get("PYTHONPATH", ""))
    serve = "nameko_like" if kind == "before" else kind
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve", serve, "--port", str(port)],
        env=env, cwd=source,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"{kind} server exited with {proc.returncode}") from None
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{kind} server did not start listening within 15 s")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk_script(directory: str) -> str:
    """A wrk Lua script making every request ``POST /echo`` with ECHO_BODY."""
    path = os.path.join(directory, "post_echo.lua")
    with open(path, "w") as script:
        script.write(f'wrk.method = "POST"\nwrk.body = "{ECHO_BODY}"\n'
                     f'wrk.headers["Content-Type"] = "text/plain"\n')
    return path


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process ``pid`` has used (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(port: int, path: str, duration: int, connections: int,
            script: str | None, pid: int) -> tuple[float, float, float]:
    """(requests per second, p99 latency in ms, server CPU us per request) of one run.

    CPU per request moves far less than the rate on a busy machine: it is
    what to compare when other programs compete for the cores.
    """
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    if path == "/echo" and script:
        command += ["-s", script]
    cpu_before = cpu_seconds(pid)
    out = subprocess.run(
        [*command, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True,
    ).stdout
    cpu = cpu_seconds(pid) - cpu_before
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out).groups()
    if re.search(r"Non-2xx or 3xx responses|Socket errors", out):
        print("  wrk reported errors:\n" + out, file=sys.stderr)
    return rate, float(value) * _UNITS[unit], cpu / max(total, 1) * 1e6


def sequential_requests(port: int, method: str, count: int) -> None:
    """Send ``count`` requests one after another on one keep-alive connection."""
    request = (b"GET /ping HTTP/1.1\r\nHost: bench\r\n\r\n" if method == "GET" else
               b"POST /echo HTTP/1.1\r\nHost: bench\r\nContent-Type: text/plain\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(ECHO_BODY), ECHO_BODY.encode()))
    ending = b"pong" if method == "GET" else ECHO_BODY[-16:].encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            sock.sendall(request)
            answer = b""
            while not answer.endswith(ending):
                answer += sock.recv(65536)


def callgrind_instructions(kind: str, source: str, method: str, count: int) -> int:
    """Instructions the ``kind`` server executes from start to exit, serving the
    warm-up and then ``count`` sequential requests (``valgrind --tool=callgrind``)."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=source + os.pathsep + os.environ.get("PYTHONPATH", ""))
    serve = "nameko_like" if kind == "before" else kind
    with tempfile.TemporaryDirectory() as directory:
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={directory}/out",
             sys.executable, os.path.abspath(__file__), "--serve", serve, "--port", str(port)],
            env=env, cwd=source, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 300  # start-up is ~50x slower under valgrind
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    raise SystemExit(f"{kind} did not start under valgrind") from None
                time.sleep(0.5)
        # Warm-up in every run (first requests import and cache things),
        # so that the difference between two runs is the requests alone.
        for warm_up in ("GET", "POST"):
            sequential_requests(port, warm_up, WARM_UP_REQUESTS)
        sequential_requests(port, method, count)
        proc.terminate()
        _, errors = proc.communicate(timeout=120)
    return int(re.search(r"Collected : (\d+)", errors).group(1))


def instructions_per_request(kinds: list[str], sources: dict[str, str], count: int) -> None:
    """Print each server's instructions per request: runs with ``count`` requests
    minus a run with none (start-up, warm-up and shut-down cancel out)."""
    print(f"\ncallgrind, {count} sequential requests on one connection, "
          f"minus start-up and warm-up:")
    for kind in kinds:
        idle = callgrind_instructions(kind, sources[kind], "GET", 0)
        for method in ("GET", "POST"):
            total = callgrind_instructions(kind, sources[kind], method, count)
            print(f"  {kind:16s} {method:4s} {(total - idle) / count:11,.0f} instructions/request",
                  flush=True)


def report(results: dict[tuple[str, str], list[tuple[float, float, float]]],
           args: argparse.Namespace, kinds: list[str]) -> None:
    print(f"\nwrk -t1 -c{args.connections}, {args.rounds} interleaved rounds of "
          f"{args.duration} s, medians:")
    for path in PATHS:
        medians = {
            kind: tuple(statistics.median(run[index] for run in results[kind, path])
                        for index in range(3))
            for kind in kinds
        }
        print(f"  {'GET' if path == '/ping' else 'POST'} {path}")
        for kind, (rate, p99, cpu) in medians.items():
            print(f"    {kind:16s} {rate:9.0f} req/s  p99 {p99:7.2f} ms  "
                  f"server CPU {cpu:5.0f} us/request")
        ours = medians["nameko_like"][0]
        for other in kinds:
            if other != "nameko_like":
                print(f"    nameko_like / {other:16s} {ours / medians[other][0]:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--access-log", action="store_true",
                        help="also run nameko_like with logging at INFO (access log on)")
    parser.add_argument("--engine-fallback", action="store_true",
                        help="also run nameko_like with WEB_ENGINE=eventlet")
    parser.add_argument("--callgrind", type=int, metavar="N", default=0,
                        help="instead of wrk: instructions per request over N sequential "
                             "requests, under valgrind (slow: about a minute per server run)")
    parser.add_argument("--skip-peers", action="store_true",
                        help="leave out bare eventlet.wsgi and aiohttp (e.g. with --before)")
    parser.add_argument("--engine-only", action="store_true",
                        help="also serve the minimal WSGI function on nameko_like's engine")
    parser.add_argument("--before", metavar="TREE",
                        help="also run nameko_like from this source tree (a checkout)")
    parser.add_argument("--serve", help=argparse.SUPPRESS,
                        choices=["bare", "aiohttp", "kontiki", "nameko_like",
                                 "access_log", "fallback", "engine"])
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve is not None:
        serve = {
            "bare": lambda: serve_bare(args.port),
            "aiohttp": lambda: serve_aiohttp(args.port),
            "kontiki": lambda: serve_kontiki(args.port),
            "nameko_like": lambda: serve_nameko_like(args.port),
            "access_log": lambda: serve_nameko_like(args.port, access_log=True),
            "fallback": lambda: serve_nameko_like(args.port, engine="eventlet"),
            "engine": lambda: serve_engine(args.port),
        }
        serve[args.serve]()
        return 0

    if shutil.which("wrk") is None:
        print("wrk is not installed; on Debian/Ubuntu: sudo apt-get install wrk", file=sys.stderr)
        return 2
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        print("aiohttp is not installed: pip install 'nameko_like[bench]'", file=sys.stderr)
        return 2

    try:
        import kontiki  # noqa: F401
        peers = ["bare", "aiohttp", "kontiki"]
    except ImportError:
        print("kontiki is not installed (pip install 'nameko_like[bench]'): left out",
              file=sys.stderr)
        peers = ["bare", "aiohttp"]
    kinds = ["nameko_like"] if args.skip_peers else [*peers, "nameko_like"]
    kinds += ["access_log"] if args.access_log else []
    kinds += ["fallback"] if args.engine_fallback else []
    kinds += ["engine"] if args.engine_only else []
    kinds += ["before"] if args.before else []
    sources = {kind: args.before if kind == "before" else ROOT for kind in kinds}
    if args.callgrind:
        instructions_per_request(kinds, sources, args.callgrind)
        return 0
    servers: dict[str, tuple[subprocess.Popen, int]] = {}
    try:
        for kind in kinds:
            servers[kind] = start(kind, sources[kind])
    except BaseException:
        for proc, _ in servers.values():  # those started before the one that failed
            proc.terminate()
        raise
    results: dict[tuple[str, str], list[tuple[float, float, float]]] = {
        (kind, path): [] for kind in kinds for path in PATHS}
    with tempfile.TemporaryDirectory() as directory:
        script = wrk_script(directory)
        try:
            for proc, port in servers.values():
                for path in PATHS:
                    run_wrk(port, path, 1, args.connections, script, proc.pid)  # warm-up
            for number in range(1, args.rounds + 1):
                for path in PATHS:
                    for kind, (proc, port) in servers.items():
                        rate, p99, cpu = run_wrk(port, path, args.duration, args.connections,
                                                 script, proc.pid)
                        results[kind, path].append((rate, p99, cpu))
                        print(f"round {number} {path:6s} {kind:12s} {rate:9.0f} req/s  "
                              f"p99 {p99:7.2f} ms  CPU {cpu:5.0f} us/request", flush=True)
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(10)
    report(results, args, kinds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
