"""The travel example end to end: its own start scripts, real HTTP requests.

Each way of running it is started exactly as the README says
(``examples/travel/run-embedded``, ``examples/travel/run-real``), with this
interpreter instead of the repository's .venv (``TRAVEL_PYTHON``), a free
port, and storage of the test's own. The processes are always stopped, and
killed if they linger.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests
import travel_tutorial

from nameko_like.testing.utils import find_free_port

TRAVEL_DIR = Path(__file__).resolve().parents[2] / "examples" / "travel"

#: Seconds the services get to answer after they were started.
STARTUP_TIMEOUT = 60.0
#: Seconds they get to stop after SIGTERM or SIGINT.
STOP_TIMEOUT = 40.0
#: Seconds a trip_created event gets to be counted.
EVENT_TIMEOUT = 15.0


class Launched:
    """One run of a start script; its output goes to ``log_path``."""

    def __init__(self, script: str, env: dict, log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        full_env = dict(os.environ)
        full_env.update(env)
        full_env["TRAVEL_PYTHON"] = sys.executable
        self.url = f"http://{full_env['WEB_SERVER_ADDRESS']}"
        self.process = subprocess.Popen(
            [str(TRAVEL_DIR / script)], env=full_env, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def children(self) -> dict[str, int]:
        """The service processes the launcher reported, by name."""
        found = re.findall(r"started (\w+) \(pid (\d+)\)", self.log())
        return {name: int(pid) for name, pid in found}

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the services exited with {self.process.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        pytest.fail(f"the gateway did not answer within {STARTUP_TIMEOUT}s:\n{self.log()}")

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Signal the launcher and wait for it; the exit status."""
        self.process.send_signal(signum)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the services did not stop within {STOP_TIMEOUT}s:\n{self.log()}")

    def clean_up(self) -> None:
        """Kill whatever is left: the launcher and the services it started."""
        pids = [self.process.pid, *self.children().values()]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()


@pytest.fixture
def launch(tmp_path):
    """``launch(script, **env)``: run a start script; cleaned up at teardown."""
    launched: list[Launched] = []

    def start(script: str, **env: str) -> Launched:
        env.setdefault("WEB_SERVER_ADDRESS", f"127.0.0.1:{find_free_port()}")
        run = Launched(script, env, tmp_path / f"{script}-{len(launched)}.log")
        launched.append(run)
        return run

    yield start
    for run in launched:
        run.clean_up()


def assert_gone(pids) -> None:
    for pid in pids:
        # A child of the launcher, reaped by it: signal 0 finds nothing.
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


# --- the scenario both ways run -------------------------------------------------


class Api:
    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, self.url + path, timeout=15, **kwargs)

    def ok(self, method: str, path: str, **kwargs) -> dict:
        """A 200 JSON answer, decoded."""
        response = self.request(method, path, **kwargs)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "application/json"
        return response.json()

    def new_id(self, path: str, body: dict) -> str:
        """POST ``body`` as the tutorial does; the id answered, as text."""
        response = self.request("POST", path, data=json.dumps(body))
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert re.fullmatch("[0-9a-f]{32}", response.text), response.text
        return response.text

    def error(self, method: str, path: str, status: int, kind: str, **kwargs) -> str:
        response = self.request(method, path, **kwargs)
        assert response.status_code == status, response.text
        assert response.headers["Content-Type"] == "application/json"
        body = response.json()
        assert body["error"] == kind
        assert set(body) == {"error", "message"}
        return body["message"]


def exercise(api: Api) -> dict:
    """Create airports and a trip, read them back, check the counts and every error.

    Returns the ids it made.
    """
    lhr = api.new_id("/airport", {"airport": "London Heathrow"})
    jfk = api.new_id("/airport", {"airport": "JFK"})
    assert lhr != jfk
    assert api.ok("GET", f"/airport/{lhr}") == {"airport": "London Heathrow"}
    assert api.ok("GET", f"/airport/{jfk}") == {"airport": "JFK"}

    trip = api.new_id("/trip", {"airport_from": lhr, "airport_to": jfk})
    assert api.ok("GET", f"/trip/{trip}") == {"trip": {"from": lhr, "to": jfk}}

    # The counts come from the trip_created event, a moment later.
    deadline = time.monotonic() + EVENT_TIMEOUT
    while api.ok("GET", f"/airport/{jfk}/stats")["arrivals"] < 1:
        assert time.monotonic() < deadline, "trip_created was not counted"
        time.sleep(0.1)
    assert api.ok("GET", f"/airport/{lhr}/stats") == {
        "id": lhr, "airport": "London Heathrow", "departures": 1, "arrivals": 0, "trips": 1}
    assert api.ok("GET", f"/airport/{jfk}/stats") == {
        "id": jfk, "airport": "JFK", "departures": 0, "arrivals": 1, "trips": 1}

    # Bad bodies: 400.
    assert "JSON" in api.error("POST", "/airport", 400, "BAD_REQUEST", data="not json")
    api.error("POST", "/airport", 400, "BAD_REQUEST", data="")
    api.error("POST", "/airport", 400, "BAD_REQUEST", data=b"\xff\xfe")
    api.error("POST", "/airport", 400, "BAD_REQUEST", json=["LHR"])
    assert "airport" in api.error("POST", "/airport", 400, "BAD_REQUEST", json={})
    api.error("POST", "/airport", 400, "BAD_REQUEST", json={"airport": 7})
    api.error("POST", "/airport", 400, "BAD_REQUEST", json={"airport": "   "})
    # Names have a length limit (padding does not count).
    assert api.new_id("/airport", {"airport": f" {'x' * 100} "})
    assert "100" in api.error("POST", "/airport", 400, "BAD_REQUEST",
                              json={"airport": "x" * 101})
    api.error("POST", "/trip", 400, "BAD_REQUEST", data="{")
    message = api.error("POST", "/trip", 400, "BAD_REQUEST", json={"airport_from": lhr})
    assert "airport_to" in message
    api.error("POST", "/trip", 400, "BAD_REQUEST", json={"airport_from": lhr, "airport_to": 3})
    api.error("POST", "/trip", 400, "BAD_REQUEST", json={"airport_from": lhr, "airport_to": lhr})
    # A trip between unknown airports: 400, naming the airport.
    assert "nowhere" in api.error("POST", "/trip", 400, "BAD_REQUEST",
                                  json={"airport_from": "nowhere", "airport_to": jfk})
    assert "nowhere" in api.error("POST", "/trip", 400, "BAD_REQUEST",
                                  json={"airport_from": lhr, "airport_to": "nowhere"})
    # Unknown ids: 404.
    api.error("GET", "/airport/nowhere", 404, "NOT_FOUND")
    api.error("GET", "/airport/nowhere/stats", 404, "NOT_FOUND")
    api.error("GET", "/trip/nowhere", 404, "NOT_FOUND")
    # Unknown URLs: 404 as well, in JSON (not werkzeug's HTML page).
    for path in ("/", "/airports", "/airport", "/airport/a/b", "/trip/"):
        api.error("GET", path, 404 if path != "/airport" else 405,
                  "NOT_FOUND" if path != "/airport" else "METHOD_NOT_ALLOWED")
    api.error("POST", "/nowhere", 404, "NOT_FOUND", data="{}")
    # A method the URL does not take: 405, with the Allow header.
    api.error("DELETE", f"/airport/{lhr}", 405, "METHOD_NOT_ALLOWED")
    response = api.request("PUT", "/trip", data="{}")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.json()["error"] == "METHOD_NOT_ALLOWED"
    # A body over the gateway's limit: 413, and nothing stored.
    too_large = json.dumps({"airport": "x" * 20_000})
    assert "16384" in api.error("POST", "/airport", 413, "REQUEST_ENTITY_TOO_LARGE",
                                data=too_large)
    # The connection is still good after each error.
    assert api.ok("GET", f"/airport/{lhr}") == {"airport": "London Heathrow"}
    # The failed trips were neither stored nor counted.
    assert api.ok("GET", f"/airport/{lhr}/stats")["trips"] == 1
    return {"lhr": lhr, "jfk": jfk, "trip": trip}


def tutorial(run: Launched) -> None:
    """The tutorial's curl session, as docs/travel.rst shows it, replayed."""
    ids = travel_tutorial.replay(travel_tutorial.docs_session(), run.url.removeprefix("http://"))
    assert len(ids) == 3  # two airports and a trip


# --- embedded: one process, memory://, SQLite ------------------------------------


def test_embedded(launch, tmp_path):
    db_path = tmp_path / "travel.sqlite"
    run = launch("run-embedded", TRAVEL_DB_PATH=str(db_path), REDIS_URI="redis://ignored:1/0")
    run.wait_ready()
    assert list(run.children()) == ["travel"], run.log()
    # the launcher announces readiness after its own poll of the gateway,
    # which may come a moment after ours
    deadline = time.monotonic() + 10
    while f"ready: try {run.url}/airport" not in run.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f"ready: try {run.url}/airport" in run.log()
    tutorial(run)
    ids = exercise(Api(run.url))

    # Ctrl-C (SIGINT) stops it gracefully, the service process included.
    assert run.stop(signal.SIGINT) == 0, run.log()
    assert "stopping gracefully" in run.log()
    assert_gone(run.children().values())

    # The data is in the SQLite file: a new run finds it.
    assert db_path.exists()
    again = launch("run-embedded", TRAVEL_DB_PATH=str(db_path))
    again.wait_ready()
    api = Api(again.url)
    assert api.ok("GET", f"/trip/{ids['trip']}") == {"trip": {"from": ids["lhr"], "to": ids["jfk"]}}
    assert api.ok("GET", f"/airport/{ids['jfk']}") == {"airport": "JFK"}
    assert api.ok("GET", f"/airport/{ids['lhr']}/stats")["departures"] == 1
    assert again.stop() == 0, again.log()


# --- real: three processes, RabbitMQ, Redis --------------------------------------


def healthcheck(service: str, env: dict) -> subprocess.CompletedProcess:
    """Run a container healthcheck command (docker-compose.yml) here."""
    full_env = dict(os.environ)
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "travel.healthcheck", service], cwd=TRAVEL_DIR, env=full_env,
        check=False, capture_output=True, text=True, timeout=30,
    )


@pytest.mark.integration
def test_real(launch, rabbit_config, redis_config):
    env = {"AMQP_URI": rabbit_config["AMQP_URI"], **redis_config}
    run = launch("run-real", **env)
    run.wait_ready()
    children = run.children()
    assert sorted(children) == ["airports", "gateway", "trips"], run.log()
    env["WEB_SERVER_ADDRESS"] = run.url.removeprefix("http://")

    tutorial(run)
    ids = exercise(Api(run.url))

    # The records are in Redis, under the test's prefix.
    client = redis.Redis.from_url(redis_config["REDIS_URI"], decode_responses=True)
    try:
        prefix = redis_config["REDIS_KEY_PREFIX"]
        assert client.exists(f"{prefix}airports:{ids['lhr']}", f"{prefix}trips:{ids['trip']}") == 2
        assert client.hgetall(f"{prefix}airports:{ids['jfk']}:counters") == {"arrivals": "1"}
    finally:
        client.close()

    # The containers' healthchecks pass against the running services.
    for service in ("airports", "trips", "gateway"):
        checked = healthcheck(service, env)
        assert checked.returncode == 0, checked.stderr
        assert checked.stdout.strip() == f"{service}: healthy"

    assert run.stop(signal.SIGTERM) == 0, run.log()
    assert run.log().count("stopping gracefully") == 3
    assert_gone(children.values())

    # ...and fail once the services are gone.
    checked = healthcheck("gateway", env)
    assert checked.returncode == 1
    assert "gateway: unhealthy" in checked.stderr


@pytest.mark.integration
def test_real_stops_all_when_one_service_dies(launch, rabbit_config, redis_config):
    run = launch("run-real", AMQP_URI=rabbit_config["AMQP_URI"], **redis_config)
    run.wait_ready()
    children = run.children()
    os.kill(children["airports"], signal.SIGKILL)
    try:
        status = run.process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the other services were not stopped:\n{run.log()}")
    assert status == 1
    assert "airports exited with status -9" in run.log()
    assert_gone(children.values())


def test_real_explains_a_missing_broker(launch, tmp_path):
    port = find_free_port()  # nothing listens there
    run = launch("run-real", AMQP_URI=f"amqp://guest:guest@127.0.0.1:{port}/",
                 REDIS_URI="redis://127.0.0.1:1/0")
    assert run.process.wait(30) == 1
    assert f"RabbitMQ does not answer on 127.0.0.1:{port}" in run.log()
    assert run.children() == {}
