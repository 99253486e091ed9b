"""Run by test_tracing_no_sdk.py in a fresh process: tracing without the SDK,
or without OpenTelemetry at all. Prints one JSON line with what it saw.

Usage: python tracing_script.py (no-sdk | not-installed) AMQP_URI
"""

import sys

if sys.argv[1] == "not-installed":
    # as if opentelemetry were not installed: importing it raises ImportError
    sys.modules["opentelemetry"] = None  # type: ignore[assignment]

import eventlet

eventlet.monkey_patch()

import json  # noqa: E402

from nameko_like.containers import ServiceContainer  # noqa: E402
from nameko_like.exceptions import ConfigurationError  # noqa: E402
from nameko_like.rpc import RpcProxy, rpc  # noqa: E402
from nameko_like.standalone.rpc import ServiceRpcProxy  # noqa: E402


class Back:
    name = "back"

    @rpc
    def trace_id(self):
        from opentelemetry import trace

        return format(trace.get_current_span().get_span_context().trace_id, "032x")

    @rpc
    def ping(self):
        return "pong"


class Front:
    name = "front"
    back = RpcProxy("back", timeout=10)

    @rpc
    def hop(self):
        return self.back.trace_id()

    @rpc
    def ping(self):
        return self.back.ping()


def no_sdk(uri):
    from opentelemetry import context, propagate, trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    config = {"AMQP_URI": uri, "TRACING": True}
    containers = [ServiceContainer(cls, config) for cls in (Back, Front)]
    for container in containers:
        container.start()
    # an upstream trace, its header written by the propagator
    upstream = SpanContext(trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736, span_id=0x00F067AA0BA902B7,
                           is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    headers = {}
    propagate.inject(headers, context=trace.set_span_in_context(NonRecordingSpan(upstream)))
    token = context.attach(propagate.extract(headers))
    try:
        with ServiceRpcProxy("front", config, timeout=10) as front:
            seen = front.hop()
    finally:
        context.detach(token)
    for container in containers:
        container.stop()
    print(json.dumps({"sent": format(upstream.trace_id, "032x"), "seen": seen,
                      "provider": type(trace.get_tracer_provider()).__name__}))


def not_installed(uri):
    config = {"AMQP_URI": uri}
    containers = [ServiceContainer(cls, config) for cls in (Back, Front)]
    for container in containers:
        container.start()
    with ServiceRpcProxy("front", config, timeout=10) as front:
        answer = front.ping()
    for container in containers:
        container.stop()
    error = None
    try:
        ServiceContainer(Back, dict(config, TRACING=True)).start()
    except ConfigurationError as exc:
        error = str(exc)
    imported = sorted(name for name in sys.modules
                      if name.startswith("opentelemetry") and sys.modules[name] is not None)
    print(json.dumps({"answer": answer, "error": error, "imported": imported}))


if __name__ == "__main__":
    {"no-sdk": no_sdk, "not-installed": not_installed}[sys.argv[1]](sys.argv[2])
