"""nameko.rpc and nameko.standalone.rpc, side by side."""

from __future__ import annotations

from typing import Any


def test_rpc_calls_values_and_errors(differ: Any) -> None:
    outcome = differ.assert_same("rpc_calls")
    report = outcome.nameko.report
    # what the comparison covers, so a scenario that observes nothing can't pass
    exc_args = report["raw_fail_reply"]["body"]["error"]["exc_args"]
    assert exc_args == ["boom", "42", ["1", "2"], "None"]
    assert report["raw_bad_signature_reply"]["body"]["error"]["exc_type"] == "IncorrectSignature"
    assert report["raw_add_reply"]["body"] == {"result": 3, "error": None}
    assert report["unknown_service_via_proxy"]["raised"]["exc_type"] == "UnknownService"
    assert report["bad_signature"]["raised"]["str"] == (
        "add() takes 3 positional arguments but 4 were given")
