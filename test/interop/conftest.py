"""Fixtures for running the real Nameko next to nameko_like.

Nameko runs in its own virtualenv, ``.venv-nameko`` at the repo root, which
``ensure_nameko_env.sh`` builds on first use (from ``nameko-requirements.txt``)
and reuses after. Nameko code runs there as subprocesses: services through
``nameko run`` (fixture ``nameko_run``), standalone clients through
``nameko_side/nk_client.py`` (fixture ``nameko_client``). If the env cannot be
built, every interop test is skipped, with the installer's last words as
the reason.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from amqp.exceptions import NotFound
from kombu import Connection

from nameko_like._eventlet import eventlet

HERE = Path(__file__).resolve().parent
NAMEKO_SIDE = HERE / "nameko_side"
ENSURE_SCRIPT = HERE / "ensure_nameko_env.sh"

#: Seconds the env may take to build (it took ~15 s here; pip may retry).
INSTALL_TIMEOUT = 600
#: Seconds a ``nameko run`` service has to start consuming.
START_TIMEOUT = 30
#: Seconds a Nameko client script may run.
CLIENT_TIMEOUT = 60
#: Seconds a Nameko service has to stop after SIGTERM before it is killed.
STOP_TIMEOUT = 10

#: Starts Nameko's processes so that they die with this one.
LAUNCHER = NAMEKO_SIDE / "die_with_parent.py"


@pytest.fixture(scope="session")
def nameko_python() -> str:
    """Path of the python of the Nameko virtualenv; builds it if needed."""
    try:
        done = subprocess.run(
            ["bash", str(ENSURE_SCRIPT)], capture_output=True, text=True,
            timeout=INSTALL_TIMEOUT, check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"installing Nameko took over {INSTALL_TIMEOUT}s ({ENSURE_SCRIPT.name})")
    if done.returncode != 0:
        last_words = " | ".join(done.stderr.strip().splitlines()[-5:])
        pytest.skip(f"could not install the real Nameko for the interop tests "
                    f"({ENSURE_SCRIPT.name} exited {done.returncode}): {last_words}")
    return done.stdout.strip().splitlines()[-1]


def _nameko_env() -> dict:
    """Environment for Nameko subprocesses: nothing of this test process's venv."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    # eventlet announces its deprecation on every import
    env["PYTHONWARNINGS"] = "ignore"
    env["PYTHONUNBUFFERED"] = "1"
    env["INTEROP_PARENT_PID"] = str(os.getpid())
    return env


def nameko_config(rabbit_config: dict, **extra: Any) -> dict:
    """A Nameko config for the test's vhost (without our fixture's extra keys)."""
    config = {"AMQP_URI": rabbit_config["AMQP_URI"]}
    config.update(extra)
    return config


class NamekoService:
    """One ``nameko run`` subprocess; its output goes to ``log_path``."""

    def __init__(self, python: str, service_path: str, config: dict, workdir: Path) -> None:
        self.service_path = service_path
        name = service_path.replace(":", "-")
        config_path = workdir / f"{name}.yaml"
        config_path.write_text(yaml.safe_dump(config))
        self.log_path = workdir / f"{name}.log"
        self._log_file = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [python, str(LAUNCHER), "-m", "nameko", "run", "--config", str(config_path),
             service_path],
            cwd=NAMEKO_SIDE, env=_nameko_env(), stdin=subprocess.DEVNULL,
            stdout=self._log_file, stderr=subprocess.STDOUT,
        )

    @property
    def running(self) -> bool:
        """Whether the process has not exited."""
        return self.process.poll() is None

    def log(self) -> str:
        """What the service printed so far."""
        self._log_file.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM (Nameko stops gracefully), then SIGKILL if it lingers."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        self._log_file.close()

    def __repr__(self) -> str:
        return f"<NamekoService {self.service_path} pid={self.process.pid}>"


@pytest.fixture
def nameko_run(nameko_python: str, rabbit_config: dict,
               tmp_path: Path) -> Iterator[Callable[..., NamekoService]]:
    """``start(service_path, **config)``: ``nameko run`` a service of ``nameko_side/``.

    ``service_path`` is ``module:Class`` (e.g. ``nk_services:Greeter``); the
    config is the test's vhost plus ``config``. Returns once the service is
    started as a process: wait for its queues with ``wait_for_consumers``.
    Every service started is stopped at teardown, before the vhost goes.
    """
    started: list[NamekoService] = []

    def start(service_path: str, **config: Any) -> NamekoService:
        service = NamekoService(nameko_python, service_path,
                                nameko_config(rabbit_config, **config), tmp_path)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def nameko_client(nameko_python: str, rabbit_config: dict) -> Callable[[dict], Any]:
    """``run(request)``: run ``nk_client.py`` with ``request`` (plus the vhost's config).

    Returns the script's JSON answer; fails the test with its output if it
    exits non-zero or runs over ``CLIENT_TIMEOUT``.
    """

    def run(request: dict) -> Any:
        request = dict(request)
        request.setdefault("config", nameko_config(rabbit_config))
        try:
            done = subprocess.run(
                [nameko_python, str(LAUNCHER), str(NAMEKO_SIDE / "nk_client.py")],
                input=json.dumps(request), capture_output=True, text=True,
                cwd=NAMEKO_SIDE, env=_nameko_env(), timeout=CLIENT_TIMEOUT, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"nk_client.py ran over {CLIENT_TIMEOUT}s; output so far: {exc.stderr!r}")
        if done.returncode != 0:
            pytest.fail(f"nk_client.py exited {done.returncode}:\n{done.stderr}")
        return json.loads(done.stdout)

    return run


def consumer_count(amqp_uri: str, queue_name: str) -> int | None:
    """Consumers of ``queue_name`` right now (None if it does not exist).

    A passive declare answers from the queue itself, without the management
    API's statistics delay.
    """
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        try:
            return channel.queue_declare(queue=queue_name, passive=True).consumer_count
        except NotFound:
            return None
        finally:
            if channel.is_open:
                channel.close()


@pytest.fixture
def wait_for_consumers(rabbit_config: dict) -> Callable[..., None]:
    """``wait(queue_name, count=1, timeout=START_TIMEOUT, watch=())``.

    Waits until the vhost's ``queue_name`` has at least ``count`` consumers;
    fails at once, with its log, if a watched Nameko service exits meanwhile.
    """
    amqp_uri = rabbit_config["AMQP_URI"]

    def wait(queue_name: str, count: int = 1, timeout: float = START_TIMEOUT,
             watch: tuple[NamekoService, ...] = ()) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for service in watch:
                if not service.running:
                    pytest.fail(f"{service!r} exited ({service.process.returncode}) while "
                                f"waiting for {queue_name}:\n{service.log()}")
            found = consumer_count(amqp_uri, queue_name)
            if found is not None and found >= count:
                return
            if time.monotonic() >= deadline:
                logs = "\n".join(f"--- {service!r}:\n{service.log()}" for service in watch)
                pytest.fail(f"{queue_name} has {found} consumers, not {count}, "
                            f"after {timeout}s\n{logs}")
            time.sleep(0.2)

    return wait


@pytest.fixture
def start_container() -> Callable[[Any], None]:
    """``start(container)``: start a nameko_like container, failing after ``START_TIMEOUT``.

    A container whose declarations the broker refuses (PRECONDITION_FAILED)
    keeps retrying and never finishes starting; this turns that into a
    failure that says so, instead of a hang.
    """

    def start(container: Any) -> None:
        timer = eventlet.Timeout(START_TIMEOUT)
        try:
            container.start()
        except eventlet.Timeout as exc:
            if exc is not timer:
                raise
            pytest.fail(f"{container.service_name} did not start within {START_TIMEOUT}s "
                        "(did the broker refuse a declaration? see the log)")
        finally:
            timer.cancel()

    return start
