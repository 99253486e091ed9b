"""The travel example traced: one trace from the gateway's HTTP request
through RPC to the trips service and its event, printed by the services.

Embedded mode (one process, broker in memory) with ``TRACING=true`` and
``TRAVEL_TRACES=console``, started by its own script as the README says.
"""

from __future__ import annotations

import json
import re
import signal

import pytest
from test_travel import Launched

from nameko_like.testing.utils import find_free_port

#: Where the console exporter starts a span: ``{`` then its name.
_SPAN_START = re.compile(r'^\{\n\s+"name": ', re.MULTILINE)


def printed_spans(text: str) -> list[dict]:
    decoder = json.JSONDecoder()
    return [decoder.raw_decode(text, match.start())[0] for match in _SPAN_START.finditer(text)]


@pytest.fixture
def launched(tmp_path):
    runs: list[Launched] = []
    yield runs
    for run in runs:
        run.clean_up()


def test_a_trip_is_one_trace_from_gateway_to_trips(launched, tmp_path):
    env = {"WEB_SERVER_ADDRESS": f"127.0.0.1:{find_free_port()}", "TRACING": "true",
           "TRAVEL_TRACES": "console", "TRAVEL_DB_PATH": str(tmp_path / "travel.sqlite")}
    run = Launched("run-embedded", env, tmp_path / "run.log")
    launched.append(run)
    run.wait_ready()
    import requests

    ids = [requests.post(run.url + "/airport", json={"airport": name}, timeout=15).text
           for name in ("first", "second")]
    response = requests.post(run.url + "/trip", timeout=15,
                             json={"airport_from": ids[0], "airport_to": ids[1]})
    assert response.status_code == 200, response.text
    assert run.stop(signal.SIGINT) == 0, run.log()

    spans = printed_spans(run.log())
    (request,) = [span for span in spans if span["name"] == "POST /trip"]
    trace_id = request["context"]["trace_id"]
    in_trace = {span["name"]: span for span in spans if span["context"]["trace_id"] == trace_id}
    assert {"POST /trip", "publish nameko-rpc:trips.create",
            "process nameko-rpc:trips.create:rpc-trips",
            "publish trips.events:trip_created"} <= set(in_trace), sorted(in_trace)
    by_service = {span["attributes"].get("nameko.service") for span in in_trace.values()}
    assert {"gateway", "trips", "airports"} <= by_service
    process = in_trace["process nameko-rpc:trips.create:rpc-trips"]
    assert process["kind"] == "SpanKind.CONSUMER"
    assert process["parent_id"] == in_trace["publish nameko-rpc:trips.create"]["context"]["span_id"]
    assert request["kind"] == "SpanKind.SERVER"
    assert request["attributes"]["http.route"] == "/trip"
