"""Custom extensions whose __init__ skips super().__init__(), in a running container.

Nameko lets an Entrypoint, DependencyProvider or Extension subclass define
its own ``__init__`` without calling the base one; such a container must
serve RPC (signature checks included) and work with ``entrypoint_hook``.
"""

from _side import config, module, outcome, run_main

extensions = module("extensions")
rpc = module("rpc")
containers = module("containers")
standalone_rpc = module("standalone.rpc")
testing_services = module("testing.services")


class Tagged(extensions.Extension):
    """A sub-extension that never calls Extension.__init__."""

    def __init__(self, tag):
        self.tag = tag


class Answer(extensions.DependencyProvider):
    """A dependency provider with its own __init__ and a sub-extension."""

    helper = Tagged("helper")

    def __init__(self, value):
        self.value = value

    def get_dependency(self, worker_ctx):
        return {"value": self.value, "helper": self.helper.tag,
                "helper_bound": self.helper.is_bound()}


class TaggedRpc(rpc.Rpc):
    """An rpc-style entrypoint that never calls Entrypoint.__init__."""

    def __init__(self, tag):
        self.tag = tag


class Custom(extensions.Entrypoint):
    """A plain custom entrypoint that never calls Entrypoint.__init__."""

    def __init__(self, tag):
        self.tag = tag


class Service:
    name = "custom"
    answer = Answer(42)

    @TaggedRpc.decorator("t1")
    def add(self, a, b):
        return {"sum": a + b, "answer": self.answer}

    @Custom.decorator("c1")
    def hooked(self, x):
        return {"x": x, "answer": self.answer}


def main():
    container = containers.ServiceContainer(Service, config())
    container.start()
    try:
        described = sorted(
            [type(ext).__name__, getattr(ext, "tag", None),
             getattr(ext, "method_name", None) or getattr(ext, "attr_name", None)]
            for ext in container.extensions
            if type(ext) in (Tagged, Answer, TaggedRpc, Custom))
        with testing_services.entrypoint_hook(container, "hooked") as hooked:
            hook_result = outcome(hooked, 5)
        with testing_services.entrypoint_hook(container, "add") as add:
            hook_add = outcome(add, 1, 2)
        with standalone_rpc.ClusterRpcProxy(config(), timeout=10) as cluster:
            return {
                "extensions": described,
                "hook": hook_result,
                "hook_add": hook_add,
                "rpc_add": outcome(cluster.custom.add, 1, 2),
                "rpc_bad_signature": outcome(cluster.custom.add, 1, 2, 3),
            }
    finally:
        container.stop()


run_main(main)
