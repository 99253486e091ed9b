"""``nameko_like docs`` (the real command, as a subprocess) and ``CONTRACTS_DOCS_PATH``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml
from contract_services import Bookings

HERE = Path(__file__).resolve().parent


def docs_command(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nameko_like", "docs", *args],
                          cwd=HERE, capture_output=True, text=True, timeout=60, **kwargs)


def test_docs_writes_asyncapi_to_stdout_and_openapi_to_a_file(tmp_path):
    done = docs_command("contract_services", "--broker", "amqp://guest:guest@mq:5672/")
    assert done.returncode == 0, done.stderr
    asyncapi = json.loads(done.stdout)
    assert asyncapi["asyncapi"] == "3.0.0"
    assert asyncapi["servers"]["broker"]["host"] == "mq:5672"
    assert {"bookings.book", "one_method.checked", "unvalidated.book"} <= set(
        asyncapi["operations"])

    out = tmp_path / "openapi.yaml"
    done = docs_command("contract_services:Bookings", "--format", "openapi", "--out", str(out),
                        "--title", "Bookings API", "--version", "2.1")
    assert done.returncode == 0, done.stderr
    openapi = yaml.safe_load(out.read_text())
    assert openapi["info"] == {"title": "Bookings API", "version": "2.1",
                               "description": openapi["info"]["description"]}
    assert set(openapi["paths"]) == {"/journeys/{group}", "/legs/{origin}/{minutes}"}


def test_docs_errors_name_the_fix(tmp_path):
    done = docs_command("no_such_module")
    assert done.returncode == 1
    assert "module 'no_such_module' not found" in done.stderr
    done = docs_command("contract_services", "--serve", "nowhere")
    assert done.returncode == 1
    assert "--serve takes HOST:PORT" in done.stderr
    done = docs_command("contract_services", "--out", str(tmp_path / "missing" / "x.json"))
    assert done.returncode == 1
    assert "cannot write" in done.stderr


def test_docs_serve_answers_the_documents_and_a_page(tmp_path):
    from nameko_like.testing.utils import find_free_port

    port = find_free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "nameko_like", "docs", "contract_services",
         "--serve", f"127.0.0.1:{port}"],
        cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        banner = process.stderr.readline()
        assert f"http://127.0.0.1:{port}/" in banner
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.headers["Content-Type"].startswith("text/html")
        assert "<code>bookings.book</code>: Book a journey; returns its reference." in page.text
        assert "<code>POST /journeys/{group}</code>" in page.text
        asyncapi = requests.get(f"http://127.0.0.1:{port}/asyncapi.json", timeout=5).json()
        openapi = requests.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).json()
        assert asyncapi["asyncapi"] == "3.0.0" and openapi["openapi"] == "3.1.0"
        assert requests.get(f"http://127.0.0.1:{port}/other", timeout=5).status_code == 404
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()


def test_a_service_serves_its_documents_by_config(container_factory, web_config, web_session):
    container = container_factory(Bookings, dict(web_config, CONTRACTS_DOCS_PATH="/docs"))
    container.start()
    openapi = web_session.get("/docs/openapi.json").json()
    assert "/journeys/{group}" in openapi["paths"]
    assert web_session.get("/docs/asyncapi.json").json()["operations"]["bookings.book"]
    assert "bookings.on_placed" in web_session.get("/docs/").text
    # the service's own routes are still served
    assert web_session.get("/legs/LHR/5").status_code == 200


def test_without_the_switch_there_are_no_documents(container_factory, web_config, web_session):
    container = container_factory(Bookings, web_config)
    container.start()
    assert web_session.get("/docs/openapi.json").status_code == 404


@pytest.mark.parametrize("argv", [["--help"]])
def test_docs_is_listed(argv):
    done = subprocess.run([sys.executable, "-m", "nameko_like", *argv], capture_output=True,
                          text=True, timeout=60)
    assert "docs" in done.stdout and "AsyncAPI and OpenAPI" in done.stdout
