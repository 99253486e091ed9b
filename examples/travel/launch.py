"""Start the travel services, the two ways the README describes.

    python launch.py embedded   one process, in-memory broker, SQLite
    python launch.py real       three processes, RabbitMQ and Redis

``run-embedded`` and ``run-real`` beside this file prepare the virtualenv
and call this. The commands below are the very ones ``docker-compose.yml``
gives its containers (a test checks they stay the same). Every process runs
in this directory, so ``config.yaml`` and the ``travel`` package are found.

The services run as child processes. The first Ctrl-C or SIGTERM is passed
on to each of them once, which stops them gracefully; a second one kills
them. If one of them exits by itself, the others are stopped too.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))

#: ``python`` followed by these runs nameko_like with the example's config.
RUN = ["-m", "nameko_like", "run", "--config", "config.yaml"]

#: Real mode: one process (one container) per service.
REAL = {
    "airports": [*RUN, "travel.airports"],
    "trips": [*RUN, "travel.trips"],
    "gateway": [*RUN, "travel.gateway"],
}

#: Embedded mode: all three services in one process, the broker in memory.
EMBEDDED = {"travel": [*RUN, "--broker", "memory://", "travel.airports", "travel.trips",
                       "travel.gateway"]}

#: Where real mode finds Redis unless REDIS_URI says otherwise.
DEFAULT_REDIS_URI = "redis://localhost:6379/0"
#: Seconds to wait for the gateway to answer before giving up.
STARTUP_TIMEOUT = 60.0
#: Seconds the services get to stop after a signal before they are killed.
STOP_TIMEOUT = 30.0


def say(message: str) -> None:
    print(f"travel: {message}", file=sys.stderr, flush=True)


def gateway_url(env: dict) -> str:
    """The URL to try, from WEB_SERVER_ADDRESS (as config.yaml reads it)."""
    host, _, port = env.get("WEB_SERVER_ADDRESS", "0.0.0.0:8000").rpartition(":")
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "localhost"
    return f"http://{host}:{port}"


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def check_real_prerequisites(env: dict) -> str | None:
    """Why real mode cannot start here, or None if RabbitMQ and Redis answer."""
    rabbit_host = env.get("RABBIT_HOST", "localhost")
    rabbit_port = int(env.get("RABBIT_PORT", "5672"))
    if "AMQP_URI" in env:
        broker = urllib.parse.urlsplit(env["AMQP_URI"])
        rabbit_host, rabbit_port = broker.hostname or "localhost", broker.port or 5672
    if not reachable(rabbit_host, rabbit_port):
        return (f"RabbitMQ does not answer on {rabbit_host}:{rabbit_port}: start it "
                "(scripts/test starts a local one), or use run-embedded")
    redis = urllib.parse.urlsplit(env["REDIS_URI"])
    if not reachable(redis.hostname or "localhost", redis.port or 6379):
        return (f"Redis does not answer at {env['REDIS_URI']}: start it "
                "(`redis-server --daemonize yes`), or use run-embedded")
    return None


class Services:
    """The child processes, started and stopped together."""

    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen] = {}
        self.signals_received = 0

    def start(self, commands: dict[str, list[str]], env: dict) -> None:
        for name, argv in commands.items():
            # Each child gets a session (so a process group) of its own: a
            # Ctrl-C at the terminal reaches only us, and we pass it on once.
            process = subprocess.Popen([sys.executable, *argv], cwd=HERE, env=env,
                                       start_new_session=True)
            self.processes[name] = process
            say(f"started {name} (pid {process.pid}): python {' '.join(argv)}")

    def on_signal(self, signum: int, frame: object) -> None:
        self.signals_received += 1
        action = "stopping" if self.signals_received == 1 else "killing"
        say(f"{signal.Signals(signum).name} received: {action} the services")
        self.send(signum)

    def send(self, signum: int) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signum)

    def exited(self) -> list[str]:
        return [name for name, process in self.processes.items() if process.poll() is not None]

    def wait_stopped(self, timeout: float) -> None:
        """Wait for every child; kill those still running after ``timeout``."""
        deadline = time.monotonic() + timeout
        for name, process in self.processes.items():
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"{name} did not stop within {timeout:.0f}s: killing it")
                process.kill()
                process.wait()


def gateway_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def run(commands: dict[str, list[str]], env: dict) -> int:
    url = gateway_url(env)
    services = Services()
    # Our handlers go in before the children start: a child begins with
    # the default action for these signals (handlers are reset by exec),
    # never with "ignore", which we might have inherited from a shell.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, services.on_signal)
    try:
        services.start(commands, env)
        started = time.monotonic()
        announced = False
        while not services.signals_received:
            if services.exited():
                break
            if not announced and gateway_ready(url):
                announced = True
                say(f"ready: try {url}/airport (Ctrl-C stops), for example:\n"
                    f"  curl -i -d '{{\"airport\": \"first_airport\"}}' {url}/airport")
            elif not announced and time.monotonic() - started > STARTUP_TIMEOUT:
                say(f"the gateway did not answer on {url} within {STARTUP_TIMEOUT:.0f}s")
                break
            time.sleep(0.2)
        if not services.signals_received:
            # A service exited, or start-up failed: stop the others.
            for name in services.exited():
                say(f"{name} exited with status {services.processes[name].returncode}")
            services.send(signal.SIGTERM)
            services.wait_stopped(STOP_TIMEOUT)
            return 1
        services.wait_stopped(STOP_TIMEOUT)
        # Stopped on request: dying of the signal we passed on is no failure.
        stopped = {0, -signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGINT, 128 + signal.SIGTERM}
        failed = [name for name, p in services.processes.items() if p.returncode not in stopped]
        for name in failed:
            say(f"{name} exited with status {services.processes[name].returncode}")
        return 1 if failed else 0
    finally:
        # Whatever happened above, no child outlives us.
        for process in services.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="launch.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["embedded", "real"])
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if args.mode == "embedded":
        # Embedded means no server at all: SQLite, whatever the environment says.
        env.pop("REDIS_URI", None)
        commands = EMBEDDED
    else:
        env.setdefault("REDIS_URI", DEFAULT_REDIS_URI)
        problem = check_real_prerequisites(env)
        if problem:
            say(problem)
            return 1
        commands = REAL
    return run(commands, env)


if __name__ == "__main__":
    sys.exit(main())
