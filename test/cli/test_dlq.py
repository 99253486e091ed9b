"""``nameko_like dlq``: real messages dead-lettered by a real service, the CLI as a subprocess.

An ``inbox`` service that accepts only JSON dead-letters a msgpack event
and a malformed JSON one; ``dlq`` lists and shows them, a dry run and an
unconfirmed replay change nothing, a replay to an unbound route keeps the
message, and once the service accepts msgpack a replayed event is handled.
"""

from __future__ import annotations

import time

import pytest
from kombu import Connection, Exchange, Producer, Queue

from nameko_like.events import event_handler
from nameko_like.testing.services import entrypoint_waiter

pytestmark = pytest.mark.integration

EXCHANGE = Exchange("shop.events", type="topic", durable=True)


class InboxV1:
    name = "inbox"

    @event_handler("shop", "order_placed")
    def on_order(self, payload):
        return payload


class InboxV2(InboxV1):
    """The same service, now configured to accept msgpack too."""


def publish(config, body, **options):
    with Connection(config["AMQP_URI"]) as connection:
        Producer(connection.channel()).publish(body, exchange=EXCHANGE,
                                               routing_key="order_placed", **options)


def dlq(cli, config, *args, **kwargs):
    return cli("dlq", *args, "--broker", config["AMQP_URI"], **kwargs)


def listed(cli, config):
    result = dlq(cli, config, "list", "inbox")
    assert result.returncode == 0, result.stderr
    return [line.split(None, 3) for line in result.stdout.splitlines()]


def wait_listed(cli, config, count, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        lines = listed(cli, config)
        if len(lines) == count or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


@pytest.fixture
def dead_letters(cli, rabbit_config, container_factory):
    """Three messages in inbox.dead-letter: two msgpack events, one malformed JSON event."""
    container = container_factory(InboxV1, dict(rabbit_config))
    container.start()
    publish(rabbit_config, {"order": 1, "item": "teapot"}, serializer="msgpack")
    publish(rabbit_config, {"order": 2, "item": "kettle"}, serializer="msgpack")
    publish(rabbit_config, b"{not json", content_type="application/json",
            content_encoding="utf-8")
    lines = wait_listed(cli, rabbit_config, 3)
    assert len(lines) == 3, lines
    container.stop()
    return lines


def test_list_and_show(cli, rabbit_config, dead_letters):
    ids = [line[0] for line in dead_letters]
    assert all(len(message_id) == 12 for message_id in ids)
    assert len(set(ids)) == 3
    assert {line[1] for line in dead_letters} <= {"0s", "1s", "2s", "3s", "4s", "5s"}
    assert {line[2] for line in dead_letters} == {"shop.events/order_placed"}
    reasons = [line[3] for line in dead_letters]
    assert sum("application/x-msgpack" in reason for reason in reasons) == 2
    assert sum("cannot decode" in reason for reason in reasons) == 3

    result = dlq(cli, rabbit_config, "list", "inbox")
    assert result.stderr.strip() == "3 of 3 message(s) in inbox.dead-letter"

    teapot = next(message_id for message_id in ids
                  if '"teapot"' in dlq(cli, rabbit_config, "show", "inbox", message_id).stdout)
    shown = dlq(cli, rabbit_config, "show", "inbox", teapot[:6])
    assert shown.returncode == 0, shown.stderr
    assert f"id:            {teapot}" in shown.stdout
    assert "content_type:  application/x-msgpack" in shown.stdout
    assert "x-original-exchange: shop.events" in shown.stdout
    assert '"item": "teapot"' in shown.stdout

    malformed = next(line[0] for line in dead_letters if "msgpack" not in line[3])
    shown = dlq(cli, rabbit_config, "show", "inbox", malformed)
    assert "(raw application/json) b'{not json'" in shown.stdout

    # listing and showing took nothing away
    assert [line[0] for line in listed(cli, rabbit_config)] == ids


def test_unknown_service_and_unknown_id_are_named(cli, rabbit_config, dead_letters):
    result = dlq(cli, rabbit_config, "list", "nobody")
    assert result.returncode == 1
    assert "no queue 'nobody.dead-letter'" in result.stderr
    result = dlq(cli, rabbit_config, "replay", "inbox", "ffffffffffff", "--yes")
    assert result.returncode == 1
    assert "no message with id 'ffffffffffff'" in result.stderr
    assert len(listed(cli, rabbit_config)) == 3


def test_dry_run_and_unconfirmed_changes_change_nothing(cli, rabbit_config, dead_letters):
    ids = [line[0] for line in dead_letters]
    for action in ("replay", "purge"):
        result = dlq(cli, rabbit_config, action, "inbox", "--dry-run")
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.splitlines()) == 3
        assert "nothing changed" in result.stderr
        # no terminal, no --yes: refused
        result = dlq(cli, rabbit_config, action, "inbox")
        assert result.returncode == 1
        assert "not confirmed: pass --yes" in result.stderr
    assert [line[0] for line in listed(cli, rabbit_config)] == ids


def test_replay_to_a_service_that_now_accepts_it(cli, rabbit_config, dead_letters,
                                                 container_factory):
    container = container_factory(InboxV2, dict(rabbit_config, ACCEPT=["json", "msgpack"]))
    container.start()
    result = dlq(cli, rabbit_config, "replay", "inbox", "--filter", "content_type~msgpack",
                 "--dry-run")
    assert len(result.stdout.splitlines()) == 2
    teapot = next(line[0] for line in dead_letters
                  if '"teapot"' in dlq(cli, rabbit_config, "show", "inbox", line[0]).stdout)

    with entrypoint_waiter(container, "on_order", timeout=10) as handled:
        result = dlq(cli, rabbit_config, "replay", "inbox", teapot, "--yes")
        assert result.returncode == 0, result.stderr
    assert handled.get() == {"order": 1, "item": "teapot"}
    assert result.stdout.startswith(f"replay {teapot} -> shop.events/order_placed")
    assert "replayed 1 of 1 message(s)" in result.stderr
    assert sorted(line[0] for line in listed(cli, rabbit_config)) == sorted(
        line[0] for line in dead_letters if line[0] != teapot)


def test_replay_nobody_would_receive_is_kept(cli, rabbit_config, dead_letters):
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        Queue("evt-shop-order_placed--inbox.on_order")(connection.channel()).delete()
    result = dlq(cli, rabbit_config, "replay", "inbox", "--filter", "content_type~msgpack",
                 "--yes")
    assert result.returncode == 1
    assert "no queue is bound to 'shop.events' with 'order_placed'" in result.stderr
    assert "replayed 0 of 2 message(s)" in result.stderr
    assert len(listed(cli, rabbit_config)) == 3


def test_purge(cli, rabbit_config, dead_letters):
    malformed = next(line[0] for line in dead_letters if "msgpack" not in line[3])
    result = dlq(cli, rabbit_config, "purge", "inbox", "--filter", "reason~msgpack", "--yes")
    assert result.returncode == 0, result.stderr
    assert "purged 2 of 2 message(s)" in result.stderr
    assert [line[0] for line in listed(cli, rabbit_config)] == [malformed]

    result = dlq(cli, rabbit_config, "purge", "inbox", "--yes")
    assert "purged 1 of 1 message(s)" in result.stderr
    assert listed(cli, rabbit_config) == []
    result = dlq(cli, rabbit_config, "purge", "inbox", "--yes")
    assert result.returncode == 0
    assert "nothing to purge" in result.stderr


def test_a_message_the_broker_dead_lettered_from_a_quorum_queue(cli, rabbit_config):
    from nameko_like.amqp.queue_types import dead_letter_queue, owned_queue_options

    config = dict(rabbit_config, QUEUE_TYPE="quorum", MAX_REDELIVERIES=1)
    exchange = Exchange("q_test", type="direct", durable=True)
    limited = Queue("limited", exchange=exchange, routing_key="limited",
                    **owned_queue_options(config, "limiter"))
    with Connection(config["AMQP_URI"]) as connection:
        channel = connection.channel()
        dead_letter_queue(config, "limiter")(channel).declare()
        limited(channel).declare()
        Producer(channel).publish({"n": 1}, exchange=exchange, routing_key="limited",
                                  delivery_mode=2)
        for _ in range(2):  # past the delivery limit: the broker moves it aside
            message = None
            for _ in range(100):
                message = channel.basic_get("limited")
                if message is not None:
                    break
                time.sleep(0.05)
            channel.basic_reject(message.delivery_tag, requeue=True)

    deadline = time.monotonic() + 10
    while not (result := dlq(cli, config, "list", "limiter")).stdout and \
            time.monotonic() < deadline:
        time.sleep(0.2)
    (line,) = [text.split(None, 3) for text in result.stdout.splitlines()]
    assert line[2] == "q_test/limited"
    assert line[3] == "delivery_limit (dead-lettered by the broker from limited)"
    assert line[1] != "-"

    result = dlq(cli, config, "replay", "limiter", "--yes")
    assert result.returncode == 0, result.stderr
    with Connection(config["AMQP_URI"]) as connection:
        back = limited(connection.channel()).get(no_ack=True)
    assert back.payload == {"n": 1}
    assert "x-death" not in back.headers
    assert dlq(cli, config, "list", "limiter").stdout == ""
