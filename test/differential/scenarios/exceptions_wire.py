"""nameko.exceptions: serialize / deserialize, RemoteError, the registry, the hierarchy.

Paths of the framework's own types name its package (``nameko.exceptions.X``
or ``nameko_like.exceptions.X``); that one part is written ``<fw>`` here.
"""

from _side import FRAMEWORK, config, module, run_main

exceptions = module("exceptions")
rpc = module("rpc")
runners = module("runners")
standalone_rpc = module("standalone.rpc")


def fw(value):
    """``value`` with this side's package name replaced by ``<fw>``."""
    if isinstance(value, dict):
        return {key: fw(item) for key, item in value.items()}
    if isinstance(value, str):
        return value.replace(f"{FRAMEWORK}.", "<fw>.")
    return value


@exceptions.deserialize_to_instance
class Registered(Exception):
    """Rebuilt as itself on the caller."""


class NotRegistered(Exception):
    """Arrives as a RemoteError."""


class Unprintable:
    def __str__(self):
        raise RuntimeError("no")


class Thing:
    """Not JSON-serializable, with a repr that is the same on both sides."""

    def __repr__(self):
        return "<Thing>"


class Raiser:
    name = "raiser"

    @rpc.rpc
    def registered(self):
        raise Registered("a", 1, [2])

    @rpc.rpc
    def not_registered(self):
        raise NotRegistered("b", {"k": (3,)})

    @rpc.rpc
    def remote(self):
        raise exceptions.RemoteError("KeyError", "'x'")

    @rpc.rpc
    def unserializable(self):
        return Thing()


def error_description(exc):
    described = {"type": type(exc).__name__, "args": [repr(arg) for arg in exc.args],
                 "str": str(exc)}
    for attribute in ("exc_type", "value"):
        if hasattr(exc, attribute):
            described[attribute] = getattr(exc, attribute)
    return described


def remote_outcome(function):
    try:
        return {"value": function()}
    except Exception as exc:  # noqa: BLE001 - every error is an observation
        return {"raised": error_description(exc)}


def hierarchy():
    names = ["ExtensionNotFound", "RpcTimeout", "ReplyQueueExpiredWithPendingReplies",
             "ContainerBeingKilled", "RemoteError", "BadRequest", "MalformedRequest",
             "MethodNotFound", "IncorrectSignature", "UnknownService",
             "UnserializableValueError", "ConfigurationError", "CommandError",
             "ConnectionNotFound"]
    builtin = (AttributeError, TypeError, ValueError, KeyError, LookupError, RuntimeError)
    found = {}
    for name in names:
        exc_type = getattr(exceptions, name, None)
        if exc_type is None:
            found[name] = None
            continue
        # ancestors among Nameko's names and the builtins; our extra
        # sub-roots (NamekoLikeException, RpcError, ...) are ours alone
        found[name] = sorted(
            base.__name__ for base in exc_type.__mro__[1:]
            if base.__name__ in names or base in builtin)
    return found


def main():
    samples = {
        "string": "s", "int": 1, "float": 1.5, "bool": True, "none": None,
        "list": [1, [2, None]], "tuple": (1, "a"), "dict": {1: None, "k": (2,)},
        "set": {7}, "bytes": b"ab", "generator": (n for n in range(2)),
        "unprintable": Unprintable(),
    }
    safe = {name: exceptions.safe_for_serialization(value) for name, value in samples.items()}
    remote = exceptions.RemoteError("ValueError", "bad")
    runner = runners.ServiceRunner(config())
    runner.add_service(Raiser)
    runner.start()
    try:
        with standalone_rpc.ClusterRpcProxy(config(), timeout=10) as cluster:
            calls = {name: remote_outcome(getattr(cluster.raiser, name))
                     for name in ("registered", "not_registered", "remote", "unserializable")}
    finally:
        runner.stop()
    return {
        "safe_for_serialization": safe,
        "serialize_value_error": exceptions.serialize(ValueError("boom", 42, [1, 2], None)),
        "serialize_remote_error": fw(exceptions.serialize(remote)),
        "serialize_unknown_service": fw(exceptions.serialize(exceptions.UnknownService("svc"))),
        "serialize_unserializable": fw(exceptions.serialize(
            exceptions.UnserializableValueError(3))),
        "remote_error": error_description(remote),
        "remote_error_default": error_description(exceptions.RemoteError()),
        "deserialize_nameko_types": {
            name: error_description(exceptions.deserialize({
                "exc_type": name, "exc_path": f"nameko.exceptions.{name}",
                "exc_args": ["x"], "value": "x"}))
            for name in ("MethodNotFound", "IncorrectSignature", "MalformedRequest")},
        "deserialize_unknown": error_description(exceptions.deserialize(
            {"exc_type": "Oops", "exc_path": "elsewhere.Oops", "exc_args": [1],
             "value": "v"})),
        "deserialize_missing_value": error_description(exceptions.deserialize(
            {"exc_type": "Oops"})),
        "registered_path": exceptions.get_module_path(Registered),
        "in_registry": exceptions.get_module_path(Registered) in exceptions.registry,
        "calls": calls,
        "hierarchy": hierarchy(),
    }


run_main(main)
