"""What ``nameko_like run`` logs at start-up: version, services with their
entrypoints, broker (password masked), and the real listening addresses."""

import re
import signal
import sys
import urllib.request

import pytest

from nameko_like import __version__

SERVICES = """
    from kombu import Queue

    from nameko_like.events import BROADCAST, event_handler
    from nameko_like.messaging import consume
    from nameko_like.rpc import rpc
    from nameko_like.timer import timer
    from nameko_like.web.handlers import http
    from nameko_like.web.websocket import rpc as ws_rpc


    class Greeter:
        name = "greeter"

        @rpc
        def hello(self, who):
            return who

        @http("GET,POST", "/greet/<who>")
        def greet(self, request, who):
            return f"hi {who}"

        @ws_rpc
        def ws_hello(self, socket_id):
            return "hi"

        @timer(interval=2.5, eager=True)
        def tick(self):
            pass

        @event_handler("billing", "paid", handler_type=BROADCAST, reliable_delivery=False)
        def on_paid(self, payload):
            pass

        @consume(Queue("orders"))
        def on_order(self, body):
            pass


    class Quiet:
        name = "quiet"

        @event_handler("billing", "refunded")
        def on_refund(self, payload):
            pass
"""

PREFIX = r"^\S+ \S+ INFO nameko_like\.cli\.startup_report: "


def _report(log):
    """The start-up report's messages, in order."""
    return re.findall(PREFIX + r"(.*)$", log, re.MULTILINE)


def test_startup_report_names_everything_with_real_ports(cli):
    cli.write("shop.py", SERVICES)
    run = cli.start("run", "shop", "--broker", "memory://", "--backdoor-port", "0",
                    "--define", "WEB_SERVER_ADDRESS=127.0.0.1:0")
    run.wait_for_log("running services greeter, quiet")
    report = _report(run.log)
    http_port = re.fullmatch(r"HTTP \(greeter\) on http://127\.0\.0\.1:(\d+)/", report[4])[1]
    backdoor_port = re.search(r"backdoor listening on 127\.0\.0\.1:(\d+)", run.log)[1]
    assert report == [
        f"nameko_like {__version__} on Python {sys.version.split()[0]}",
        "broker memory://",
        "service greeter: consume orders -> on_order; event_handler billing.paid (broadcast) "
        "-> on_paid; http GET,POST /greet/<who> -> greet; rpc hello; timer every 2.5s "
        "(eager) -> tick; websocket rpc ws_hello",
        "service quiet: event_handler billing.refunded -> on_refund",
        f"HTTP (greeter) on http://127.0.0.1:{http_port}/",
        f"websockets (greeter) on ws://127.0.0.1:{http_port}/ws",
        f"backdoor on 127.0.0.1:{backdoor_port} (connect: nameko_like backdoor "
        f"127.0.0.1:{backdoor_port})",
    ]
    assert http_port != "0" and backdoor_port != "0"
    # the port logged is the one really serving
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/greet/ann", timeout=10) as resp:
        assert resp.read() == b"hi ann"
    run.signal(signal.SIGTERM)
    assert run.wait() == 0, run.log


@pytest.mark.integration
def test_startup_report_masks_the_broker_password(cli, amqp_uri):
    cli.write("shop.py", SERVICES)
    run = cli.start("run", "shop:Quiet", "--broker", amqp_uri)
    run.wait_for_log("running services quiet")
    report = _report(run.log)
    assert report[1] == "broker " + amqp_uri.replace("guest:guest@", "guest:********@")
    assert report[2:] == ["service quiet: event_handler billing.refunded -> on_refund"]
    assert "guest:guest" not in run.log


def test_startup_report_goes_through_the_configured_logging(cli):
    cli.write("shop.py", SERVICES)
    cli.write("config.yaml", """
        LOGGING:
          version: 1
          formatters:
            bare: {format: "REPORT %(message)s"}
          handlers:
            out: {class: logging.StreamHandler, formatter: bare, stream: ext://sys.stdout}
          loggers:
            nameko_like.cli.startup_report: {level: INFO, handlers: [out]}
    """)
    run = cli.start("run", "shop:Quiet", "--broker", "memory://", "--config", "config.yaml")
    run.wait_for_log("REPORT service quiet: event_handler billing.refunded -> on_refund")
    assert "REPORT broker memory://" in run.log
    run.signal(signal.SIGTERM)
    assert run.wait() == 0, run.log
