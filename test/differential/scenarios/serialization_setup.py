"""nameko.serialization: setup() and the ``serializer`` / ``ACCEPT`` /
``SERIALIZERS`` config keys, alone and on a real RPC round trip."""

import json

from _side import config, module, outcome, run_main

serialization = module("serialization")
exceptions = module("exceptions")
rpc = module("rpc")
runners = module("runners")
standalone_rpc = module("standalone.rpc")


def upper_dumps(value):
    """A custom encoder: JSON with a marker, to see it was used."""
    return json.dumps({"wrapped": value})


def upper_loads(text):
    return json.loads(text)["wrapped"]


CUSTOM = {"SERIALIZERS": {"wrapped_json": {
    "encoder": "__main__.upper_dumps", "decoder": "__main__.upper_loads",
    "content_type": "application/x-wrapped-json"}}}


class Echo:
    name = "echo"

    @rpc.rpc
    def echo(self, value):
        return value


def setup_outcome(cfg):
    try:
        serializer, accept = serialization.setup(cfg)
    except exceptions.ConfigurationError:
        # the wording differs on purpose (ours names the key and the fix);
        # the type is what callers catch
        return {"raised": "ConfigurationError"}
    return {"serializer": serializer, "accept": list(accept)}


def round_trip(extra):
    runner = runners.ServiceRunner(config(**extra))
    runner.add_service(Echo)
    runner.start()
    try:
        with standalone_rpc.ClusterRpcProxy(config(**extra), timeout=10) as cluster:
            return outcome(cluster.echo.echo, {"a": [1, 2.5, "x", None, True]})
    finally:
        runner.stop()


def main():
    return {
        "default": setup_outcome({}),
        "pickle": setup_outcome({"serializer": "pickle"}),
        "accept": setup_outcome({"serializer": "json", "ACCEPT": ["json", "pickle"]}),
        "unknown": setup_outcome({"serializer": "no-such"}),
        "unknown_accept": setup_outcome({"ACCEPT": ["no-such"]}),
        "custom": setup_outcome(dict(CUSTOM, serializer="wrapped_json")),
        "round_trip_json": round_trip({}),
        "round_trip_pickle": round_trip({"serializer": "pickle", "ACCEPT": ["pickle"]}),
        "round_trip_custom": round_trip(dict(CUSTOM, serializer="wrapped_json")),
    }


run_main(main)
