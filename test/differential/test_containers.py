"""nameko.containers, side by side."""

from __future__ import annotations

from typing import Any


def test_container_lifecycle_hooks_and_max_workers(differ: Any) -> None:
    outcome = differ.assert_same("containers_lifecycle")
    report = outcome.nameko.report
    assert report["peak_workers"] == 2
    assert [event[0] for event in report["lifecycle_ok"]] == [
        "setup", "start", "get_dependency", "worker_setup", "method", "worker_result",
        "worker_teardown"]
