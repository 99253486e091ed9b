"""nameko.events and nameko.standalone.events, side by side."""

from __future__ import annotations

from typing import Any


def test_event_handler_types_queues_and_dispatch(differ: Any) -> None:
    outcome = differ.assert_same("events_handlers")
    report = outcome.nameko.report
    assert [who for who, _ in report["from_service"]] == ["bcast", "bcast_fixed", "pool", "single"]
    assert report["other_type"] == [["other", [1, 2]]]
    queues = [queue[0] for queue in outcome.nameko.topology["queues"]]
    assert "evt-src-ping" in queues
    assert "evt-src-ping--bcast_fixed.handle-fixed" in queues
