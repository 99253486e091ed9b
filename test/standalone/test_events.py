"""The standalone event dispatcher from a plain (unpatched) Python program.

The handling service runs in this (patched) test process; the dispatcher
is a script run with ``sys.executable``.
"""

import json
import sys
import textwrap
import time

import pytest
from eventlet.green import subprocess

from nameko_like._eventlet import eventlet
from nameko_like.events import event_handler
from nameko_like.extensions import DependencyProvider

pytestmark = pytest.mark.integration

handled = []


class WorkerCtx(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return worker_ctx


class Listener:
    name = "listener"
    ctx = WorkerCtx()

    @event_handler("script", "ran")
    def on_ran(self, payload):
        handled.append((payload, self.ctx.data.get("user_id")))


UNPATCHED_DISPATCHER = textwrap.dedent("""
    import json
    import sys

    from eventlet import patcher

    from nameko_like.standalone.events import event_dispatcher

    config = json.loads(sys.argv[1])
    dispatch = event_dispatcher(config, context_data={"user_id": "from-script"})
    dispatch("script", "ran", "sync")
    outcomes = [dispatch.dispatch_async("script", "ran", n) for n in range(50)]
    for outcome in outcomes:
        dispatch.wait(outcome, timeout=10)
    print(json.dumps({"patched": patcher.is_monkey_patched("socket")}))
""")


def test_event_dispatcher_in_an_unpatched_process(container_factory, rabbit_config, tmp_path):
    handled.clear()
    container_factory(Listener, dict(rabbit_config)).start()
    script = tmp_path / "dispatch.py"
    script.write_text(UNPATCHED_DISPATCHER)

    process = subprocess.Popen(
        [sys.executable, str(script), json.dumps({"AMQP_URI": rabbit_config["AMQP_URI"]})],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr.decode()
    assert json.loads(stdout.decode().strip().splitlines()[-1]) == {"patched": False}

    deadline = time.monotonic() + 5
    while len(handled) < 51 and time.monotonic() < deadline:
        eventlet.sleep(0.01)
    eventlet.sleep(0.2)
    assert handled[0] == ("sync", "from-script")
    assert sorted(payload for payload, _ in handled[1:]) == list(range(50))
    assert {user for _, user in handled} == {"from-script"}


def test_headers_and_publisher_options_apply_to_every_dispatch(rabbit_config, take_messages):
    from kombu import Connection, Exchange, Queue

    from nameko_like.standalone.events import event_dispatcher

    with Connection(rabbit_config["AMQP_URI"]) as connection:
        Queue("captured", Exchange("script.events", type="topic", durable=True),
              routing_key="ran")(connection.channel()).declare()

    dispatch = event_dispatcher(rabbit_config, context_data={"user_id": "u-1"},
                                headers={"x-extra": "yes"}, delivery_mode=1, priority=3)
    dispatch("script", "ran", "first")
    dispatch("script", "ran", "second")

    messages = take_messages(rabbit_config, "captured", count=2)
    assert [json.loads(message.body) for message in messages] == ["first", "second"]
    for message in messages:
        assert message.headers == {"x-extra": "yes", "nameko.user_id": "u-1"}
        assert message.properties["delivery_mode"] == 1
        assert message.properties["priority"] == 3
