"""What a dead-lettered message writes to the log cannot be forged by its publisher."""

import logging

import amqp
import pytest

from nameko_like.events import event_handler
from nameko_like._eventlet import eventlet

pytestmark = pytest.mark.integration


class Listener:
    name = "listener"

    @event_handler("source", "created")
    def on_created(self, payload):  # never reached: the body is not JSON
        raise AssertionError(payload)


def test_hostile_header_values_are_escaped_in_the_dead_letter_log(
        container_factory, rabbit_config, caplog, take_messages):
    container = container_factory(Listener, rabbit_config)
    container.start()
    forged = "x\n2026-12-04 00:00:00 CRITICAL root: forged line\r"
    huge_key = "k" * 5000
    with caplog.at_level(logging.WARNING, logger="nameko_like.amqp.dead_letter"):
        host = rabbit_config["AMQP_URI"].split("@")[1].split("/")[0]
        vhost = rabbit_config["vhost"]
        with amqp.Connection(host=host, virtual_host=vhost) as connection:
            channel = connection.channel()
            channel.basic_publish(
                amqp.Message(b"{not json", content_type="application/json",
                             application_headers={"x-original-exchange": forged,
                                                  "x-original-routing-key": huge_key}),
                exchange="source.events", routing_key="created")
        [message] = take_messages(rabbit_config, "listener.dead-letter", timeout=10)
        for _ in range(500):  # the log line comes before the dead-letter publish
            if any("dead-lettering" in r.getMessage() for r in caplog.records):
                break
            eventlet.sleep(0.01)
    # nothing lost: the message and its headers are kept as they came
    assert message.body == b"{not json"
    assert message.headers["x-original-exchange"] == forged
    [line] = [r.getMessage() for r in caplog.records if "dead-lettering" in r.getMessage()]
    assert "\n" not in line and "\r" not in line
    assert "x\\n2026-12-04 00:00:00 CRITICAL root: forged line\\r" in line
    assert len(line) < 1000
    assert "(5000 characters)" in line
