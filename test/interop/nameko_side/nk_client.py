"""Drive the real Nameko's standalone clients for the interop tests.

Reads one JSON request on stdin, prints one JSON answer on stdout:

* ``{"config": {...}, "calls": [{"service", "method", "args", "kwargs",
  "context_data"}, ...]}`` makes each call with ``ClusterRpcProxy`` and
  answers with a list of ``{"result": ...}`` or ``{"error": {...}}``;
* ``{"config": {...}, "dispatch": [{"service", "event_type", "payload",
  "headers"}, ...]}`` dispatches each event with ``event_dispatcher`` and
  answers ``{"dispatched": <count>}``.

Runs in the Nameko virtualenv (.venv-nameko).
"""

import json
import sys

from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy

#: Seconds to wait for each reply before Nameko's RpcTimeout.
CALL_TIMEOUT = 20


def describe(exc):
    return {
        "class": f"{type(exc).__module__}.{type(exc).__name__}",
        "exc_type": getattr(exc, "exc_type", None),
        "value": getattr(exc, "value", None),
        "str": str(exc),
    }


def make_calls(config, calls):
    answers = []
    for call in calls:
        proxy = ClusterRpcProxy(config, context_data=call.get("context_data"),
                                timeout=CALL_TIMEOUT)
        with proxy as cluster:
            method = getattr(getattr(cluster, call["service"]), call["method"])
            try:
                result = method(*call.get("args", []), **call.get("kwargs", {}))
            except Exception as exc:  # noqa: BLE001 - every error is an answer
                answers.append({"error": describe(exc)})
            else:
                answers.append({"result": result})
    return answers


def dispatch_events(config, events):
    for event in events:
        dispatch = event_dispatcher(config, headers=event.get("headers") or {})
        dispatch(event["service"], event["event_type"], event["payload"])
    return {"dispatched": len(events)}


def main():
    request = json.load(sys.stdin)
    if "calls" in request:
        answer = make_calls(request["config"], request["calls"])
    else:
        answer = dispatch_events(request["config"], request["dispatch"])
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
