"""A private RabbitMQ node for tests that fault the broker.

Fault tests stop the broker's application, restart it or need listeners the
shared broker has not got (TLS, say). Doing that to the broker on 5672 would
break every other test and benchmark using it, so :class:`PrivateBroker`
starts a node of its own: free ports, its own ``HOME`` and Erlang cookie,
its own data (mnesia) and log directories, no plugins and its own config
file, all in a fresh temporary directory::

    from nameko_like.testing.private_broker import PrivateBroker, stop_orphaned_nodes

    stop_orphaned_nodes()              # nodes left behind by a killed run
    with PrivateBroker(user="tester") as broker:
        broker.add_vhost("faults")
        config = {"AMQP_URI": broker.amqp_uri("faults")}
        ...
        broker.stop_app()              # every client connection drops
        broker.start_app()

It needs RabbitMQ installed (``rabbitmq-server`` and ``rabbitmqctl``, see
:func:`rabbitmq_available`), runs on Linux and takes a few seconds to boot.

Every wait is bounded. The ``rabbitmqctl`` and server calls go through
``subprocess`` at call time, so in a test process monkey patched by eventlet
(as the pytest plugin does) they are green and other greenthreads keep
running while the broker stops or starts.

This module is imported by nothing else of the package and imports neither
pytest nor ``requests``: the pytest plugin loads in every run.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from nameko_like.testing.broker_processes import (
    _NODE_FILE,
    _OWNER_FILE,
    _PID_FILE,
    DEFAULT_DIR_PREFIX,
    DEFAULT_START_DEADLINE,
    PrivateBrokerError,
    _cli_environment,
    _halt,
    _kill_node,
    free_port,
    rabbit_tool,
    rabbitmq_available,
    stop_orphaned_nodes,
)

__all__ = ["PrivateBroker", "PrivateBrokerError", "free_port", "rabbit_tool",
           "rabbitmq_available", "stop_orphaned_nodes"]

logger = logging.getLogger(__name__)

_node_counts: dict[str, int] = {}


class PrivateBroker:
    """A RabbitMQ node of its own, on 127.0.0.1, for faulting in tests.

    Args:
        node_prefix: the node is ``<node_prefix>_<pid>@localhost`` (with a
            counter appended for a second broker of the same prefix in one
            process).
        dir_prefix: prefix of its temporary directory; give
            :func:`stop_orphaned_nodes` the same prefix (or a prefix of it).
        user: a user to create, tagged ``administrator``; None keeps the
            node's default ``guest``/``guest`` (usable from localhost only).
        password: that user's password; a random one when None.
        extra_ports: names of more free ports to reserve, in :attr:`ports`
            (e.g. ``("ssl",)`` for a TLS listener).
        extra_config: more ``rabbitmq.conf`` lines, or a callable that gets
            the broker (ports reserved) and returns them.
        start_deadline: seconds the node may take to boot.
        cookie: the Erlang cookie; nodes that form a cluster share one
            (:mod:`nameko_like.testing.private_cluster`). A random one when None.
        create_user: whether :meth:`start` creates ``user`` (a node that
            joins a cluster gets the cluster's users instead).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, node_prefix: str = "nameko_like_private",
                 dir_prefix: str = DEFAULT_DIR_PREFIX, *, user: str | None = None,
                 password: str | None = None, extra_ports: Sequence[str] = (),
                 extra_config: Iterable[str] | Callable[[PrivateBroker], Iterable[str]] = (),
                 start_deadline: float = DEFAULT_START_DEADLINE,
                 cookie: str | None = None, create_user: bool = True) -> None:
        count = _node_counts.get(node_prefix, 0) + 1
        _node_counts[node_prefix] = count
        suffix = "" if count == 1 else f"_{count}"
        #: the Erlang node name, for ``rabbitmqctl -n``
        self.node = f"{node_prefix}_{os.getpid()}{suffix}@localhost"
        self.dir_prefix = dir_prefix
        self.user = user if user is not None else "guest"
        self.password = (password if password is not None
                         else "guest" if user is None
                         else "pw-" + secrets.token_hex(8))
        self._create_user = user is not None and create_user
        self._cookie = cookie or secrets.token_hex(16).upper()
        taken: set[int] = set()
        #: reserved ports by name: ``amqp``, ``dist`` and the extra ones
        self.ports: dict[str, int] = {"amqp": free_port(taken), "dist": free_port(taken)}
        for name in extra_ports:
            self.ports[name] = free_port(taken)
        self._extra_config = extra_config
        self.start_deadline = start_deadline
        self.server_tool = rabbit_tool("rabbitmq-server")
        self.ctl_tool = rabbit_tool("rabbitmqctl")
        #: the node's directory; made by :meth:`start`, removed by :meth:`stop`
        self.base_dir: Path | None = None
        self.env: dict[str, str] = {}
        self._running = False

    @property
    def port(self) -> int:
        """The plain AMQP port."""
        return self.ports["amqp"]

    @property
    def log_dir(self) -> Path | None:
        """Where the node writes its logs (None before :meth:`start`)."""
        return None if self.base_dir is None else self.base_dir / "log"

    def amqp_uri(self, vhost: str = "/", *, host: str = "127.0.0.1",
                 port: int | None = None) -> str:
        """An ``AMQP_URI`` for ``vhost`` with the broker's user (``port``:
        another listener's, such as ``ports["ssl"]``)."""
        path = "" if vhost == "/" else quote(vhost, safe="")
        credentials = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        return f"amqp://{credentials}@{host}:{port or self.port}/{path}"

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> PrivateBroker:
        """Boot the node and wait until it accepts AMQP connections.

        Raises:
            PrivateBrokerError: RabbitMQ is not installed, or the node did
                not start within ``start_deadline`` (the message holds the
                tail of its log). The node is stopped again first.
        """
        if self.server_tool is None or self.ctl_tool is None:
            raise PrivateBrokerError("RabbitMQ is not installed (rabbitmq-server, rabbitmqctl)")
        if self._running:
            return self
        try:
            self._prepare()
            self._boot()
            if self._create_user:
                self.rabbitmqctl("add_user", self.user, self.password)
                self.rabbitmqctl("set_user_tags", self.user, "administrator")
        except BaseException:
            self.stop()
            raise
        logger.info("private RabbitMQ node %s listening on 127.0.0.1:%s", self.node, self.port)
        return self

    def _prepare(self) -> None:
        """Make the node's directory, files and environment."""
        base = Path(tempfile.mkdtemp(prefix=self.dir_prefix))
        self.base_dir = base
        # mkdtemp makes it 0700; let people and CI jobs of other users read
        # the logs of a failed run.
        base.chmod(0o755)
        # Marks the directory for stop_orphaned_nodes(), should this process
        # die before stop().
        (base / _OWNER_FILE).write_text(str(os.getpid()))
        (base / _NODE_FILE).write_text(self.node)
        cookie = base / ".erlang.cookie"
        cookie.write_text(self._cookie)
        cookie.chmod(0o400)  # Erlang refuses a cookie others can read
        (base / "enabled_plugins").write_text("[].\n")
        extra = self._extra_config
        extra_lines = list(extra(self) if callable(extra) else extra)
        # Our own config and env files: the machine's ones name port 5672
        # and the shared node's name.
        (base / "rabbitmq.conf").write_text("".join(
            line + "\n" for line in
            [f"listeners.tcp.1 = 127.0.0.1:{self.port}", *extra_lines, "log.file.level = info"]
        ))
        (base / "rabbitmq-env.conf").write_text("")
        env = _cli_environment(base)
        env.update({
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.ports["dist"]),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_PID_FILE": str(base / _PID_FILE),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            # Distribution on loopback only: the node is nobody else's business.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        })
        self.env = env

    def _boot(self) -> None:
        assert self.server_tool is not None
        self._running = True  # from here on, stop() has something to stop
        result = subprocess.run([self.server_tool, "-detached"], env=self.env,
                                capture_output=True, text=True, timeout=30, check=False)
        if result.returncode != 0:
            raise PrivateBrokerError(
                f"rabbitmq-server -detached failed ({result.returncode}): "
                f"{result.stderr.strip()[-2000:]}")
        deadline = time.monotonic() + self.start_deadline
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PrivateBrokerError(
                    f"private RabbitMQ node {self.node} did not start within "
                    f"{self.start_deadline}s; see {self.log_dir}:\n{self.log_tail()}")
            # await_startup gives up at once while the node is not yet
            # registered with epmd: retry it until the deadline.
            try:
                result = self.rabbitmqctl("await_startup", timeout=max(remaining, 1.0),
                                          check=False)
            except subprocess.TimeoutExpired:
                continue
            if result.returncode == 0:
                return
            time.sleep(0.5)

    def stop(self) -> None:
        """Halt the node (SIGKILL if ``rabbitmqctl stop`` does not do it) and
        remove its directory. Safe to call more than once."""
        if self.base_dir is None:
            return
        if self._running:
            _halt(self.ctl_tool, self.node, self.env, self.base_dir,
                  kill_unverified=True)
            self._running = False
            logger.info("private RabbitMQ node %s stopped", self.node)
        shutil.rmtree(self.base_dir, ignore_errors=True)
        self.base_dir = None

    def stop_node(self, kill: bool = False) -> None:
        """Stop the node's VM but keep its directory (data, logs), for
        :meth:`start_node`: a node that goes down. ``kill``: SIGKILL, as a
        crash, instead of ``rabbitmqctl stop``."""
        if self.base_dir is None or not self._running:
            return
        if kill:
            _kill_node(self.base_dir)
        else:
            _halt(self.ctl_tool, self.node, self.env, self.base_dir, kill_unverified=True)
        self._running = False
        logger.info("private RabbitMQ node %s %s", self.node, "killed" if kill else "stopped")

    def start_node(self) -> None:
        """Boot a node stopped by :meth:`stop_node` again, with its data."""
        if self.base_dir is None:
            raise PrivateBrokerError(f"{self.node} was never started (call start())")
        if not self._running:
            self._boot()

    # typing.Self needs Python 3.11; this package supports 3.10
    def __enter__(self) -> PrivateBroker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- faults and administration -------------------------------------------------

    def rabbitmqctl(self, *args: str, timeout: float = 60.0,
                    check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``rabbitmqctl -n <node> -q args...`` and return its result.

        Raises:
            PrivateBrokerError: ``check`` and a non-zero exit status.
            subprocess.TimeoutExpired: it took over ``timeout`` seconds.
        """
        if self.ctl_tool is None:
            raise PrivateBrokerError("rabbitmqctl is not installed")
        result = subprocess.run([self.ctl_tool, "-n", self.node, "-q", *args], env=self.env,
                                capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise PrivateBrokerError(
                f"rabbitmqctl {' '.join(args)} failed ({result.returncode}): "
                f"{result.stdout.strip()} {result.stderr.strip()[-2000:]}")
        return result

    def stop_app(self) -> None:
        """Stop the broker application (the VM stays up): every client
        connection drops, as in a broker restart."""
        self.rabbitmqctl("stop_app")

    def start_app(self) -> None:
        """Start the broker application again; durable queues come back."""
        self.rabbitmqctl("start_app")

    def add_vhost(self, vhost: str) -> None:
        """Create ``vhost`` and give the broker's user every permission on it."""
        self.rabbitmqctl("add_vhost", vhost)
        self.rabbitmqctl("set_permissions", "-p", vhost, self.user, ".*", ".*", ".*")

    def add_vhosts(self, vhosts: Sequence[str]) -> None:
        """Create every vhost of ``vhosts`` with all permissions for the broker's user,
        in one ``rabbitmqctl import_definitions`` (each ``rabbitmqctl`` call boots an
        Erlang VM: about half a second of CPU, which :meth:`add_vhost` spends twice)."""
        if self.base_dir is None:
            raise PrivateBrokerError(f"{self.node} was never started (call start())")
        definitions = {
            "vhosts": [{"name": vhost} for vhost in vhosts],
            "permissions": [{"user": self.user, "vhost": vhost, "configure": ".*",
                             "write": ".*", "read": ".*"} for vhost in vhosts],
        }
        # a file: this rabbitmqctl reads no definitions from standard input
        path = self.base_dir / f"vhosts-{secrets.token_hex(4)}.json"
        path.write_text(json.dumps(definitions))
        try:
            self.rabbitmqctl("import_definitions", str(path))
        finally:
            path.unlink()

    def delete_vhost(self, vhost: str) -> None:
        """Delete ``vhost``; no error if it is gone."""
        self.rabbitmqctl("delete_vhost", vhost, check=False)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the node's logs (for error messages)."""
        log_dir = self.log_dir
        logs = sorted(log_dir.glob("*.log")) if log_dir is not None and log_dir.exists() else []
        text = "".join(path.read_text(errors="replace") for path in logs)
        return "\n".join(text.splitlines()[-lines:])
