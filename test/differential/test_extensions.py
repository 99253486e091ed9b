"""nameko.extensions: custom extension subclasses, side by side."""

from __future__ import annotations

from typing import Any


def test_extensions_without_super_init_work_in_a_container(differ: Any) -> None:
    outcome = differ.assert_same("extensions_custom")
    report = outcome.nameko.report
    assert report["rpc_add"] == {"value": {"sum": 3, "answer": {
        "value": 42, "helper": "helper", "helper_bound": True}}}
    assert report["hook"]["value"]["x"] == 5
    assert report["rpc_bad_signature"]["raised"]["type"] == "IncorrectSignature"
    # failed, requeue_message, redelivered, ack_message: on both sides
    assert report["job_attempts"] == ["j1", "j1"]
