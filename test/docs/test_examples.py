"""Every code example of the docs, run for real.

Broker-free behaviour runs on ``memory://`` and on RabbitMQ (the
``backend`` fixture); what needs a real broker uses ``rabbit_config``. The
testing guide's own example tests run from ``test_testing_guide.py``.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nameko_like.config_loader import load_config
from nameko_like.standalone.rpc import ClusterRpcProxy
from nameko_like.testing.services import entrypoint_hook, entrypoint_waiter
from nameko_like.testing.utils import get_extension

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "docs" / "examples"


# --- key concepts ------------------------------------------------------------------


def test_helloworld(container_factory, backend):
    from helloworld import GreetingService

    container = container_factory(GreetingService, dict(backend))
    container.start()
    with ClusterRpcProxy(backend, timeout=10) as cluster:
        assert cluster.greeting_service.hello("Ada") == "Hello, Ada!"


def test_run_in_code(memory_config):
    from run_in_code import main

    assert main(memory_config) == "Hello, Ada!"


def test_run_in_code_as_a_script():
    done = subprocess.run(
        [sys.executable, "run_in_code.py"], cwd=EXAMPLES_DIR, capture_output=True, text=True,
        timeout=60, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello, Ada!\n"


# --- built-in extensions -------------------------------------------------------------


def test_rpc(runner_factory, backend):
    from rpc_greeting import GreetingService, WelcomeService

    runner = runner_factory(dict(backend), GreetingService, WelcomeService)
    runner.start()
    with ClusterRpcProxy(backend, timeout=10) as cluster:
        assert cluster.welcome_service.welcome(["Ada", "Bob"]) == ["Hello, Ada!", "Hello, Bob!"]
        assert cluster.welcome_service.welcome_one("Cy") == "Hello, Cy!"


@pytest.mark.integration
def test_events(container_factory, rabbit_config):
    from events_orders import AuditService, CacheService, EmailService, OrderService

    containers = {cls: container_factory(cls, rabbit_config)
                  for cls in (OrderService, EmailService, AuditService, CacheService)}
    for container in containers.values():
        container.start()
    with entrypoint_waiter(containers[EmailService], "send_confirmation") as email, \
            entrypoint_waiter(containers[AuditService], "record") as audit, \
            entrypoint_waiter(containers[CacheService], "invalidate") as cache:
        with ClusterRpcProxy(rabbit_config, timeout=10) as cluster:
            assert cluster.orders.place("teapot") == {"item": "teapot"}
    assert email.get() == "your teapot is on its way"
    assert audit.get() == "audit: teapot ordered"
    assert cache.get() == "forgot cached teapot"


def test_http_basics(container_factory, web_config, web_session):
    from http_basics import ShopService

    container = container_factory(ShopService, web_config)
    container.start()
    assert web_session.get("/stock/apple").json() == {"item": "apple", "count": 3}
    response = web_session.post("/stock/kiwi", data="2")
    assert (response.status_code, response.json()) == (201, {"item": "kiwi", "count": 2})
    response = web_session.get("/version")
    assert (response.text, response.headers["X-Shop"]) == ("1.0\n", "1")
    assert web_session.head("/version").status_code == 200
    response = web_session.get("/fail")
    assert response.status_code == 400
    assert "ValueError: no such thing" in response.text


def test_websocket_chat(container_factory, web_config, web_session, websocket):
    from websocket_chat import ChatService

    container = container_factory(ChatService, web_config)
    container.start()
    ada, bob = websocket(), websocket()
    assert ada.rpc("join", room="tea") == "joined tea"
    assert bob.rpc("join", room="tea") == "joined tea"
    ada.rpc("say", room="tea", text="hello")
    assert bob.wait_for_event("message") == ("message", {"from": ada.socket_id, "text": "hello"})
    assert web_session.post("/rooms/tea/announce", data="closing").status_code == 202
    assert ada.wait_for_event("announcement") == ("announcement", "closing")


def test_timer(container_factory, empty_config):
    from timer_tick import ReportService

    container = container_factory(ReportService, empty_config)
    with entrypoint_waiter(container, "send_report") as report:
        container.start()
    assert report.get() == "report sent"


@pytest.mark.integration
def test_messaging(container_factory, rabbit_config):
    from messaging_queue import JobSubmitter, JobWorker

    submitter = container_factory(JobSubmitter, rabbit_config)
    worker = container_factory(JobWorker, rabbit_config)
    worker.start()  # declares and binds the queue
    submitter.start()
    with entrypoint_waiter(worker, "run_job") as ran:
        with entrypoint_hook(submitter, "submit") as submit:
            submit({"task": "resize"})
    assert ran.get() == "ran resize"


def test_config_dependency(container_factory, memory_config):
    from config_dependency import GreetingService

    container = container_factory(GreetingService, {**memory_config, "GREETING": "Ahoy"})
    container.start()
    with entrypoint_hook(container, "hello") as hello:
        assert hello("Ada") == "Ahoy, Ada!"


# --- configuration ---------------------------------------------------------------


def test_config_files():
    files = [EXAMPLES_DIR / "config.yaml", EXAMPLES_DIR / "config_production.yaml"]
    config = load_config(files[0], env={})
    assert config["AMQP_URI"] == "amqp://guest:guest@localhost:5672/"
    assert config["max_workers"] == 10
    assert config["SHUTDOWN_GRACE_PERIOD"] == 30
    assert config["GREETING_TEMPLATE"] == "${greeting}, ${name}!"
    assert config["BUILD_ID"] == "007"
    assert config["LOGGING"]["root"]["level"] == "INFO"

    env = {"RABBIT_HOST": "rabbit", "MAX_WORKERS": "99", "DB_HOST": "db", "BUILD_ID": "12"}
    config = load_config(files, env=env)
    assert config["AMQP_URI"] == "amqp://guest:guest@rabbit:5672/"
    assert config["max_workers"] == 50  # the later file wins
    assert config["DATABASE"] == {"host": "db", "pool_size": 20}
    assert config["BUILD_ID"] == "12"
    assert config["LOGGING"]["root"]["level"] == "WARNING"


# --- writing extensions ------------------------------------------------------------


def test_dependency_provider(container_factory, memory_config):
    from dependency_provider import Ledger, PaymentService

    container = container_factory(PaymentService, memory_config)
    container.start()
    with entrypoint_hook(container, "pay") as pay:
        assert pay("alice", 30) == 30
        with pytest.raises(ValueError):
            pay("bob", 500)
    ledger = get_extension(container, Ledger)
    assert ledger.book == [("alice", -30), ("merchant", 30)]
    assert ledger.pending == {}


def test_file_inbox(container_factory, tmp_path):
    from file_inbox import InboxPoller, InvoiceService

    config = {"AMQP_URI": "memory://", "INBOX_DIR": str(tmp_path), "INBOX_POLL_INTERVAL": 0.05}
    container = container_factory(InvoiceService, config)
    container.start()

    def drop(name, text):
        # written under another name, then renamed: never read half written
        (tmp_path / (name + ".part")).write_text(text)
        (tmp_path / (name + ".part")).rename(tmp_path / name)

    with entrypoint_waiter(container, "import_invoices") as imported:
        drop("notes.txt", "not an invoice")
        drop("march.csv", "acme,100\nglobex,250\n")
    assert imported.get() == "2 invoices, 350 in total"
    assert (tmp_path / "done" / "march.csv").exists()
    assert (tmp_path / "notes.txt").exists()

    with entrypoint_waiter(container, "import_invoices") as imported:
        drop("broken.csv", "acme,lots\n")
    with pytest.raises(ValueError):
        imported.get()
    assert (tmp_path / "failed" / "broken.csv").exists()

    poller = get_extension(container, InboxPoller)
    container.stop()
    assert poller.thread.dead


# --- migrating from Nameko ------------------------------------------------------------


def test_migrating_changes_only_imports():
    before = (EXAMPLES_DIR / "migrating_nameko.py").read_text().splitlines()
    after = (EXAMPLES_DIR / "migrating_nameko_like.py").read_text().splitlines()
    assert len(before) == len(after)
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert changed
    assert all(
        old.startswith("from nameko.") and new == "from nameko_like." + old[len("from nameko."):]
        for old, new in changed
    )


@pytest.mark.integration
def test_migrated_services_run(runner_factory, rabbit_config, web_config, web_session):
    from migrating_nameko_like import PricingService, ShopFront

    config = {**web_config, **rabbit_config}
    shopfront = runner_factory(config, PricingService, ShopFront)
    shopfront.start()
    container = shopfront.service_map["shopfront"]
    with entrypoint_waiter(container, "on_priced") as priced:
        assert web_session.get("/price/tea").text == "3"
    assert priced.get() == "tea"


@pytest.mark.integration
def test_audit_entrypoint(container_factory, rabbit_config, take_messages):
    from audit_entrypoint import AuditService, audit_exchange
    from kombu import Connection

    config = dict(rabbit_config, MAX_REDELIVERIES=1)
    container = container_factory(AuditService, config)
    container.start()
    with Connection(config["AMQP_URI"]) as connection:
        producer = connection.Producer(exchange=audit_exchange)
        with entrypoint_waiter(container, "record") as recorded:
            producer.publish({"order": 7, "amount": 30}, routing_key="orders.paid")
        assert recorded.get() == "orders.paid: order 7, 30"
        producer.publish({"order": 8, "amount": -1}, routing_key="orders.refunded")
        producer.publish(b"\x00", routing_key="orders.paid", content_type="application/x-bad")
        producer.publish({"order": 9}, routing_key="orders.paid")
    dead = take_messages(config, "audit.dead-letter", count=3, timeout=10)
    reasons = sorted(message.headers["x-dead-letter-reason"] for message in dead)
    assert reasons == [
        "cannot decode the audit entry: Refusing to deserialize untrusted content of type "
        "application/x-bad (application/x-bad)",
        "handler failed 2 times (MAX_REDELIVERIES=1)",
        "handler failed 2 times (MAX_REDELIVERIES=1)",
    ]
    failed = [message for message in dead
              if message.headers["x-dead-letter-reason"].startswith("handler failed")]
    assert sorted(message.decode()["order"] for message in failed) == [8, 9]
