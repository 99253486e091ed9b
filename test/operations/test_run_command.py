"""``nameko_like run`` with LOG_FORMAT json and METRICS_ADDRESS: JSON lines, endpoint announced."""

import json
import subprocess
import sys
import textwrap
import time

import requests

SERVICE = textwrap.dedent('''
    import logging

    from nameko_like.rpc import rpc
    from nameko_like.timer import timer

    log = logging.getLogger("ticker")


    class Ticker:
        name = "ticker"

        @timer(interval=0.1, eager=True)
        def tick(self):
            log.info("tick")
''')


def test_json_logs_and_announced_endpoint(tmp_path):
    (tmp_path / "ticker.py").write_text(SERVICE)
    (tmp_path / "config.yaml").write_text(
        "AMQP_URI: memory://\nLOG_FORMAT: json\nMETRICS_ADDRESS: 127.0.0.1:0\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "nameko_like", "run", "ticker", "--config", "config.yaml"],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    records = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
                r.get("logger") == "ticker" for r in records):
            line = process.stderr.readline()
            assert line, "nameko_like run ended early"
            records.append(json.loads(line))  # every line is JSON
        announced = next(r["message"] for r in records if r["message"].startswith("metrics at"))
        url = announced.split()[2].rstrip(",").removesuffix("/metrics")
        assert requests.get(url + "/health/ready", timeout=5).json()["status"] == "ready"
    finally:
        process.terminate()
        process.wait(30)
    tick = next(r for r in records if r.get("logger") == "ticker")
    assert (tick["message"], tick["service"], tick["entrypoint"]) == ("tick", "ticker", "tick")
    assert tick["call_id"].startswith("ticker.tick.")
