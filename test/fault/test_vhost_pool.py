"""The fault tier's vhosts: made in batches by one ``import_definitions``,
usable at once by the broker's user, deleted in the background."""

from __future__ import annotations

import pytest
from kombu import Connection, Queue

pytestmark = pytest.mark.fault


def _vhosts(broker) -> set[str]:
    return set(broker.rabbitmqctl("list_vhosts", "--no-table-headers").stdout.split())


def test_pool_vhosts_are_fresh_usable_and_deleted_after_use(fault_vhosts):
    broker = fault_vhosts.broker
    taken = [fault_vhosts.take() for _ in range(3)]
    assert len(set(taken)) == 3
    assert set(taken) <= _vhosts(broker)
    for vhost in taken:
        permissions = broker.rabbitmqctl("list_permissions", "-p", vhost,
                                         "--no-table-headers").stdout.split()
        assert permissions == [broker.user, ".*", ".*", ".*"]
        with Connection(broker.amqp_uri(vhost), connect_timeout=10) as connection:
            Queue("probe", durable=False, auto_delete=False)(connection.channel()).declare()
        rows = broker.rabbitmqctl("list_queues", "-p", vhost, "name",
                                  "--no-table-headers").stdout.split()
        assert rows == ["probe"]
    for vhost in taken:
        fault_vhosts.delete(vhost)
    fault_vhosts.reap(wait=True)
    assert fault_vhosts.deleting == []
    assert not set(taken) & _vhosts(broker)


def test_add_vhosts_makes_each_with_every_permission(fault_broker):
    names = ["pool_probe_a", "pool_probe_b"]
    fault_broker.add_vhosts(names)
    try:
        assert set(names) <= _vhosts(fault_broker)
        for vhost in names:
            assert fault_broker.rabbitmqctl("list_permissions", "-p", vhost,
                                            "--no-table-headers").stdout.split() == [
                fault_broker.user, ".*", ".*", ".*"]
    finally:
        for vhost in names:
            fault_broker.delete_vhost(vhost)
