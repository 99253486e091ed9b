"""docs/deployment.rst: the cluster config example loads and means what the page says."""

from pathlib import Path

from kombu import Connection

from nameko_like.amqp.connection import connection_params, safe_uri
from nameko_like.config_loader import load_config
from nameko_like.rpc.wire import reply_queue, service_queue

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "docs" / "examples"


def test_cluster_config_example():
    config = load_config(EXAMPLES_DIR / "config_cluster.yaml", env={"RABBIT_PASSWORD": "s3cret"})
    connection = Connection(**connection_params(config))
    hosts = [connection.hostname, *[alt.split("@")[1].split(":")[0] for alt in connection.alt[1:]]]
    assert hosts == ["rabbit-1", "rabbit-2", "rabbit-3"]
    assert "s3cret" not in safe_uri(config) and safe_uri(config).count("********") == 3

    queue = service_queue(config, "orders")
    assert queue.queue_arguments["x-queue-type"] == "quorum"
    assert queue.queue_arguments["x-delivery-limit"] == 5
    assert queue.queue_arguments["x-dead-letter-routing-key"] == "orders.dead-letter"
    replies, _key = reply_queue(config, "orders")
    assert replies.durable is False and not replies.queue_arguments.get("x-queue-type")
