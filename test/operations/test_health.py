"""/health/live and /health/ready with real containers on RabbitMQ; HealthCheck."""

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.health import HealthCheck, health_check
from nameko_like.rpc import rpc

pytestmark = pytest.mark.integration

DISK = {"free": 10}


def disk_has_room():
    return DISK["free"] > 5 or f"only {DISK['free']} GB free"


def always_fails():
    raise OSError("database unreachable")


class Spooler:
    name = "spooler"
    disk = HealthCheck(disk_has_room)

    @rpc
    def check_disk(self):
        return self.disk().ok


class Critical:
    name = "critical"
    database = HealthCheck(always_fails, critical=True)

    @rpc
    def ping(self):
        return "pong"


def test_ready_and_degraded(container_factory, metrics_config, endpoint):
    DISK["free"] = 10
    container = container_factory(Spooler, metrics_config)
    container.start()

    live = endpoint.get("/health/live")
    assert (live.status_code, live.json()) == (200, {"status": "alive", "services": ["spooler"]})
    ready = endpoint.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "reasons": [], "checks": [
        {"service": "spooler", "check": "disk", "ok": True, "critical": False, "reason": None}]}
    samples = endpoint.scrape()
    assert endpoint.value(samples, "nameko_like_health_check_ok", service="spooler",
                          check="disk") == 1

    DISK["free"] = 2
    ready = endpoint.get("/health/ready")
    # degraded, still ready: a non-critical check keeps the service in rotation
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "degraded"
    assert body["checks"][0]["reason"] == "only 2 GB free"
    samples = endpoint.scrape()
    assert endpoint.value(samples, "nameko_like_health_check_ok", service="spooler",
                          check="disk") == 0


def test_critical_check_fails_readiness(container_factory, metrics_config, endpoint):
    spooler = container_factory(Spooler, metrics_config)
    critical = container_factory(Critical, metrics_config)
    spooler.start()
    critical.start()
    ready = endpoint.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["reasons"] == [
        "critical: critical check database failed: OSError: database unreachable"]
    assert endpoint.get("/health/live").json()["services"] == ["critical", "spooler"]


def test_not_ready_while_consumer_is_down(container_factory, metrics_config, endpoint):
    container = container_factory(Spooler, metrics_config)
    container.start()
    assert endpoint.get("/health/ready").status_code == 200
    consumer = next(ext for ext in container.subextensions if hasattr(ext, "consuming"))
    consumer.kill()  # drops the connection as a lost broker would
    ready = endpoint.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["reasons"] == [
        "spooler: not connected to the broker and consuming"]


def test_unknown_path_and_bad_address(container_factory, metrics_config, endpoint):
    from nameko_like.exceptions import ConfigurationError

    container = container_factory(Spooler, metrics_config)
    container.start()
    response = endpoint.get("/nope")
    assert response.status_code == 404
    assert "/health/ready" in response.json()["error"]
    bad = container_factory(Critical, dict(metrics_config, METRICS_ADDRESS="localhost"))
    with pytest.raises(ConfigurationError, match="METRICS_ADDRESS must look like 'host:port'"):
        bad.start()


class Slow:
    name = "slow"

    @health_check(timeout=0.2)
    def sluggish(self):
        eventlet.sleep(5)

    @health_check
    def answers_false(self):
        return False

    @health_check
    def raises(self):
        raise OSError("database unreachable")


def test_health_check_method_timeout_false_and_error(container_factory, metrics_config,
                                                     endpoint, caplog):
    container_factory(Slow, metrics_config).start()
    ready = endpoint.get("/health/ready")
    assert ready.status_code == 200  # none is critical
    assert [(c["check"], c["ok"], c["reason"]) for c in ready.json()["checks"]] == [
        ("answers_false", False, "check failed"),
        ("raises", False, "OSError: database unreachable"),
        ("sluggish", False, "timed out after 0.2s")]
    # a probe while the sluggish check still runs starts no second worker
    again = {c["check"]: c["reason"] for c in endpoint.get("/health/ready").json()["checks"]}
    assert again["sluggish"] == "still running: its previous run outlasted 0.2s"
    # a check that raises reports a failure: an expected error, no traceback
    samples = endpoint.scrape()
    assert endpoint.value(samples, "nameko_like_entrypoint_calls_total", service="slow",
                          method="raises", entrypoint="HealthCheckEntrypoint",
                          outcome="expected_error") >= 1
    assert not [record for record in caplog.records if record.exc_info]


class NeedsArgument:
    name = "needs_argument"

    @health_check
    def check(self, what):
        return True


def test_health_check_method_bad_declarations(container_factory, metrics_config):
    from nameko_like.exceptions import ConfigurationError

    container = container_factory(NeedsArgument, metrics_config)
    with pytest.raises(ConfigurationError,
                       match=r"@health_check method needs_argument\.check must take no arguments"):
        container.start()
    with pytest.raises(ConfigurationError, match=r"timeout=\.\.\.\) takes a number of seconds"):
        health_check(timeout=0)(lambda self: True)
