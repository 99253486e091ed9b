"""``nameko_like run`` serving, and ``shell`` calling it, as real processes.

Tests marked ``integration`` use RabbitMQ (a fresh vhost each); the others
run embedded with ``--broker memory://``.
"""

import signal
import time

import pytest

RUNNING = r"running services (?P<names>.*); broker (?P<broker>\S+)"


def _masked(uri):
    return uri.replace("guest:guest@", "guest:********@")


@pytest.mark.integration
def test_run_two_services_and_call_them_from_the_shell(cli, services_module, amqp_uri):
    run = cli.start("run", services_module, "--broker", amqp_uri)
    started = run.wait_for_log(RUNNING)
    assert started["names"] == "greeter, gateway"
    assert started["broker"] == _masked(amqp_uri)
    assert "guest:guest" not in run.log

    result = cli("shell", "--broker", amqp_uri, input=f"""
        print(n.rpc.greeter.hello("Ann"))
        print(n.rpc.gateway.greet(who="Bob"))
        print(n.config["AMQP_URI"] == {amqp_uri!r})
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["hello Ann", "HELLO BOB", "True"]

    run.signal(signal.SIGTERM)
    assert run.wait() == 0
    assert "SIGTERM received: stopping gracefully" in run.log
    assert "Traceback" not in run.log


@pytest.mark.integration
def test_sigterm_lets_the_call_in_flight_finish(cli, services_module, amqp_uri):
    run = cli.start("run", services_module, "--broker", amqp_uri)
    run.wait_for_log(RUNNING)
    shell = cli.start("shell", "--broker", amqp_uri,
                      input="print(n.rpc.greeter.slow(1.5))\n")
    run.wait_for_log("slow call started")

    run.signal(signal.SIGTERM)
    assert run.wait() == 0, run.log
    assert shell.wait() == 0, shell.log
    assert shell.log.splitlines() == ["slow done"]
    assert "killing" not in run.log


@pytest.mark.integration
def test_shell_dispatches_events(cli, amqp_uri):
    cli.write("listener.py", """
        import logging

        from nameko_like.events import event_handler

        log = logging.getLogger("listener")


        class Listener:
            name = "listener"

            @event_handler("orders", "order_placed")
            def on_order(self, payload):
                log.info("got order %s", payload["id"])
    """)
    run = cli.start("run", "listener", "--broker", amqp_uri)
    run.wait_for_log(RUNNING)
    result = cli("shell", "--broker", amqp_uri,
                 input='n.dispatch_event("orders", "order_placed", {"id": 42})\n')
    assert result.returncode == 0, result.stderr
    run.wait_for_log("got order 42")
    run.signal(signal.SIGTERM)
    assert run.wait() == 0


@pytest.mark.integration
def test_config_file_and_defines_reach_the_services(cli, amqp_uri):
    cli.write("config.yaml", f"""
        AMQP_URI: {amqp_uri}
        max_workers: 3
        GREETING: from-file
        LOGGING:
          version: 1
          formatters:
            short: {{format: "CUSTOM %(name)s %(message)s"}}
          handlers:
            console: {{class: logging.StreamHandler, formatter: short}}
          root: {{level: INFO, handlers: [console]}}
    """)
    cli.write("configured.py", """
        import logging

        from nameko_like.extensions import DependencyProvider
        from nameko_like.timer import timer

        log = logging.getLogger("configured")


        class Config(DependencyProvider):
            def get_dependency(self, worker_ctx):
                return self.container.config


        class Configured:
            name = "configured"
            config = Config()

            @timer(interval=60, eager=True)
            def report(self):
                log.info("max_workers=%s greeting=%s", self.config["max_workers"],
                         self.config["GREETING"])
    """)
    run = cli.start("run", "configured", "--config", "config.yaml",
                    "--define", "GREETING=from-define")
    run.wait_for_log("CUSTOM configured max_workers=3 greeting=from-define")
    assert "CUSTOM nameko_like.cli.serving running services configured" in run.log
    run.signal(signal.SIGTERM)
    assert run.wait() == 0


# --- embedded (memory://), no broker needed -----------------------------------------


def test_memory_broker_runs_two_services_that_call_each_other(cli):
    cli.write("embedded.py", """
        import logging

        from nameko_like.rpc import RpcProxy, rpc
        from nameko_like.timer import timer

        log = logging.getLogger("embedded")


        class Pinger:
            name = "pinger"
            ponger = RpcProxy("ponger", timeout=5)

            @timer(interval=60, eager=True)
            def ping(self):
                log.info("pinger got %r", self.ponger.pong("ping"))


        class Ponger:
            name = "ponger"

            @rpc
            def pong(self, value):
                return value + " pong"
    """)
    run = cli.start("run", "embedded", "--broker", "memory://")
    run.wait_for_log("running services pinger, ponger; broker memory://")
    run.wait_for_log("pinger got 'ping pong'")
    run.signal(signal.SIGTERM)
    assert run.wait() == 0


def test_run_resolves_names_without_dnspython_and_off_the_hub(cli):
    # The service reports, from inside the running process, what resolves
    # its names: eventlet's green DNS (dnspython) must not be loaded, and a
    # look-up by name must run on a native thread while greenthreads tick.
    cli.write("resolving.py", """
        import logging
        import os
        import socket
        import sys

        from eventlet import patcher
        from nameko_like._eventlet import eventlet
        from nameko_like.timer import timer

        log = logging.getLogger("resolving")
        native_threads = patcher.original("threading").active_count


        class Resolving:
            name = "resolving"

            @timer(interval=60, eager=True)
            def report(self):
                ticks = []

                def tick():
                    while True:
                        ticks.append(1)
                        eventlet.sleep(0.001)

                # Runs only when this greenthread yields: here, only in the look-up.
                ticker = eventlet.spawn(tick)
                before = native_threads()
                entries = socket.getaddrinfo("localhost", 5672, type=socket.SOCK_STREAM)
                log.info("dnspython=%s env=%s resolved=%s native_threads_grew=%s ticked=%s",
                         "dns" in sys.modules, os.environ.get("EVENTLET_NO_GREENDNS"),
                         entries[0][4][1], native_threads() > before, bool(ticks))
                ticker.kill()
    """)
    run = cli.start("run", "resolving", "--broker", "memory://")
    report = run.wait_for_log(r"dnspython=(\w+) env=(\w+) resolved=(\d+) "
                              r"native_threads_grew=(\w+) ticked=(\w+)")
    # ticked: the hub ran the ticker while the look-up waited on its thread.
    assert report.groups() == ("False", "None", "5672", "True", "True")
    run.signal(signal.SIGTERM)
    assert run.wait() == 0


_SLOW_TICKER = """
    import logging

    from nameko_like._eventlet import eventlet
    from nameko_like.timer import timer

    log = logging.getLogger("ticker")


    class Ticker:
        name = "ticker"

        @timer(interval=60, eager=True)
        def tick(self):
            log.info("tick started")
            eventlet.sleep(30)
            log.info("tick finished")
"""


def test_second_ctrl_c_kills(cli):
    cli.write("ticker.py", _SLOW_TICKER)
    run = cli.start("run", "ticker", "--broker", "memory://")
    run.wait_for_log("tick started")
    run.signal(signal.SIGINT)
    run.wait_for_log("SIGINT received: stopping gracefully")
    run.signal(signal.SIGINT)
    assert run.wait(timeout=10) == 130
    assert "SIGINT received again: killing the services" in run.log
    assert "tick finished" not in run.log


def test_grace_period_bounds_a_graceful_stop(cli):
    cli.write("ticker.py", _SLOW_TICKER)
    run = cli.start("run", "ticker", "--broker", "memory://",
                    "--define", "SHUTDOWN_GRACE_PERIOD=0.5")
    run.wait_for_log("tick started")
    began = time.monotonic()
    run.signal(signal.SIGTERM)
    assert run.wait(timeout=10) == 0
    assert time.monotonic() - began < 5
    assert "still running after the 0.5s grace period" in run.log
    assert "tick finished" not in run.log


def test_a_service_failing_to_start_ends_with_the_reason(cli):
    cli.write("failing.py", """
        from nameko_like.extensions import DependencyProvider
        from nameko_like.timer import timer


        class Broken(DependencyProvider):
            def setup(self):
                raise RuntimeError("cannot set up")


        class Failing:
            name = "failing"
            broken = Broken()

            @timer(interval=60)
            def tick(self):
                pass
    """)
    result = cli("run", "failing", "--broker", "memory://")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "nameko_like run: error: services failed to start: RuntimeError: cannot set up")


def test_a_service_dying_ends_the_run_with_its_reason(cli):
    cli.write("dying.py", """
        from nameko_like.extensions import DependencyProvider
        from nameko_like.timer import timer


        class Fragile(DependencyProvider):
            def worker_setup(self, worker_ctx):
                raise RuntimeError("provider broke")


        class Dying:
            name = "dying"
            fragile = Fragile()

            @timer(interval=60, eager=True)
            def tick(self):
                pass
    """)
    result = cli("run", "dying", "--broker", "memory://")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "nameko_like run: error: a service died: RuntimeError: provider broke")
