"""What every scenario imports first: which framework this side runs, and how to report.

Runs under both pythons (the Nameko venv and ours), so it uses the standard
library, eventlet and kombu only. Importing it monkey-patches, as ``nameko
run`` and ``nameko_like run`` do before importing services.
"""

import eventlet

eventlet.monkey_patch()

import importlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402

#: ``nameko`` or ``nameko_like``.
FRAMEWORK = os.environ["DIFF_FRAMEWORK"]
#: The AMQP URI of this side's fresh vhost.
AMQP_URI = os.environ["AMQP_URI"]
#: This side's own working directory.
WORKDIR = os.environ["DIFF_WORKDIR"]

REPORT_MARK = "DIFFERENTIAL-REPORT "


def module(name):
    """``name`` of this side's framework: ``module("rpc")`` is ``nameko.rpc`` or ours."""
    return importlib.import_module(f"{FRAMEWORK}.{name}")


def config(**extra):
    """A service config on this side's vhost."""
    return dict({"AMQP_URI": AMQP_URI}, **extra)


def outcome(function, *args, **kwargs):
    """What calling ``function`` did: ``{"value": ...}`` or ``{"raised": ...}``.

    A raised exception is described by its class name and, where it has them,
    the remote error's ``exc_type`` / ``value`` / ``exc_args`` (what crossed
    the wire).
    """
    try:
        return {"value": function(*args, **kwargs)}
    except Exception as exc:  # noqa: BLE001 - every error is an observation
        return {"raised": describe_error(exc)}


def describe_error(exc):
    """The observable parts of an exception."""
    described = {"type": type(exc).__name__}
    # Nameko's RemoteError carries exc_type and value; ours adds exc_args
    # and exc_path (a deliberate extra), which scenarios compare on the wire.
    for attribute in ("exc_type", "value"):
        if hasattr(exc, attribute):
            described[attribute] = getattr(exc, attribute)
    described["str"] = str(exc)
    return described


def report(observations):
    """Print the observations for the harness (one JSON line, keys sorted)."""
    sys.stdout.write(REPORT_MARK + json.dumps(observations, sort_keys=True, default=repr) + "\n")
    sys.stdout.flush()


def run_main(main):
    """Run ``main()`` and report its result; a crash prints the traceback and exits 1."""
    try:
        report(main())
    except BaseException:  # noqa: BLE001 - the harness shows the traceback
        traceback.print_exc()
        sys.exit(1)
    # services and proxies may leave greenthreads; the report is out, so go
    sys.stdout.flush()
    os._exit(0)
