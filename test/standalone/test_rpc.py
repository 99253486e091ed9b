"""Standalone RPC proxies from a plain (unpatched) Python program, and from a
patched one with many greenthreads sharing one proxy.

The services run in this (patched) test process; the unpatched client is a
script run with ``sys.executable``.
"""

import json
import sys
import textwrap

import pytest
from eventlet.green import subprocess

from nameko_like._eventlet import eventlet
from nameko_like.exceptions import RemoteError, RpcConnectionError
from nameko_like.extensions import DependencyProvider
from nameko_like.rpc import rpc
from nameko_like.standalone.rpc import ClusterRpcProxy, ServiceRpcProxy


class Target:
    name = "target"

    @rpc
    def echo(self, value):
        return value

    @rpc
    def slow(self, seconds, value=None):
        eventlet.sleep(seconds)
        return value

    @rpc
    def fail(self, *args):
        raise ValueError(*args)


UNPATCHED_CLIENT = textwrap.dedent("""
    import json
    import sys
    import threading
    import time

    from eventlet import patcher

    from nameko_like.exceptions import RemoteError, RpcTimeout, UnknownService
    from nameko_like.standalone.rpc import ClusterRpcProxy, ServiceRpcProxy

    config = json.loads(sys.argv[1])
    out = {"patched": patcher.is_monkey_patched("socket") or patcher.is_monkey_patched("thread")}

    with ClusterRpcProxy(config, timeout=10) as cluster:
        out["sync"] = cluster.target.echo("hello")
        replies = [cluster.target.echo.call_async(n) for n in range(100)]
        out["async"] = [reply.result() for reply in replies]
        try:
            cluster.target.fail("bad", 1)
        except RemoteError as exc:
            out["remote_error"] = [exc.exc_type, exc.exc_args]
        started = time.monotonic()
        try:
            cluster.nobody.anything()
        except UnknownService:
            out["unknown_service_seconds"] = time.monotonic() - started

        # OS threads sharing the one proxy
        results = {}
        def caller(number):
            results[number] = [cluster.target.echo([number, n]) for n in range(10)]
        threads = [threading.Thread(target=caller, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        out["threads_ok"] = all(
            results.get(n) == [[n, i] for i in range(10)] for n in range(8))

    with ServiceRpcProxy("target", config, timeout=0.6) as target:
        started = time.monotonic()
        try:
            target.slow(0.8, "late")
        except RpcTimeout:
            out["timeout_seconds"] = time.monotonic() - started
        # the late reply arrives while this call waits, and is not taken for it
        out["after_timeout"] = target.slow(0.3, "prompt")
        # waiting without taking the result: a plain script reads the connection meanwhile
        reply = target.slow.call_async(0.3, "waited")
        out["wait"] = [reply.wait(0.05), reply.wait(5), reply.result()]

    print(json.dumps(out))
""")


def run_unpatched(tmp_path, script, *args, timeout=60):
    path = tmp_path / "client.py"
    path.write_text(script)
    process = subprocess.Popen(
        [sys.executable, str(path), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr.decode()
    return json.loads(stdout.decode().strip().splitlines()[-1])


@pytest.mark.integration
def test_cluster_and_service_proxies_in_an_unpatched_process(
        container_factory, rabbit_config, tmp_path):
    container_factory(Target, dict(rabbit_config)).start()

    client_config = json.dumps({"AMQP_URI": rabbit_config["AMQP_URI"]})
    out = run_unpatched(tmp_path, UNPATCHED_CLIENT, client_config)

    assert out["patched"] is False
    assert out["sync"] == "hello"
    assert out["async"] == list(range(100))
    # exc_args cross the wire made safe for serialization, as in Nameko: 1 -> "1"
    assert out["remote_error"] == ["ValueError", ["bad", "1"]]
    assert out["unknown_service_seconds"] < 1.0
    assert out["threads_ok"] is True
    assert 0.55 < out["timeout_seconds"] < 1.5
    assert out["after_timeout"] == "prompt"
    assert out["wait"] == [False, True, "waited"]


def test_fifty_greenthreads_share_one_cluster_proxy(container_factory, backend):
    container_factory(Target, dict(backend, max_workers=20)).start()

    def caller(cluster, number):
        return [cluster.target.echo([number, n]) for n in range(5)]

    with ClusterRpcProxy(backend, timeout=10) as cluster:
        pool = eventlet.GreenPool(50)
        threads = [pool.spawn(caller, cluster, number) for number in range(50)]
        results = [thread.wait() for thread in threads]
    assert results == [[[number, n] for n in range(5)] for number in range(50)]


def test_greenthreads_share_one_service_proxy_with_call_async(container_factory, backend):
    container_factory(Target, dict(backend)).start()

    def caller(target, number):
        replies = [target.slow.call_async(0.01, [number, n]) for n in range(4)]
        return [reply.result() for reply in replies]

    with ServiceRpcProxy("target", backend, timeout=10) as target:
        pool = eventlet.GreenPool(50)
        threads = [pool.spawn(caller, target, number) for number in range(50)]
        results = [thread.wait() for thread in threads]
    assert results == [[[number, n] for n in range(4)] for number in range(50)]


def test_a_reply_can_be_waited_for_before_its_result_is_taken(container_factory, backend):
    container_factory(Target, dict(backend)).start()
    with ServiceRpcProxy("target", backend, timeout=10) as target:
        reply = target.slow.call_async(0.3, "waited")
        assert reply.wait(0.05) is False  # not yet, and still expected
        assert reply.wait(5) is True
        assert reply.ready
        assert reply.result() == "waited"
        assert reply.wait(0) is True
        failing = target.fail.call_async("no")
        assert failing.wait(5) is True
        with pytest.raises(RemoteError):
            failing.result()


class CallerContext(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return worker_ctx


class Inspector:
    name = "inspector"
    ctx = CallerContext()

    @rpc
    def stack(self):
        return self.ctx.call_id_stack


@pytest.mark.parametrize("make_proxy", [
    lambda config: ClusterRpcProxy(config, timeout=10),
    lambda config: ServiceRpcProxy("target", config, timeout=10),
], ids=["cluster", "service"])
def test_one_proxy_object_can_be_entered_and_started_again(container_factory, backend,
                                                           make_proxy):
    container_factory(Target, dict(backend)).start()
    standalone = make_proxy(backend)

    def echo(proxy, value):
        return (proxy.target if isinstance(standalone, ClusterRpcProxy) else proxy).echo(value)

    with standalone as first:
        assert echo(first, 1) == 1
    with pytest.raises(RpcConnectionError):
        echo(first, "stopped")
    with standalone as second:
        assert second is first
        assert echo(second, 2) == 2
    for value in (3, 4):
        proxy = standalone.start()
        try:
            assert echo(proxy, value) == value
        finally:
            standalone.stop()


def test_calls_carry_the_proxy_call_id_on_the_stack(container_factory, backend):
    container_factory(Inspector, dict(backend)).start()
    parents = [f"parent.{n}" for n in range(12)]
    with ClusterRpcProxy(backend, timeout=10) as cluster:
        first, second = cluster.inspector.stack(), cluster.inspector.stack()
    with ClusterRpcProxy(dict(backend, parent_calls_tracked=3), timeout=10,
                         context_data={"call_id_stack": parents}) as cluster:
        nested = cluster.inspector.stack()

    caller = first[0]
    assert caller.startswith("standalone_rpc_proxy.call.")
    assert second[0] == caller  # one call id per proxy, as in Nameko
    assert first[1].startswith("inspector.stack.") and len(first) == 2
    # the proxy sends its parent_calls_tracked last parents and its own id
    # (the callee's config tracks more, so it keeps them all)
    assert nested[:-1] == [*parents[-3:], nested[-2]]
    assert nested[-2].startswith("standalone_rpc_proxy.call.")
