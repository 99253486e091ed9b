"""Processes behind :mod:`nameko_like.testing.private_broker`.

Finding the RabbitMQ tools and free ports, telling whether a node's process
still runs, halting a node, and sweeping up nodes left behind by test runs
that died: the operating-system side of running a private broker, kept apart
from the :class:`~nameko_like.testing.private_broker.PrivateBroker` API.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from nameko_like.exceptions import NamekoLikeException

logger = logging.getLogger(__name__)


class PrivateBrokerError(NamekoLikeException, RuntimeError):
    """A private node failed to start, or a ``rabbitmqctl`` call failed."""


#: Where the Debian/Ubuntu packages put the RabbitMQ scripts. They are called
#: directly rather than through the ``/usr/sbin`` wrappers, which switch to
#: the ``rabbitmq`` user and its Erlang cookie.
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
#: Prefix of the nodes' temporary directories unless told otherwise;
#: :func:`stop_orphaned_nodes` looks for directories with this prefix.
DEFAULT_DIR_PREFIX = "nameko_like_broker_"
#: Seconds a node may take to boot (a few seconds on a developer machine).
DEFAULT_START_DEADLINE = 60.0
#: Seconds ``rabbitmqctl stop`` may take before the node gets SIGKILL.
STOP_DEADLINE = 60.0
#: Seconds the node's process may take to exit after ``rabbitmqctl stop``.
EXIT_DEADLINE = 15.0

# Files in a node's directory that stop_orphaned_nodes() reads.
_OWNER_FILE = "owner.pid"
_NODE_FILE = "node"
_PID_FILE = "rabbit.pid"

# How many brokers each node prefix has had in this process (node names must
# be unique on the host; the pid makes them unique across processes).


def rabbit_tool(name: str) -> str | None:
    """Path of the RabbitMQ script ``name`` (``rabbitmq-server``,
    ``rabbitmqctl``), or None when RabbitMQ is not installed."""
    direct = RABBIT_BIN / name
    if direct.exists():
        return str(direct)
    return shutil.which(name)


def rabbitmq_available() -> bool:
    """Whether a private node can be started here (for skipping tests)."""
    return rabbit_tool("rabbitmq-server") is not None and rabbit_tool("rabbitmqctl") is not None


def _port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(taken: set[int]) -> int:
    """A free port in 20000..29999, not in ``taken`` (which it is added to).

    The Erlang CLI tools listen on ``dist port + 10000 .. + 10010``, so the
    ports stay low enough for that range to exist and be free, and away from
    the ports the kernel hands out to outgoing connections.
    """
    for _ in range(200):
        port = random.randrange(20000, 30000)
        if port in taken or not _port_is_free(port) or not _port_is_free(port + 10000):
            continue
        taken.add(port)
        return port
    raise PrivateBrokerError("no free port found for a private RabbitMQ node")


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs. A zombie counts as gone: where nobody reaps the
    detached node (pid 1 of some containers), its pid would otherwise stay
    "alive" after it exited."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, someone else's
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _runs_node(pid: int, base_dir: Path) -> bool | None:
    """Whether process ``pid`` is the Erlang VM of the node in ``base_dir``
    (its command line holds ``-home <base_dir>``); None when that cannot be
    read (no ``/proc``). Guards SIGKILL against a pid reused by an unrelated
    process."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return os.fsencode(base_dir) in cmdline.split(b"\0")


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _cli_environment(base_dir: Path) -> dict[str, str]:
    """The environment ``rabbitmqctl`` needs to reach a node of ``base_dir``."""
    env = dict(os.environ)
    # A cookie in the environment would win over the node's own one.
    env.pop("RABBITMQ_ERLANG_COOKIE", None)
    env.update({
        # The server and the CLI read the Erlang cookie from $HOME.
        "HOME": str(base_dir),
        # An empty env file: the machine's one names port 5672 and the
        # shared node.
        "RABBITMQ_CONF_ENV_FILE": str(base_dir / "rabbitmq-env.conf"),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    })
    return env


def _halt(ctl_tool: str | None, node: str, env: dict[str, str], base_dir: Path,
          kill_unverified: bool) -> None:
    """``rabbitmqctl stop``, then SIGKILL if the node's process outlives it.

    ``kill_unverified``: kill even when it cannot be checked that the pid
    is still the node's (fine right after our own start, not for a pid file
    of unknown age).
    """
    # Read first: the node deletes its pid file while stopping, possibly
    # before its process has exited.
    pid = _read_pid(base_dir / _PID_FILE)
    if ctl_tool is not None:
        try:
            subprocess.run([ctl_tool, "-n", node, "-q", "stop"], env=env, capture_output=True,
                           text=True, timeout=STOP_DEADLINE, check=False)
        except subprocess.TimeoutExpired:
            logger.warning("rabbitmqctl stop of %s timed out after %ss", node, STOP_DEADLINE)
    if pid is None:
        return
    deadline = time.monotonic() + EXIT_DEADLINE
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if not _pid_alive(pid):
        return
    ours = _runs_node(pid, base_dir)
    if ours or (ours is None and kill_unverified):
        logger.warning("private RabbitMQ node %s (pid %s) did not stop; killing it", node, pid)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _kill_node(base_dir: Path) -> None:
    """SIGKILL the node of ``base_dir`` (a crash) and wait until it is gone."""
    pid = _read_pid(base_dir / _PID_FILE)
    if pid is None or _runs_node(pid, base_dir) is False:
        raise PrivateBrokerError(f"no running node found in {base_dir}")
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + EXIT_DEADLINE
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def stop_orphaned_nodes(dir_prefix: str = DEFAULT_DIR_PREFIX) -> list[str]:
    """Halt private nodes left running by processes that died before
    :meth:`PrivateBroker.stop` (their owner pid is gone), and remove their
    directories. Returns the names of the nodes halted.

    Looks at temporary directories whose name starts with ``dir_prefix``;
    nodes of live processes are left alone.
    """
    ctl_tool = rabbit_tool("rabbitmqctl")
    halted = []
    for base in Path(tempfile.gettempdir()).glob(dir_prefix + "*"):
        try:
            owner = int((base / _OWNER_FILE).read_text())
            node = (base / _NODE_FILE).read_text().strip()
        except (OSError, ValueError):
            continue  # not a node directory, or one being written
        if _pid_alive(owner):
            continue  # its process still runs, and will stop it
        logger.info("stopping private RabbitMQ node %s left by dead process %s", node, owner)
        # The pid file may be old (a reboot since): kill only a verified pid.
        _halt(ctl_tool, node, _cli_environment(base), base, kill_unverified=False)
        shutil.rmtree(base, ignore_errors=True)
        halted.append(node)
    return halted
