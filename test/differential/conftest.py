"""The differential tier: one scenario, run on the real Nameko and on nameko_like.

A scenario is a script in ``scenarios/`` written once for both frameworks: it
imports every framework module through :func:`_side.module` (``nameko.rpc``
on one side, ``nameko_like.rpc`` on the other), does what a user would, and
reports what it observed as JSON through :func:`_side.report`. The harness
runs it twice, each time in a subprocess on a fresh RabbitMQ vhost:

* with the python of ``.venv-nameko`` (real Nameko 2.14.1, built by
  ``test/interop/ensure_nameko_env.sh``) and ``DIFF_FRAMEWORK=nameko``;
* with this test run's python and ``DIFF_FRAMEWORK=nameko_like``.

Then it compares the two reports, and what each run left on its vhost
(queues with their flags and arguments, exchanges, bindings). A test states
the comparison with :meth:`Differ.assert_same`; where nameko_like differs
on purpose, the scenario normalises that one observation and says why, and
``docs/migrating.rst`` lists the difference.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pytest

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "scenarios"
ENSURE_SCRIPT = HERE.parent / "interop" / "ensure_nameko_env.sh"
LAUNCHER = HERE.parent / "interop" / "nameko_side" / "die_with_parent.py"

#: Seconds the Nameko env may take to build.
INSTALL_TIMEOUT = 600
#: Seconds one side of a scenario may run.
SCENARIO_TIMEOUT = 90
#: Seconds the broker may take to drop an exited side's exclusive queues.
EXCLUSIVE_GONE_DEADLINE = 10.0
#: Prefix of the report line a scenario prints (see ``_side.report``).
REPORT_MARK = "DIFFERENTIAL-REPORT "

#: Both sides, in the order they run.
SIDES = ("nameko", "nameko_like")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of this folder carries the ``differential`` marker."""
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.differential)
            item.add_marker(pytest.mark.integration)
            if item.get_closest_marker("timeout") is None:
                # Room for both sides' own deadline: a slow side then fails
                # with its "TIMED OUT" report, rather than pytest-timeout
                # ending the whole (monkey-patched) session with os._exit.
                item.add_marker(pytest.mark.timeout(len(SIDES) * SCENARIO_TIMEOUT + 30))


@pytest.fixture(scope="session")
def nameko_python() -> str:
    """The python of the virtualenv with the real Nameko; builds it if needed."""
    try:
        done = subprocess.run(["bash", str(ENSURE_SCRIPT)], capture_output=True, text=True,
                              timeout=INSTALL_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip(f"installing Nameko took over {INSTALL_TIMEOUT}s")
    if done.returncode != 0:
        last_words = " | ".join(done.stderr.strip().splitlines()[-5:])
        pytest.skip(f"could not install the real Nameko ({ENSURE_SCRIPT.name} exited "
                    f"{done.returncode}): {last_words}")
    return done.stdout.strip().splitlines()[-1]


@dataclasses.dataclass
class SideRun:
    """What one side of a scenario did."""

    side: str
    returncode: int
    report: Any
    topology: dict[str, Any]
    output: str


@dataclasses.dataclass
class Outcome:
    """Both sides of one scenario."""

    nameko: SideRun
    ours: SideRun

    def describe(self) -> str:
        """Both outputs, for a failure message."""
        return "\n".join(f"--- {run.side} (exit {run.returncode}):\n{run.output[-6000:]}"
                         for run in (self.nameko, self.ours))


class Differ:
    """Runs scenarios on both frameworks; see the module docstring."""

    def __init__(self, nameko_python: str, rabbit_manager: Any, amqp_uri: str,
                 api_uri: str, workdir: Path) -> None:
        self.pythons = {"nameko": nameko_python, "nameko_like": sys.executable}
        self.manager = rabbit_manager
        self.amqp_uri = amqp_uri
        self.api_uri = api_uri
        self.workdir = workdir

    def run(self, scenario: str, *args: str, env: dict[str, str] | None = None,
            timeout: float = SCENARIO_TIMEOUT) -> Outcome:
        """Run ``scenarios/<scenario>.py`` (with ``args``) on both sides."""
        runs = [self._run_side(side, scenario, args, env or {}, timeout) for side in SIDES]
        return Outcome(*runs)

    def assert_same(self, scenario: str, *args: str, topology: bool = True,
                    env: dict[str, str] | None = None) -> Outcome:
        """Run a scenario on both sides; fail unless reports (and topologies) match."""
        outcome = self.run(scenario, *args, env=env)
        for run in (outcome.nameko, outcome.ours):
            assert run.report is not None, (
                f"{run.side} side of {scenario} reported nothing\n{outcome.describe()}")
        assert outcome.ours.report == outcome.nameko.report, (
            f"{scenario}: nameko_like's report differs from Nameko's\n"
            f"nameko:      {json.dumps(outcome.nameko.report, sort_keys=True)}\n"
            f"nameko_like: {json.dumps(outcome.ours.report, sort_keys=True)}\n"
            f"{outcome.describe()}")
        if topology:
            # Deliberate (docs/migrating.rst): Nameko's standalone proxies
            # leave their reply queues for x-expires (5 min); ours are
            # auto-delete and must be gone once the scenario ended.
            assert _standalone_reply_parts(outcome.ours.topology) == [], (
                f"{scenario}: nameko_like left standalone reply queues behind")
            expected = _without_standalone_replies(outcome.nameko.topology)
            assert outcome.ours.topology == expected, (
                f"{scenario}: what nameko_like left on the broker differs from Nameko\n"
                f"nameko:      {json.dumps(expected, sort_keys=True)}\n"
                f"nameko_like: {json.dumps(outcome.ours.topology, sort_keys=True)}")
        return outcome

    def _run_side(self, side: str, scenario: str, args: tuple[str, ...],
                  extra_env: dict[str, str], timeout: float) -> SideRun:
        vhost = f"nameko_like_diff_{side}_{uuid.uuid4().hex[:10]}"
        broker = urlsplit(self.amqp_uri)
        username = unquote(broker.username or "guest")
        self.manager.create_vhost(vhost)
        try:
            self.manager.set_vhost_permissions(vhost, username)
            workdir = self.workdir / side
            workdir.mkdir(parents=True, exist_ok=True)
            env = _side_env(side)
            env.update({
                "DIFF_FRAMEWORK": side,
                "AMQP_URI": urlunsplit(broker._replace(path="/" + quote(vhost, safe=""))),
                "DIFF_VHOST": vhost,
                "DIFF_RABBIT_API": self.api_uri,
                "DIFF_WORKDIR": str(workdir),
                "DIFF_PYTHON": self.pythons[side],
            })
            env.update(extra_env)
            command = [self.pythons[side], str(LAUNCHER), str(SCENARIOS / f"{scenario}.py"),
                       *args]
            try:
                done = subprocess.run(command, cwd=workdir, env=env, capture_output=True,
                                      text=True, timeout=timeout, check=False)
                returncode, output = done.returncode, done.stdout + done.stderr
            except subprocess.TimeoutExpired as exc:
                returncode = -1
                output = f"TIMED OUT after {timeout}s\n{_text(exc.stdout)}{_text(exc.stderr)}"
            return SideRun(side, returncode, _report_of(output), self._topology(vhost), output)
        finally:
            self.manager.delete_vhost(vhost)

    def _topology(self, vhost: str) -> dict[str, Any]:
        """Durable traces a run left on its vhost: queues, exchanges, bindings.

        UUIDs in names (reply queues, their routing keys) differ on every
        run, so they are replaced by ``<uuid>``.
        """
        listed = self.manager.get_queues(vhost)
        # The side's process has exited, so its exclusive queues go as soon
        # as the broker has closed its connections; on a busy machine that
        # can lag the exit. Wait for it (bounded): a queue still there after
        # the deadline is compared, and shows in a failure.
        deadline = time.monotonic() + EXCLUSIVE_GONE_DEADLINE
        while any(q.get("exclusive") for q in listed) and time.monotonic() < deadline:
            time.sleep(0.2)
            listed = self.manager.get_queues(vhost)
        queues = sorted(
            (_no_uuid(q["name"]), q["durable"], q["auto_delete"], q.get("exclusive", False),
             json.dumps(q.get("arguments", {}), sort_keys=True))
            for q in listed)
        exchanges = sorted(
            (e["name"], e["type"], e["durable"], e["auto_delete"])
            for e in self.manager.get_exchanges(vhost)
            if e["name"] and not e["name"].startswith("amq."))
        bindings = sorted(
            (b["source"], _no_uuid(b["destination"]), _no_uuid(b["routing_key"]))
            for q in self.manager.get_queues(vhost)
            for b in self.manager.get_queue_bindings(vhost, q["name"]) if b["source"])
        return {"queues": [list(q) for q in queues],
                "exchanges": [list(e) for e in exchanges],
                "bindings": [list(b) for b in bindings]}


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _no_uuid(name: str) -> str:
    return _UUID.sub("<uuid>", name)


#: Prefix of a standalone proxy's reply queue (Nameko's name, kept by us).
STANDALONE_REPLY_PREFIX = "rpc.reply-standalone_rpc_proxy-"


def _is_standalone_reply(entry: list[Any]) -> bool:
    # queues are [name, ...]; bindings are [exchange, queue, routing key]
    return any(isinstance(part, str) and part.startswith(STANDALONE_REPLY_PREFIX)
               for part in entry[:2])


def _standalone_reply_parts(topology: dict[str, Any]) -> list[Any]:
    return [entry for key in ("queues", "bindings") for entry in topology[key]
            if _is_standalone_reply(entry)]


def _without_standalone_replies(topology: dict[str, Any]) -> dict[str, Any]:
    return {key: [entry for entry in entries
                  if key == "exchanges" or not _is_standalone_reply(entry)]
            for key, entries in topology.items()}


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""


def _side_env(side: str) -> dict[str, str]:
    """Environment of a side: nothing of the other side's virtualenv."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PYTHONWARNINGS"] = "ignore"
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(SCENARIOS)
    env["INTEROP_PARENT_PID"] = str(os.getpid())
    if side == "nameko":
        # Nameko is compared as it runs: on eventlet's default hub. Our side
        # keeps EVENTLET_HUB (tox -e asyncio-hub runs this tier on that hub).
        env.pop("EVENTLET_HUB", None)
    return env


def _report_of(output: str) -> Any:
    for line in reversed(output.splitlines()):
        if line.startswith(REPORT_MARK):
            return json.loads(line[len(REPORT_MARK):])
    return None


@pytest.fixture
def differ(nameko_python: str, rabbit_manager: Any, request: pytest.FixtureRequest,
           tmp_path: Path) -> Iterator[Differ]:
    """A :class:`Differ` for this test (each side gets its own fresh vhost per run)."""
    from nameko_like.testing.rabbit import DEFAULT_MANAGEMENT_URL

    amqp_uri = request.config.getoption("AMQP_URI")
    api_uri = request.config.getoption("RABBIT_CTL_URI") or DEFAULT_MANAGEMENT_URL
    yield Differ(nameko_python, rabbit_manager, amqp_uri, api_uri, tmp_path)
