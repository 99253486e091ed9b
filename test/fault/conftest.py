"""Fixtures of the fault tier: a private RabbitMQ node and service processes.

The faults (stopping the broker's application, ``kill -9``) are made against
a RabbitMQ node of our own, started for the session on free ports with its
own data directory, Erlang cookie and no plugins. The broker on 5672 that
other tests and benchmarks share is never touched.

Services run in subprocesses (``python -m nameko_like run``), as they do in
production, so a fault that kills a service shows as a dead process rather
than as a broken test process. Each test gets a vhost of its own.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from nameko_like.amqp.publish_channel import get_publish_channel

FAULT_DIR = Path(__file__).resolve().parent
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
#: Seconds the node may take to boot (it takes ~4 s here).
BROKER_START_DEADLINE = 60.0
#: Seconds a service process may take until it answers its first call.
SERVICE_READY_DEADLINE = 30.0


def _rabbit_tool(name: str) -> str | None:
    """Path of a RabbitMQ script, called directly (not through the
    ``/usr/sbin`` wrappers, which switch to the ``rabbitmq`` user and its
    Erlang cookie)."""
    direct = RABBIT_BIN / name
    if direct.exists():
        return str(direct)
    return shutil.which(name)


def _port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(taken: set[int]) -> int:
    """A free port below the ephemeral range.

    The Erlang CLI tools use ``dist port + 10000 .. + 10010``, so the ports
    stay low enough for that range to exist, and away from ports the kernel
    hands out to outgoing connections.
    """
    for _ in range(200):
        port = random.randrange(20000, 30000)
        if port in taken or not _port_is_free(port):
            continue
        if not _port_is_free(port + 10000):
            continue
        taken.add(port)
        return port
    raise RuntimeError("no free port found for the private RabbitMQ node")


class PrivateBroker:
    """A RabbitMQ node of our own: start it, fault it, stop it.

    Its ``ctl`` calls go through the green ``subprocess`` of the patched
    test process, so caller greenthreads keep running while the broker is
    stopped or started.
    """

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        taken: set[int] = set()
        self.port = _free_port(taken)
        self.dist_port = _free_port(taken)
        self.node = f"nameko_like_fault_{os.getpid()}@localhost"
        self.user = "fault_user"
        #: distinctive, so a test can check it never reaches a log
        self.password = "fault-pw-" + secrets.token_hex(8)
        self.server = _rabbit_tool("rabbitmq-server")
        self.ctl_tool = _rabbit_tool("rabbitmqctl")
        self.log_dir = base_dir / "log"
        self.env = self._environment()
        # for _stop_orphaned_nodes(), should this session die without teardown
        (base_dir / "owner.pid").write_text(str(os.getpid()))
        (base_dir / "node").write_text(self.node)

    def _environment(self) -> dict[str, str]:
        base = self.base_dir
        cookie = base / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        (base / "enabled_plugins").write_text("[].\n")
        # Our own config and env files: the machine's files name port 5672
        # and the shared node's name.
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            "log.file.level = info\n"
        )
        (base / "rabbitmq-env.conf").write_text("")
        env = dict(os.environ)
        env.update({
            # The server and the CLI read the cookie from $HOME.
            "HOME": str(base),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.log_dir),
            "RABBITMQ_PID_FILE": str(base / "rabbit.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        })
        env.pop("RABBITMQ_ERLANG_COOKIE", None)
        return env

    # -- running rabbitmqctl -----------------------------------------------------

    def ctl(self, *args: str, timeout: float = 60.0,
            check: bool = True) -> subprocess.CompletedProcess:
        """Run ``rabbitmqctl -n <node> args...``."""
        assert self.ctl_tool is not None
        result = subprocess.run(
            [self.ctl_tool, "-n", self.node, "-q", *args],
            env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"rabbitmqctl {' '.join(args)} failed ({result.returncode}): "
                f"{result.stdout.strip()} {result.stderr.strip()[-2000:]}"
            )
        return result

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Boot the node and wait until it accepts AMQP connections."""
        assert self.server is not None
        subprocess.run([self.server, "-detached"], env=self.env, check=True, timeout=30,
                       capture_output=True)
        deadline = time.monotonic() + BROKER_START_DEADLINE
        while True:
            # await_startup gives up at once while the node is not yet
            # registered with epmd; retry it until the deadline.
            result = self.ctl("await_startup", timeout=BROKER_START_DEADLINE, check=False)
            if result.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"private RabbitMQ node {self.node} did not start within "
                    f"{BROKER_START_DEADLINE}s; see {self.log_dir}:\n{self.log_tail()}"
                )
            time.sleep(0.5)
        self.ctl("add_user", self.user, self.password)
        self.ctl("set_user_tags", self.user, "administrator")

    def stop(self) -> None:
        """Halt the node (and make sure its process is gone)."""
        self.ctl("stop", timeout=60, check=False)
        pid_file = self.base_dir / "rabbit.pid"
        if pid_file.exists():
            try:
                pid = int(pid_file.read_text().strip())
            except ValueError:
                return
            deadline = time.monotonic() + 15
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _pid_alive(pid):
                os.kill(pid, signal.SIGKILL)

    def stop_app(self) -> None:
        """Stop the broker application: every client connection drops."""
        self.ctl("stop_app")

    def start_app(self) -> None:
        """Start the broker application again; durable queues come back."""
        self.ctl("start_app")

    def log_tail(self, lines: int = 40) -> str:
        logs = sorted(self.log_dir.glob("*.log")) if self.log_dir.exists() else []
        text = "".join(path.read_text(errors="replace") for path in logs)
        return "\n".join(text.splitlines()[-lines:])

    # -- vhosts ------------------------------------------------------------------

    def add_vhost(self, vhost: str) -> None:
        self.ctl("add_vhost", vhost)
        self.ctl("set_permissions", "-p", vhost, self.user, ".*", ".*", ".*")

    def delete_vhost(self, vhost: str) -> None:
        self.ctl("delete_vhost", vhost, check=False)

    def uri(self, vhost: str) -> str:
        return f"amqp://{self.user}:{self.password}@127.0.0.1:{self.port}/{vhost}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: Prefix of the private nodes' directories under the temp dir.
BASE_DIR_PREFIX = "nameko_like_fault_"


def _stop_orphaned_nodes() -> None:
    """Halt private nodes left running by fault sessions that were killed
    before their teardown (their owner process is gone)."""
    ctl = _rabbit_tool("rabbitmqctl")
    for base in Path(tempfile.gettempdir()).glob(BASE_DIR_PREFIX + "*"):
        try:
            owner = int((base / "owner.pid").read_text())
            node = (base / "node").read_text().strip()
        except (OSError, ValueError):
            continue
        if _pid_alive(owner):
            continue  # a session still running
        env = dict(os.environ, HOME=str(base),
                   RABBITMQ_CONF_ENV_FILE=str(base / "rabbitmq-env.conf"))
        subprocess.run([ctl, "-n", node, "stop"], env=env, capture_output=True,
                       timeout=60, check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def fault_broker() -> Iterator[PrivateBroker]:
    """The private RabbitMQ node of the fault tier (started once per session)."""
    if _rabbit_tool("rabbitmq-server") is None or _rabbit_tool("rabbitmqctl") is None:
        pytest.skip("the fault tier needs RabbitMQ installed (rabbitmq-server, rabbitmqctl)")
    _stop_orphaned_nodes()
    base_dir = Path(tempfile.mkdtemp(prefix=BASE_DIR_PREFIX))
    base_dir.chmod(0o755)
    broker = PrivateBroker(base_dir)
    try:
        broker.start()
    except BaseException:
        broker.stop()
        raise
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(base_dir, ignore_errors=True)


@pytest.fixture
def fault_config(fault_broker: PrivateBroker, tmp_path: Path) -> Iterator[dict]:
    """A config for a fresh vhost of the private broker, deleted after the test."""
    vhost = f"fault_{uuid.uuid4().hex[:10]}"
    fault_broker.add_vhost(vhost)
    config = {"AMQP_URI": fault_broker.uri(vhost)}
    try:
        yield config
    finally:
        # the test process's shared publish channel for this vhost
        get_publish_channel(config).close()
        fault_broker.delete_vhost(vhost)


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
