"""@timer(interval=0): accepted, fires back to back, and yields between runs."""

import time
from typing import ClassVar

import eventlet
from _side import config, module, outcome, run_main

timer = module("timer")
containers = module("containers")


class Ticker:
    name = "ticker"
    ticks: ClassVar[list] = []

    @timer.timer(interval=0)
    def tick(self):
        Ticker.ticks.append(time.monotonic())


def main():
    declared = outcome(lambda: timer.Timer(interval=0).interval)
    container = containers.ServiceContainer(Ticker, config())
    others = []

    def other():
        for _ in range(20):
            others.append(len(Ticker.ticks))
            eventlet.sleep(0)

    container.start()
    try:
        eventlet.spawn(other).wait()
        eventlet.sleep(0.2)
    finally:
        container.stop()
    return {
        "declared": declared,
        "other_greenthread_ran": len(others) == 20,
        "ticks_interleaved": len(set(others)) > 1,
        "fired_often": len(Ticker.ticks) > 20,
    }


run_main(main)
