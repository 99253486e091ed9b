"""The travel example's Prometheus and Grafana files, checked offline.

The scrape config names every travel service at the port its
METRICS_ADDRESS gives, Grafana's provisioning points at that Prometheus,
and every metric the dashboard queries is one nameko_like exposes: a
service is started with METRICS_ADDRESS and its /metrics parsed by
prometheus-client.
"""

import json
import re
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from nameko_like import operations
from nameko_like.rpc import rpc

TRAVEL_DIR = Path(__file__).resolve().parents[2] / "examples" / "travel"
MONITORING = TRAVEL_DIR / "monitoring"
TRAVEL_SERVICES = ("airports", "trips", "gateway")


@pytest.fixture
def compose():
    return yaml.safe_load((TRAVEL_DIR / "docker-compose.yml").read_text())


def test_prometheus_scrapes_every_service_at_its_metrics_address(compose):
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    (targets,) = (group["targets"] for group in job["static_configs"])
    ports = {name: compose["services"][name]["environment"]["METRICS_ADDRESS"].split(":")[1]
             for name in TRAVEL_SERVICES}
    assert sorted(targets) == sorted(f"{name}:{port}" for name, port in ports.items())


def test_compose_mounts_the_monitoring_files(compose):
    # short ("src:dst:ro") and long ({type: bind, source: ...}) volume syntax
    mounted = [volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
               for name in ("prometheus", "grafana")
               for volume in compose["services"][name]["volumes"]]
    for source in mounted:
        assert (TRAVEL_DIR / source).is_file(), source
    assert {path.name for path in MONITORING.rglob("*") if path.is_file()} == {
        Path(source).name for source in mounted}


def test_grafana_uses_the_compose_prometheus(compose):
    (source,) = yaml.safe_load((MONITORING / "grafana" / "datasource.yml").read_text())[
        "datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert compose["services"]["prometheus"]["ports"] == ["${TRAVEL_PROMETHEUS_PORT:-9090}:9090"]
    dashboard = json.loads((MONITORING / "grafana" / "travel-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]


class Probe:
    name = "probe"

    @rpc
    def ping(self):
        return "pong"


def exposed_series(text):
    """Every series name a query can use, from prometheus-client's parse of /metrics."""
    names = set()
    for family in text_string_to_metric_families(text):
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
        else:
            names.add(family.name)
    return names


def test_every_dashboard_metric_is_exposed(container_factory, memory_config):
    container = container_factory(Probe, dict(memory_config, METRICS_ADDRESS="127.0.0.1:0"))
    container.start()
    text = requests.get(operations.servers()[0].url + "/metrics", timeout=5).text
    exposed = exposed_series(text)

    dashboard = json.loads((MONITORING / "grafana" / "travel-dashboard.json").read_text())
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"\bnameko_like_\w+", target["expr"])}
    assert len(queried) >= 12
    assert queried - exposed == set()
