"""docs/operations.rst: its examples run, and it lists every metric we expose."""

import io
import json
import logging
import logging.config
import re
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from nameko_like import operations
from nameko_like.config_loader import load_config
from nameko_like.standalone.rpc import ClusterRpcProxy

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"
PAGE = DOCS_DIR / "operations.rst"


@pytest.mark.integration
def test_spooler_health_check(container_factory, rabbit_config, tmp_path):
    import operations_spooler

    operations_spooler.SPOOL_DIR = str(tmp_path)
    config = dict(rabbit_config, METRICS_ADDRESS="127.0.0.1:0")
    container = container_factory(operations_spooler.Spooler, config)
    container.start()
    url = operations.servers()[0].url
    with ClusterRpcProxy(rabbit_config, timeout=10) as cluster:
        assert cluster.spooler.status() == {"ok": True, "reason": None}
        operations_spooler.MIN_FREE_BYTES = 10**18
        try:
            status = cluster.spooler.status()
            ready = requests.get(url + "/health/ready", timeout=5)
        finally:
            operations_spooler.MIN_FREE_BYTES = 100_000_000
    assert status["ok"] is False
    assert status["reason"].startswith("only ")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"

    # every metric the page lists is exposed, and every one exposed is listed
    text = requests.get(url + "/metrics", timeout=5).text
    # what a query names: counters with their _total suffix
    exposed = {family.name + ("_total" if family.type == "counter" else "")
               for family in text_string_to_metric_families(text)
               if family.name.startswith("nameko_like_")
               and not family.name.endswith("_created")}
    listed = set(re.findall(r"^``(nameko_like_[a-z_]+)``", PAGE.read_text(), re.MULTILINE))
    assert exposed == listed


@pytest.mark.integration
def test_health_check_methods(container_factory, rabbit_config):
    """Check methods run as workers, with dependencies; body and metric say how they fare."""
    import operations_health_methods

    example = operations_health_methods
    example.OUTBOX.clear()
    config = dict(rabbit_config, METRICS_ADDRESS="127.0.0.1:0")
    container_factory(example.Mailer, config).start()
    url = operations.servers()[0].url

    # pricing is not running: the critical check's RPC raises UnknownService
    ready = requests.get(url + "/health/ready", timeout=10)
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not ready"
    (reason,) = body["reasons"]
    assert reason.startswith("mailer: critical check pricing_answers failed: UnknownService")
    assert [(c["check"], c["ok"], c["critical"]) for c in body["checks"]] == [
        ("outbox", True, False), ("pricing_answers", False, True)]

    container_factory(example.Pricing, config).start()
    ready = requests.get(url + "/health/ready", timeout=10)
    assert (ready.status_code, ready.json()["status"]) == (200, "ready")

    example.OUTBOX.extend(["someone@example.com"] * (example.MAX_WAITING + 1))
    try:
        ready = requests.get(url + "/health/ready", timeout=10)
        text = requests.get(url + "/metrics", timeout=10).text
    finally:
        example.OUTBOX.clear()
    assert (ready.status_code, ready.json()["status"]) == (200, "degraded")
    assert ready.json()["checks"][0] == {
        "service": "mailer", "check": "outbox", "ok": False, "critical": False,
        "reason": f"{example.MAX_WAITING + 1} mails waiting"}
    samples = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
               for family in text_string_to_metric_families(text) for sample in family.samples}
    assert samples[("nameko_like_health_check_ok",
                    (("check", "outbox"), ("service", "mailer")))] == 0
    assert samples[("nameko_like_health_check_ok",
                    (("check", "pricing_answers"), ("service", "mailer")))] == 1
    # each run was a worker of the service, counted like any entrypoint
    runs = samples[("nameko_like_entrypoint_calls_total", (
        ("entrypoint", "HealthCheckEntrypoint"), ("method", "outbox"), ("outcome", "ok"),
        ("service", "mailer")))]
    assert runs >= 3


def test_json_logging_config(monkeypatch):
    config = load_config(str(DOCS_DIR / "examples" / "config_operations.yaml"))
    assert config["METRICS_ADDRESS"] == "0.0.0.0:9100"
    stream = io.StringIO()
    settings = config["LOGGING"]
    settings["handlers"]["console"]["stream"] = stream
    root, access = logging.getLogger(), logging.getLogger("nameko_like.web.access")
    saved = root.handlers[:], root.level, access.level
    try:
        logging.config.dictConfig(settings)
        logging.getLogger("shop").info("hello %s", "there")
        access.info("silenced")
    finally:
        root.handlers[:], _, _ = saved
        root.setLevel(saved[1])
        access.setLevel(saved[2])
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert (record["message"], record["level"], record["logger"]) == (
        "hello there", "INFO", "shop")
