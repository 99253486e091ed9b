"""Fixtures for the operations tests: a METRICS_ADDRESS config and a scraper."""

from collections.abc import Callable
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from nameko_like import operations
from nameko_like._eventlet import eventlet

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class Endpoint:
    """The one operations server of this process, seen from a client."""

    @property
    def url(self) -> str:
        """Base URL of the server (fails unless exactly one runs)."""
        running = operations.servers()
        assert len(running) == 1, running
        return running[0].url

    def get(self, path: str) -> requests.Response:
        """GET ``path`` on the server."""
        return requests.get(self.url + path, timeout=5)

    def scrape(self) -> Samples:
        """``{(sample name, sorted labels): value}`` of ``/metrics`` (prometheus-client parses)."""
        response = self.get("/metrics")
        assert response.status_code == 200
        samples = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    @staticmethod
    def value(samples: Samples, name: str, **labels: str) -> float | None:
        """The sample ``name`` with exactly ``labels``, or None if absent."""
        return samples.get((name, tuple(sorted(labels.items()))))

    @staticmethod
    def wait_until(condition: Callable[[], object], timeout: float = 10.0) -> None:
        """Poll ``condition`` until true; fail after ``timeout`` seconds."""
        with eventlet.Timeout(timeout, AssertionError(f"{condition} never held")):
            while not condition():
                eventlet.sleep(0.05)


@pytest.fixture
def endpoint() -> Endpoint:
    """Client helpers for the operations server."""
    return Endpoint()


@pytest.fixture
def metrics_config(rabbit_config: dict[str, Any]) -> dict[str, Any]:
    """``rabbit_config`` plus a METRICS_ADDRESS on a free port."""
    return dict(rabbit_config, METRICS_ADDRESS="127.0.0.1:0")
