"""Where the travel services' spans go, set up once per process.

``TRACING: true`` (config.yaml; the ``TRACING`` environment variable)
makes the services trace; this module gives the spans somewhere to go, as
any program using the OpenTelemetry SDK must. It runs when the ``travel``
package is imported, before any service starts, and reads:

* ``TRAVEL_TRACES=console``: each span printed as JSON on stdout;
* ``TRAVEL_TRACES=otlp``: spans sent in batches to an OpenTelemetry
  collector, Jaeger or Grafana Tempo at ``OTEL_EXPORTER_OTLP_ENDPOINT``
  (needs ``pip install opentelemetry-exporter-otlp-proto-http``);
* unset: nothing is set up (with ``TRACING`` on, trace context still
  passes through the services).

The resource's ``service.name`` is ``OTEL_SERVICE_NAME`` (the compose file
sets ``travel-gateway``, ``travel-trips``, ``travel-airports``), else
``travel``; each span also says which service made it (``nameko.service``).
"""

import os


def setup() -> None:
    """Install a TracerProvider with the exporter ``TRAVEL_TRACES`` names."""
    choice = os.environ.get("TRAVEL_TRACES", "")
    if not choice:
        return
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
        SpanProcessor,
    )

    processor: SpanProcessor
    if choice == "console":
        # one span at a time, as it ends, so the output reads in order
        processor = SimpleSpanProcessor(ConsoleSpanExporter())
    elif choice == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        processor = BatchSpanProcessor(OTLPSpanExporter())
    else:
        raise SystemExit(f"TRAVEL_TRACES must be 'console' or 'otlp', not {choice!r}")
    # OTEL_SERVICE_NAME names the process in the trace backend (the compose
    # file gives each service its own); "travel" when unset
    name = os.environ.get("OTEL_SERVICE_NAME") or "travel"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
