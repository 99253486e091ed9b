"""ServiceRunner: adding the same service class twice, then running it."""

from _side import config, module, outcome, run_main

rpc = module("rpc")
runners = module("runners")
standalone_rpc = module("standalone.rpc")


class Echo:
    name = "echo"

    @rpc.rpc
    def say(self, word):
        return word


def main():
    runner = runners.ServiceRunner(config())
    first = outcome(lambda: runner.add_service(Echo))
    second = outcome(lambda: runner.add_service(Echo))
    runner.start()
    try:
        with standalone_rpc.ClusterRpcProxy(config(), timeout=10) as cluster:
            said = outcome(cluster.echo.say, "hi")
        return {
            "first_add": first,
            "second_add": second,
            "service_names": sorted(runner.service_names),
            "containers": [c.service_cls.__name__ for c in runner.containers],
            "running": [bool(c.started) for c in runner.containers],
            "call": said,
        }
    finally:
        runner.stop()


run_main(main)
