"""Readiness follows the broker: 503 while it is stopped, 200 once it is back.

The private node's application is stopped (every client connection drops)
and started again while a service with ``METRICS_ADDRESS`` runs in this
process; ``/health/ready`` is polled throughout and the reconnect is counted
in ``/metrics``.
"""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from nameko_like import operations
from nameko_like.rpc import rpc
from nameko_like.standalone.rpc import ClusterRpcProxy

pytestmark = pytest.mark.fault


class Probe:
    name = "probe"

    @rpc
    def ping(self):
        return "pong"


def _ready(url: str) -> tuple[int, dict]:
    response = requests.get(url + "/health/ready", timeout=5)
    return response.status_code, response.json()


def _reconnects(url: str) -> float:
    text = requests.get(url + "/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "nameko_like_broker_reconnects_total" and \
                    sample.labels == {"role": "consumer"}:
                return sample.value
    return 0.0


def test_readiness_flips_with_the_broker(fault_broker, fault_config, container_factory,
                                         wait_until):
    config = dict(fault_config, METRICS_ADDRESS="127.0.0.1:0")
    container = container_factory(Probe, config)
    container.start()
    (server,) = operations.servers()
    url = server.url
    assert _ready(url) == (200, {"status": "ready", "reasons": [], "checks": []})
    assert _reconnects(url) == 0

    stopped = time.monotonic()
    fault_broker.stop_app()
    try:
        wait_until(lambda: _ready(url)[0] == 503, 10, message="never became not ready")
        noticed = time.monotonic() - stopped
        status, body = _ready(url)
        assert status == 503
        assert body["status"] == "not ready"
        assert body["reasons"] == ["probe: not connected to the broker and consuming"]
        # liveness is not readiness: the process is fine, the broker is not
        assert requests.get(url + "/health/live", timeout=5).status_code == 200
    finally:
        started = time.monotonic()
        fault_broker.start_app()
    wait_until(lambda: _ready(url)[0] == 200, 30, message="never ready again")
    recovered = time.monotonic() - started
    assert _reconnects(url) == 1
    with ClusterRpcProxy(config, timeout=10) as cluster:
        assert cluster.probe.ping() == "pong"
    print(f"not ready {noticed:.2f}s after stopping the broker began, "
          f"ready {recovered:.2f}s after starting it began")
    assert noticed < 10
