"""nameko.containers.ServiceContainer: names, extensions, worker hooks, max_workers."""

import eventlet
from _side import config, module, outcome, run_main

containers = module("containers")
extensions = module("extensions")
rpc = module("rpc")
testing_services = module("testing.services")

EVENTS = []


class Recorder(extensions.DependencyProvider):
    """Records every hook, in order."""

    def setup(self):
        EVENTS.append(["setup", self.attr_name])

    def start(self):
        EVENTS.append(["start", self.attr_name])

    def stop(self):
        EVENTS.append(["stop", self.attr_name])

    def get_dependency(self, worker_ctx):
        EVENTS.append(["get_dependency", self.attr_name, worker_ctx.entrypoint.method_name])
        return self.attr_name

    def worker_setup(self, worker_ctx):
        EVENTS.append(["worker_setup", self.attr_name])

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        EVENTS.append(["worker_result", self.attr_name, repr(result),
                       exc_info[0].__name__ if exc_info else None])

    def worker_teardown(self, worker_ctx):
        EVENTS.append(["worker_teardown", self.attr_name])


class Service:
    name = "lifecycle"
    recorder = Recorder()
    running = 0
    peak = 0

    @rpc.rpc
    def ok(self, value):
        EVENTS.append(["method", self.recorder])
        return value * 2

    @rpc.rpc
    def boom(self):
        raise KeyError("k")

    @rpc.rpc
    def slow(self):
        Service.running += 1
        Service.peak = max(Service.peak, Service.running)
        eventlet.sleep(0.1)
        Service.running -= 1


def main():
    container = containers.ServiceContainer(Service, config(max_workers=2))
    described = {
        "service_name": container.service_name,
        "max_workers": container.max_workers,
        "extensions": sorted(type(ext).__name__ for ext in container.extensions),
        "entrypoints": sorted(ext.method_name for ext in container.entrypoints),
        "dependencies": sorted(ext.attr_name for ext in container.dependencies),
        "started_before_start": container.started,
    }
    container.start()
    described["started"] = container.started
    with testing_services.entrypoint_hook(container, "ok") as ok:
        ok_result = outcome(ok, 4)
    lifecycle_ok = list(EVENTS)
    del EVENTS[:]
    with testing_services.entrypoint_hook(container, "boom") as boom:
        boom_result = outcome(boom)
    lifecycle_boom = [event for event in EVENTS if event[0] != "get_dependency"]
    with testing_services.entrypoint_hook(container, "slow") as slow:
        threads = [eventlet.spawn(slow) for _ in range(5)]
        for thread in threads:
            thread.wait()
    # Nameko's entrypoint_hook returns before the last worker's providers
    # are torn down, ours after: let both finish before watching stop()
    eventlet.sleep(0.3)
    del EVENTS[:]
    container.stop()
    described.update({
        "ok": ok_result,
        "lifecycle_ok": lifecycle_ok,
        "boom": boom_result,
        "lifecycle_boom": lifecycle_boom,
        "peak_workers": Service.peak,
        "stop_events": EVENTS,
        "started_after_stop": container.started,
        "serializer": getattr(container, "serializer", None),
        "accept": getattr(container, "accept", None),
    })
    return described


run_main(main)
