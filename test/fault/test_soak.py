"""Soak: 20,000 calls leave memory flat and no queue behind (issue 12, section 5).

Before the fix a call that failed fast (``UnknownService``: the request was
returned unroutable) left its pending reply, with the error's traceback, in
the caller's table: +3.7 KB a call, in standalone proxies and in
``RpcProxy``; and each short-lived standalone proxy left a durable reply
queue for ``RPC_REPLY_QUEUE_TTL`` (5 minutes).

Here a standalone ``ClusterRpcProxy`` and a service calling through
``RpcProxy`` each make 20,000 pipelined calls, half of them to a service that
does not exist; 200 short-lived proxies come and go; standalone event
dispatchers are made with a fresh config dict each. The RSS of the callers
and of the services is measured after a warm-up of the same shape and
again at the end; the broker's queues (``rabbitmqctl list_queues``) must be
those there were before.
"""

from __future__ import annotations

import ctypes
import gc
import time
from pathlib import Path

import pytest

from nameko_like.exceptions import UnknownService
from nameko_like.standalone.events import event_dispatcher
from nameko_like.standalone.rpc import ClusterRpcProxy

pytestmark = [pytest.mark.integration, pytest.mark.fault]

#: Calls in each soak (half of them fail fast with UnknownService).
SOAK_CALLS = 20_000
#: Calls in flight at once (call_async, then the results).
WINDOW = 250
#: Short-lived standalone proxies started and stopped.
SHORT_LIVED_PROXIES = 200
#: Standalone event dispatchers, each made from a config dict of its own.
DISPATCHERS = 2_000
#: Most a process's RSS may grow over a soak after the warm-up, in MB. The
#: leak fixed here was ~37 MB per 10,000 fast-failing calls.
RSS_SLACK_MB = 6.0


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size of process ``pid``, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def own_rss_mb() -> float:
    """This process's RSS once garbage and free heap pages are given back:
    what is left is what is still referenced (pytest keeps its own state)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    return rss_mb()


def queue_names(fault_broker, config: dict) -> list[str]:
    """Every queue of the test's vhost, as the broker lists them."""
    vhost = config["AMQP_URI"].rsplit("/", 1)[1]
    listed = fault_broker.rabbitmqctl("list_queues", "-p", vhost, "--no-table-headers", "name")
    return sorted(line.strip() for line in listed.stdout.splitlines() if line.strip())


def pipelined(cluster, calls: int) -> tuple[int, int]:
    """``calls`` calls, half to the backend, half to a service nobody serves."""
    ok = unknown = 0
    for _ in range(calls // (2 * WINDOW)):
        replies = [cluster.soak_backend.echo.call_async(index) for index in range(WINDOW)]
        missing = [cluster.soak_nobody.anything.call_async(index) for index in range(WINDOW)]
        ok += sum(1 for index, reply in enumerate(replies) if reply.result() == index)
        for reply in missing:
            try:
                reply.result()
            except UnknownService:
                unknown += 1
    return ok, unknown


@pytest.mark.timeout(120)
def test_standalone_proxy_soak(fault_broker, fault_config, spawn_service, wait_ready,
                               wait_until):
    backend = spawn_service("soak_services:SoakBackend", fault_config)
    wait_ready(fault_config, "soak_backend")
    queues_before = queue_names(fault_broker, fault_config)
    assert queues_before == ["rpc-soak_backend"]

    started = time.monotonic()
    with ClusterRpcProxy(fault_config, timeout=10) as cluster:
        assert pipelined(cluster, SOAK_CALLS // 4) == (SOAK_CALLS // 8, SOAK_CALLS // 8)  # warm-up
        caller_before, backend_before = own_rss_mb(), rss_mb(backend.pid)

        assert pipelined(cluster, SOAK_CALLS) == (SOAK_CALLS // 2, SOAK_CALLS // 2)
        # white-box: the router's table of calls awaiting a reply
        pending = cluster._router.waiting
        caller_after, backend_after = own_rss_mb(), rss_mb(backend.pid)
    soak_seconds = time.monotonic() - started

    # short-lived proxies: each has a reply queue while it runs, none after
    reply_queues = set()
    for index in range(SHORT_LIVED_PROXIES):
        with ClusterRpcProxy(fault_config, timeout=10) as cluster:
            assert cluster.soak_backend.echo(index) == index
            reply_queues.add(cluster._router.queue.name)
    assert len(reply_queues) == SHORT_LIVED_PROXIES

    # a dispatcher per event, each with a config dict of its own
    for index in range(DISPATCHERS):
        event_dispatcher(dict(fault_config))("soak_source", "tick", {"index": index})
    caller_end = own_rss_mb()

    print(f"{SOAK_CALLS} calls in {soak_seconds:.1f}s (with warm-up); RSS MB: caller "
          f"{caller_before:.1f} -> {caller_after:.1f} -> {caller_end:.1f} (after "
          f"{SHORT_LIVED_PROXIES} short-lived proxies and {DISPATCHERS} dispatchers), "
          f"backend {backend_before:.1f} -> {backend_after:.1f}")
    assert caller_after - caller_before < RSS_SLACK_MB
    assert pending == 0
    assert caller_end - caller_before < RSS_SLACK_MB
    assert backend_after - backend_before < RSS_SLACK_MB

    # no queue left behind: the proxies' reply queues went with them
    wait_until(lambda: queue_names(fault_broker, fault_config) == queues_before, timeout=10,
               message="only the queues there were before the soak")
    assert backend.alive


@pytest.mark.timeout(120)
def test_rpc_proxy_soak(fault_broker, fault_config, spawn_service, wait_ready):
    backend = spawn_service("soak_services:SoakBackend", fault_config)
    gateway = spawn_service("soak_services:SoakGateway", fault_config)
    wait_ready(fault_config, "soak_backend")
    wait_ready(fault_config, "soak_gateway")
    rounds = SOAK_CALLS // (2 * WINDOW)

    started = time.monotonic()
    with ClusterRpcProxy(fault_config, timeout=60) as cluster:
        warm_up = cluster.soak_gateway.fan_out(rounds // 4, WINDOW)
        assert warm_up == {"ok": rounds // 4 * WINDOW, "unknown": rounds // 4 * WINDOW,
                           "pending": 0}
        queues_before = queue_names(fault_broker, fault_config)
        gateway_before, backend_before = rss_mb(gateway.pid), rss_mb(backend.pid)

        soak = cluster.soak_gateway.fan_out(rounds, WINDOW)
        gateway_after, backend_after = rss_mb(gateway.pid), rss_mb(backend.pid)
    soak_seconds = time.monotonic() - started

    print(f"{SOAK_CALLS} RpcProxy calls in {soak_seconds:.1f}s (with warm-up): {soak}; RSS MB: "
          f"gateway {gateway_before:.1f} -> {gateway_after:.1f}, "
          f"backend {backend_before:.1f} -> {backend_after:.1f}")
    assert soak == {"ok": SOAK_CALLS // 2, "unknown": SOAK_CALLS // 2, "pending": 0}
    assert gateway_after - gateway_before < RSS_SLACK_MB
    assert backend_after - backend_before < RSS_SLACK_MB
    # the gateway's one reply queue (it stays while the service runs), the
    # two service queues, and the standalone caller's reply queue gone
    after = queue_names(fault_broker, fault_config)
    assert [name for name in after if not name.startswith("rpc.reply-standalone")] == [
        name for name in queues_before if not name.startswith("rpc.reply-standalone")]
    assert [name for name in after if name.startswith("rpc.reply-soak_gateway-")] != []
    assert gateway.alive and backend.alive
