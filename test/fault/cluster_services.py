"""The service the cluster fault test runs as two instances (see test_cluster).

Records ``call <id>`` and ``event <id>`` as :mod:`fault_services` does.
"""

import time

from fault_services import Pingable, record

from nameko_like.events import event_handler
from nameko_like.rpc import rpc


class ClusterWorker(Pingable):
    name = "cluster_worker"

    @rpc
    def work(self, call_id):
        record("call", call_id)
        time.sleep(0.02)  # some work in flight whenever a node goes down
        return call_id

    @event_handler("cluster_source", "tick")
    def on_tick(self, payload):
        record("event", payload["id"])
        time.sleep(0.02)
