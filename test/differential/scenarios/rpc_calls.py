"""RPC through ServiceRunner and ClusterRpcProxy: values, errors, their wire form."""

from _side import config, module, outcome, run_main

rpc = module("rpc")
runners = module("runners")
standalone_rpc = module("standalone.rpc")


class Calculator:
    name = "calculator"

    @rpc.rpc
    def add(self, a, b):
        return a + b

    @rpc.rpc
    def fail(self, message):
        raise ValueError(message, 42, [1, 2], None)

    @rpc.rpc
    def echo(self, *args, **kwargs):
        return {"args": list(args), "kwargs": kwargs}


def main():
    runner = runners.ServiceRunner(config())
    runner.add_service(Calculator)
    runner.start()
    try:
        with standalone_rpc.ClusterRpcProxy(config(), timeout=10) as cluster:
            calc = cluster.calculator
            return {
                "add": outcome(calc.add, 1, 2),
                "add_kwargs": outcome(calc.add, a="x", b="y"),
                "echo": outcome(calc.echo, 1, "two", three=[3]),
                "fail": outcome(calc.fail, "boom"),
                "unknown_method": outcome(calc.no_such_method),
                "bad_signature": outcome(calc.add, 1, 2, 3),
                "async": outcome(lambda: calc.add.call_async(2, 3).result()),
            }
    finally:
        runner.stop()


run_main(main)
