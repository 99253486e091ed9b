"""A private RabbitMQ cluster for tests that fault broker nodes.

:class:`PrivateCluster` starts ``size`` private nodes
(:class:`~nameko_like.testing.private_broker.PrivateBroker`: free ports,
data and log directories under the temporary directory, swept by
:func:`~nameko_like.testing.private_broker.stop_orphaned_nodes` when the
process that started them died) sharing one Erlang cookie of their own, and
joins the others to the first (``rabbitmqctl join_cluster``)::

    from nameko_like.testing.private_cluster import PrivateCluster

    with PrivateCluster(3, user="tester") as cluster:
        cluster.add_vhost("faults")
        config = {"AMQP_URI": cluster.amqp_uri("faults")}  # every node, failover
        cluster.stop_node(0)          # a node goes down; clients fail over
        cluster.start_node(0)
        cluster.wait_synchronised()   # its quorum queue members caught up

Nodes boot one after the other (a few seconds each); the test process may
be monkey patched by eventlet, every wait goes through ``subprocess`` and is
bounded.

Like :mod:`~nameko_like.testing.private_broker`, this module is imported by
nothing else of the package and imports neither pytest nor ``requests``.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from types import TracebackType

from nameko_like.testing.broker_processes import DEFAULT_DIR_PREFIX, PrivateBrokerError
from nameko_like.testing.private_broker import PrivateBroker

__all__ = ["PrivateCluster"]

logger = logging.getLogger(__name__)

#: Seconds :meth:`PrivateCluster.wait_synchronised` waits by default.
SYNC_DEADLINE = 60.0


class PrivateCluster:
    """``size`` private RabbitMQ nodes clustered together, on 127.0.0.1.

    Args:
        size: how many nodes (3 keeps a majority when one is down).
        node_prefix: node ``i`` is ``<node_prefix>_<pid>_n<i>@localhost``.
        dir_prefix: prefix of the nodes' temporary directories (give
            ``stop_orphaned_nodes`` the same prefix).
        user: a user to create (tagged ``administrator``); None keeps ``guest``.
        password: that user's password; a random one when None.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, size: int = 3, node_prefix: str = "nameko_like_cluster",
                 dir_prefix: str = DEFAULT_DIR_PREFIX, *, user: str | None = None,
                 password: str | None = None) -> None:
        if size < 1:
            raise ValueError(f"a cluster needs at least one node, got size={size}")
        cookie = secrets.token_hex(16).upper()
        if user is not None and password is None:
            password = "pw-" + secrets.token_hex(8)
        #: the nodes; the first is the one the others join
        self.nodes = [
            PrivateBroker(f"{node_prefix}_n{index}", dir_prefix, user=user, password=password,
                          cookie=cookie, create_user=index == 0)
            for index in range(size)
        ]
        self._down: set[int] = set()

    @property
    def user(self) -> str:
        """The user clients log in as."""
        return self.nodes[0].user

    @property
    def password(self) -> str:
        """That user's password."""
        return self.nodes[0].password

    def amqp_uri(self, vhost: str = "/") -> str:
        """An ``AMQP_URI`` naming every node, as failover alternatives
        (``amqp://...node0;amqp://...node1;...``)."""
        return ";".join(node.amqp_uri(vhost) for node in self.nodes)

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> PrivateCluster:
        """Boot every node and join them into one cluster.

        Raises:
            PrivateBrokerError: RabbitMQ is not installed, a node did not
                start or could not join (every node is stopped again first).
        """
        first = self.nodes[0]
        try:
            first.start()
            for node in self.nodes[1:]:
                node.start()
                # join_cluster wants the joining node's broker application stopped
                node.rabbitmqctl("stop_app")
                node.rabbitmqctl("join_cluster", first.node)
                node.rabbitmqctl("start_app")
                # the user was made on the first node; clients may connect here too
                node.user, node.password = first.user, first.password
            self._check_members()
        except BaseException:
            self.stop()
            raise
        logger.info("private RabbitMQ cluster of %d nodes: %s", len(self.nodes),
                    ", ".join(node.node for node in self.nodes))
        return self

    def _check_members(self) -> None:
        status = json.loads(self.nodes[0].rabbitmqctl(
            "cluster_status", "--formatter", "json").stdout)
        running = set(status.get("running_nodes", []))
        expected = {node.node for node in self.nodes}
        if running != expected:
            raise PrivateBrokerError(
                f"cluster formed with running nodes {sorted(running)}, expected "
                f"{sorted(expected)}")

    def stop(self) -> None:
        """Halt every node and remove their directories. Safe to call more than once."""
        for node in reversed(self.nodes):
            node.stop()

    # typing.Self needs Python 3.11; this package supports 3.10
    def __enter__(self) -> PrivateCluster:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- faults ------------------------------------------------------------------

    def running(self) -> list[PrivateBroker]:
        """The nodes not stopped by :meth:`stop_node`."""
        return [node for index, node in enumerate(self.nodes) if index not in self._down]

    def stop_node(self, index: int, kill: bool = False) -> None:
        """Take node ``index`` down (``kill``: SIGKILL, as a crash); its data stays.

        Refused when it would leave a minority running: quorum queues
        would then be unavailable, which is not the fault this helper makes.
        """
        if index in self._down:
            return
        left = len(self.nodes) - len(self._down) - 1
        if 2 * left <= len(self.nodes):
            raise PrivateBrokerError(
                f"stopping node {index} would leave {left} of {len(self.nodes)} nodes: "
                "no majority; start a stopped node first")
        self.nodes[index].stop_node(kill=kill)
        self._down.add(index)

    def start_node(self, index: int) -> None:
        """Boot node ``index`` again; it rejoins the cluster with its data."""
        if index not in self._down:
            return
        self.nodes[index].start_node()
        self._down.discard(index)

    # -- administration ------------------------------------------------------------

    def rabbitmqctl(self, *args: str, timeout: float = 60.0) -> str:
        """Run ``rabbitmqctl`` against a running node; return its output."""
        return self.running()[0].rabbitmqctl(*args, timeout=timeout).stdout

    def add_vhost(self, vhost: str) -> None:
        """Create ``vhost`` (cluster-wide) with every permission for the user."""
        self.running()[0].add_vhost(vhost)

    def delete_vhost(self, vhost: str) -> None:
        """Delete ``vhost``; no error if it is gone."""
        self.running()[0].delete_vhost(vhost)

    def quorum_members(self, vhost: str) -> dict[str, tuple[int, int]]:
        """Per quorum queue of ``vhost``: ``(members, online members)``."""
        rows = json.loads(self.rabbitmqctl(
            "list_queues", "-p", vhost, "name", "type", "members", "online",
            "--formatter", "json"))
        return {row["name"]: (len(row.get("members") or []), len(row.get("online") or []))
                for row in rows if row.get("type") == "quorum"}

    def wait_synchronised(self, vhost: str, timeout: float = SYNC_DEADLINE) -> float:
        """Wait until every member of every quorum queue of ``vhost`` is
        online again (after :meth:`start_node`); return the seconds waited.

        Raises:
            PrivateBrokerError: not within ``timeout``.
        """
        started = time.monotonic()
        members: dict[str, tuple[int, int]] = {}
        while time.monotonic() - started < timeout:
            members = self.quorum_members(vhost)
            if all(total == online == len(self.nodes) for total, online in members.values()):
                return time.monotonic() - started
            time.sleep(0.5)
        raise PrivateBrokerError(
            f"quorum queues of {vhost} not back on every node within {timeout}s: {members}")
