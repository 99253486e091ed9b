"""Hooks that raise, hostile header values and fork(), against a service process.

Issue 12, sections 3 and 7, made for real: a subprocess service on the
private broker whose every worker's ``worker_result`` and
``worker_teardown`` raise; a raw py-amqp publish whose
``x-original-exchange`` header carries a newline and a forged CRITICAL log
line; a script that forks while its proxy and dispatcher are open.
"""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import unquote, urlsplit

import amqp
import pytest
from kombu import Connection

from nameko_like.standalone.rpc import ClusterRpcProxy

pytestmark = pytest.mark.fault

SERVICE = "hygiene_services:Hygiene"
RPC_QUEUE = "rpc-fault_hygiene"


def _vhost(config: dict) -> str:
    return unquote(urlsplit(config["AMQP_URI"]).path[1:])


def _queue_counts(broker, config: dict, queue: str) -> tuple[int, int]:
    """(ready, unacknowledged) messages of ``queue``, as the broker counts them."""
    rows = broker.rabbitmqctl("list_queues", "-p", _vhost(config), "--no-table-headers",
                              "name", "messages_ready", "messages_unacknowledged").stdout
    for line in rows.splitlines():
        name, ready, unacked = line.split()
        if name == queue:
            return int(ready), int(unacked)
    raise AssertionError(f"no queue {queue}: {rows}")


@pytest.mark.timeout(120)
def test_raising_hooks_neither_kill_the_service_nor_race_the_ack(
        fault_broker, fault_config, spawn_service, wait_ready, records, wait_until):
    service = spawn_service(SERVICE, fault_config)
    wait_ready(fault_config, "fault_hygiene")
    calls = 40
    with ClusterRpcProxy(fault_config, timeout=15) as cluster:
        replies = [cluster.fault_hygiene.double.call_async(f"c{n}", n) for n in range(calls)]
        results = [reply.result() for reply in replies]
        # the probe after every worker's hooks raised: the same process answers
        probe_pid = cluster.fault_hygiene.ping()
    wait_until(lambda: _queue_counts(fault_broker, fault_config, RPC_QUEUE) == (0, 0), 20)
    runs = records.ids("double")
    log = service.log()
    print(f"{calls} calls: {len(runs)} runs; worker_result errors "
          f"{log.count('RuntimeError: worker_result bug')}, worker_teardown errors "
          f"{log.count('RuntimeError: worker_teardown bug')}")

    assert [result["value"] for result in results] == [n * 2 for n in range(calls)]
    assert probe_pid == service.pid and service.alive
    # each request ran once: acknowledged once, never redelivered (a double
    # ack would close the channel and redeliver what was in flight)
    assert sorted(runs) == sorted(f"c{n}" for n in range(calls))
    # every error logged, with its traceback; none escaped to the container
    assert log.count("RuntimeError: worker_result bug") >= calls
    assert log.count("RuntimeError: worker_teardown bug") >= calls
    assert "failed outside its method" not in log
    assert "PRECONDITION_FAILED" not in log


@pytest.mark.timeout(120)
def test_a_forged_log_line_in_a_header_is_escaped(
        fault_config, spawn_service, wait_ready, wait_until):
    service = spawn_service(SERVICE, fault_config)
    wait_ready(fault_config, "fault_hygiene")
    forged = "x\n2026-12-04 00:00:00,000 1 CRITICAL root: forged line\r"
    parts = urlsplit(fault_config["AMQP_URI"])
    with amqp.Connection(host=f"{parts.hostname}:{parts.port}", userid=unquote(parts.username),
                         password=unquote(parts.password),
                         virtual_host=_vhost(fault_config)) as connection:
        channel = connection.channel()
        channel.basic_publish(
            amqp.Message(b"{not json", content_type="application/json",
                         application_headers={"x-original-exchange": forged}),
            exchange="fault_hygiene_source.events", routing_key="note")
    wait_until(lambda: "dead-lettering" in service.log(), 20)
    # The log line comes before the republish that declares the dead-letter
    # queue on first use: poll until the message is there.
    taken = []

    def take_dead_lettered() -> bool:
        with Connection(fault_config["AMQP_URI"]) as connection:
            try:
                got = connection.default_channel.basic_get("fault_hygiene.dead-letter",
                                                           no_ack=True)
            except amqp.exceptions.NotFound:
                return False
        if got is not None:
            taken.append(got)
        return bool(taken)

    wait_until(take_dead_lettered, 20)
    [message] = taken
    log_lines = service.log().splitlines()
    print("\n".join(line for line in log_lines if "forged" in line))

    # one line, escaped; no line of the log was forged
    [line] = [line for line in log_lines if "dead-lettering" in line]
    assert "x\\n2026-12-04 00:00:00,000 1 CRITICAL root: forged line\\r" in line
    assert [line for line in log_lines if "forged" in line] == [line]
    assert not any(line.startswith("2026-12-04") for line in log_lines)
    # the message is kept, its header as it came
    assert message is not None and message.body == b"{not json"
    assert message.headers["x-original-exchange"] == forged
    assert service.alive


#: Opens a proxy and a dispatcher, calls, forks: the child calls and
#: dispatches through the same objects, then the parent does again.
FORK_SCRIPT = """
import json, os, sys
from nameko_like._eventlet import eventlet
eventlet.monkey_patch()
from nameko_like.standalone.events import event_dispatcher
from nameko_like.standalone.rpc import ClusterRpcProxy
from nameko_like.worker_context import unique_id

config = {"AMQP_URI": sys.argv[1]}
proxy = ClusterRpcProxy(config, timeout=15)
cluster = proxy.start()
dispatch = event_dispatcher(config)

def local_port():
    return proxy._router.publish_channel._connection.connection.sock.getsockname()[1]

def work(tag):
    reply = cluster.fault_hygiene.double(tag, 1)
    dispatch("fault_hygiene_source", "note", {"id": tag})
    return {"tag": tag, "ids": [unique_id() for _ in range(3)], "port": local_port()}

before = work("parent-before")
reader, writer = os.pipe()
pid = os.fork()
if pid == 0:
    try:
        result = work("child")
    except BaseException as exc:
        result = {"error": repr(exc)}
    os.write(writer, json.dumps(result).encode())
    os._exit(0)
os.waitpid(pid, 0)
child = json.loads(os.read(reader, 65536))
after = work("parent-after")
proxy.stop()
print(json.dumps({"before": before, "child": child, "after": after}))
"""


@pytest.mark.timeout(120)
def test_a_forked_child_opens_its_own_connection(
        fault_config, spawn_service, wait_ready, records, wait_until, tmp_path):
    spawn_service(SERVICE, fault_config)
    wait_ready(fault_config, "fault_hygiene")
    script = tmp_path / "fork.py"
    script.write_text(FORK_SCRIPT)
    done = subprocess.run([sys.executable, str(script), fault_config["AMQP_URI"]],
                          capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    before, child, after = result["before"], result["child"], result["after"]
    wait_until(lambda: len(records.ids("event")) >= 3, 20)
    print(f"ports: parent {before['port']} -> {after['port']}, child {child.get('port')}")

    assert "error" not in child, child
    # the child made its own connection; the parent kept its own, undisturbed
    assert child["port"] != before["port"]
    assert after["port"] == before["port"]
    # ids drawn after the fork differ between parent and child
    assert not set(child["ids"]) & set(after["ids"])
    # each call and each event ran exactly once
    assert sorted(records.ids("double")) == ["child", "parent-after", "parent-before"]
    assert sorted(records.ids("event")) == ["child", "parent-after", "parent-before"]
