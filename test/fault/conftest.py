"""Fixtures of the fault tier: a private RabbitMQ node and service processes.

The faults (stopping the broker's application, ``kill -9``) are made against
a RabbitMQ node of our own, started for the session on free ports with its
own data directory, Erlang cookie and no plugins
(:mod:`nameko_like.testing.private_broker`). The broker on 5672 that other
tests and benchmarks share is never touched.

Services run in subprocesses (``python -m nameko_like run``), as they do in
production, so a fault that kills a service shows as a dead process rather
than as a broken test process. Each test gets a vhost of its own.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from nameko_like.testing.private_broker import (
    PrivateBroker,
    rabbitmq_available,
    stop_orphaned_nodes,
)

FAULT_DIR = Path(__file__).resolve().parent
#: Seconds a service process may take until it answers its first call.
SERVICE_READY_DEADLINE = 30.0
#: Prefix of the private nodes' directories under the temp dir. The sweep
#: covers every node started with this prefix, including the TLS node of
#: ``test/amqp/test_connection_options.py`` (``nameko_like_fault_tls_``).
BASE_DIR_PREFIX = "nameko_like_fault_"


@pytest.fixture(scope="session")
def fault_broker() -> Iterator[PrivateBroker]:
    """The private RabbitMQ node of the fault tier (started once per session)."""
    if not rabbitmq_available():
        pytest.skip("the fault tier needs RabbitMQ installed (rabbitmq-server, rabbitmqctl)")
    stop_orphaned_nodes(BASE_DIR_PREFIX)
    # the password is distinctive, so a test can check it never reaches a log
    with PrivateBroker("nameko_like_fault", BASE_DIR_PREFIX, user="fault_user",
                       password="fault-pw-" + secrets.token_hex(8)) as broker:
        yield broker


#: Vhosts made at once: every rabbitmqctl call boots an Erlang VM (about
#: half a second of CPU), so one call makes the vhosts of several tests.
VHOST_BATCH = 6
#: Seconds a vhost's deletion may take before the session stops waiting.
DELETE_DEADLINE = 60


class VhostPool:
    """Fresh, unused vhosts of the fault broker, made in batches; deletes a
    used one in the background while the test's other teardown goes on, and
    the next test waits for it."""

    def __init__(self, broker: PrivateBroker) -> None:
        self.broker = broker
        self.ready: list[str] = []
        self.deleting: list[subprocess.Popen] = []

    def take(self) -> str:
        """A vhost no test has used, with every permission for the broker's user.

        Waits for the deletions of earlier tests first: a test that stops or
        freezes the broker must not find a deletion half done.
        """
        self.reap(wait=True)
        if not self.ready:
            self.ready = [f"fault_{uuid.uuid4().hex[:10]}" for _ in range(VHOST_BATCH)]
            self.broker.add_vhosts(self.ready)
        return self.ready.pop()

    def delete(self, vhost: str) -> None:
        """Start deleting ``vhost``; :meth:`reap` collects the process."""
        assert self.broker.ctl_tool is not None
        self.deleting.append(subprocess.Popen(
            [self.broker.ctl_tool, "-n", self.broker.node, "-q", "delete_vhost", vhost],
            env=self.broker.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def reap(self, wait: bool = False) -> None:
        """Collect finished deletions (``wait``: all of them, within the deadline)."""
        for process in list(self.deleting):
            if wait:
                try:
                    process.wait(timeout=DELETE_DEADLINE)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.poll() is not None:
                self.deleting.remove(process)


@pytest.fixture(scope="session")
def fault_vhosts(fault_broker: PrivateBroker) -> Iterator[VhostPool]:
    """The fault broker's :class:`VhostPool`."""
    pool = VhostPool(fault_broker)
    yield pool
    pool.reap(wait=True)


@pytest.fixture
def fault_config(fault_vhosts: VhostPool, tmp_path: Path) -> Iterator[dict]:
    """A config for a fresh vhost of the private broker, deleted after the test."""
    vhost = fault_vhosts.take()
    config = {"AMQP_URI": fault_vhosts.broker.amqp_uri(vhost)}
    try:
        yield config
    finally:
        fault_vhosts.delete(vhost)


# --- service processes --------------------------------------------------------


#: Logging of the service processes: everything from WARNING up, one line
#: each, so tests can count warnings and tracebacks.
SERVICE_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain",
                            "stream": "ext://sys.stderr"}},
    "root": {"level": "WARNING", "handlers": ["stderr"]},
}


#: Runs ``argv[2:]`` in place of itself once it will get SIGKILL when the
#: process ``argv[1]`` (the test run) dies: a test run killed before its
#: teardown leaves no service behind. (Linux prctl PR_SET_PDEATHSIG; the
#: setting survives exec. Not a preexec_fn: that makes subprocess fork,
#: which eventlet warns against.)
_DIE_WITH_PARENT = """
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)
os.execv(sys.argv[2], sys.argv[2:])
"""


class ServiceProcess:
    """One service class running in a subprocess."""

    def __init__(self, target: str, config: dict, workdir: Path, label: str,
                 record_dir: Path) -> None:
        self.target = target
        self.label = label
        self.config_path = workdir / f"{label}.yaml"
        self.log_path = workdir / f"{label}.log"
        full_config = dict(config)
        full_config.setdefault("LOGGING", SERVICE_LOGGING)
        self.config_path.write_text(yaml.safe_dump(full_config))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(FAULT_DIR), env.get("PYTHONPATH")]))
        env["FAULT_RECORD_DIR"] = str(record_dir)
        env["PYTHONUNBUFFERED"] = "1"
        command = [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()),
                   sys.executable, "-m", "nameko_like", "run", target,
                   "--config", str(self.config_path)]
        # open for the life of the process; closed by cleanup()
        self._log_file = open(self.log_path, "wb")  # noqa: SIM115
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(command, stdout=self._log_file, stderr=subprocess.STDOUT,
                                        env=env, cwd=str(workdir))

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def terminate(self) -> None:
        """SIGTERM: a graceful stop."""
        self.process.send_signal(signal.SIGTERM)

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cleanup(self) -> None:
        if self.alive:
            self.kill9()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._log_file.close()


@pytest.fixture
def dispatcher() -> Iterator[Callable[[dict[str, Any]], Any]]:
    """``dispatcher(config)``: a standalone event dispatcher, closed at teardown.

    Left to the garbage collector, a dispatcher's connection (its reader and
    heartbeats) would outlive the test for as long as a reference cycle (a
    caught exception's traceback) keeps it: the leak check would see it.
    """
    from nameko_like.standalone.events import event_dispatcher

    made: list[Any] = []

    def make(config: dict[str, Any]) -> Any:
        made.append(event_dispatcher(config))
        return made[-1]

    yield make
    for each in made:
        each.close()


@pytest.fixture
def record_dir(tmp_path: Path) -> Path:
    """Where service processes record each invocation (see fault_services)."""
    path = tmp_path / "records"
    path.mkdir()
    return path


@pytest.fixture
def spawn_service(tmp_path: Path, record_dir: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """``spawn_service("fault_services:Backend", config)`` starts a service process.

    Processes still running at teardown are killed; their logs are printed
    (pytest shows them when the test failed).
    """
    made: list[ServiceProcess] = []
    counter = iter(range(1000))

    def spawn(target: str, config: dict, label: str | None = None) -> ServiceProcess:
        label = label or f"{target.rpartition(':')[2].lower()}-{next(counter)}"
        process = ServiceProcess(target, config, tmp_path, label, record_dir)
        made.append(process)
        return process

    yield spawn
    for process in made:
        process.cleanup()
        print(f"----- log of {process.label} "
              f"(pid {process.pid}, exit {process.process.returncode})")
        print("\n".join(process.log().splitlines()[-400:]))


# --- helpers shared by the tests (fixtures: test modules can't import conftest) ---


def _wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.1,
                message: str = "condition") -> Any:
    """Poll ``predicate`` until it is truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{message} not met within {timeout}s (last: {result!r})", pytrace=False)
        time.sleep(interval)


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    """``wait_until(predicate, timeout, message=...)``: poll with a deadline."""
    return _wait_until


class Record(NamedTuple):
    kind: str
    id: str
    pid: int
    time: float


class Records:
    """What the service processes of one test recorded (see fault_services)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def read(self, kind: str | None = None) -> list[Record]:
        """Every record (of ``kind``), file by file in the order written."""
        found = []
        for path in sorted(self.directory.glob("*.rec")):
            for line in path.read_text().splitlines():
                parts = line.split(" ")
                if len(parts) != 4:
                    continue  # a line being written right now
                if kind is None or parts[0] == kind:
                    found.append(Record(parts[0], parts[1], int(parts[2]), float(parts[3])))
        return found

    def ids(self, kind: str) -> list[str]:
        """The ids recorded for ``kind``, duplicates kept."""
        return [record.id for record in self.read(kind)]


@pytest.fixture
def records(record_dir: Path) -> Records:
    return Records(record_dir)


def traceback_count(text: str) -> int:
    """How many tracebacks a log holds."""
    return sum(1 for line in text.splitlines() if line.startswith("Traceback"))


@pytest.fixture
def count_tracebacks() -> Callable[[str], int]:
    return traceback_count


def _wait_ready(config: dict, service_name: str, pids: set[int] | None = None,
                timeout: float = SERVICE_READY_DEADLINE) -> None:
    from nameko_like.exceptions import RpcConnectionError, RpcTimeout, UnknownService
    from nameko_like.standalone.rpc import ClusterRpcProxy

    answered: set[int] = set()
    deadline = time.monotonic() + timeout
    proxy = ClusterRpcProxy(config, timeout=2)
    try:
        cluster = proxy.start()
        while True:
            try:
                answered.add(cluster[service_name].ping())
            except (RpcConnectionError, RpcTimeout, UnknownService):
                time.sleep(0.1)
            if answered and (pids is None or pids <= answered):
                return
            if time.monotonic() > deadline:
                pytest.fail(f"{service_name} not ready within {timeout}s "
                            f"(answered from {answered}, expected {pids})", pytrace=False)
    finally:
        proxy.stop()


@pytest.fixture
def wait_ready() -> Callable[..., None]:
    """``wait_ready(config, service_name, pids=None)``: wait until the service
    answers ``ping`` (from every pid in ``pids``, if given)."""
    return _wait_ready
